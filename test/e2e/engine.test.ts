import assert from "node:assert/strict";
import * as crypto from "node:crypto";
import { after, before, describe, it } from "node:test";
import { buildModel, Model } from "../../components/config/model";
import { FILES, POD_PATHS, renderEnvoyFiles } from "../../components/observer/bootstrap";
import { Issued, OpensslCa } from "../../tools/pki/openssl-ca";
import type { StatusReport } from "../../tools/status/report";
import { deployedDocuments, Envoy } from "./support/envoy";
import { Backend, QuerierClient } from "./support/grpc";
import { IngressObject, Nginx, SecretStore, translateIngress } from "./support/nginx";
import { freePort, ProcessGroup, requireTool, tempDir } from "./support/processes";
import { PulumiProject, requirePulumi } from "./support/pulumi";
import { find, readRendered, secretData } from "./support/rendered";
import { runStatus } from "./support/status";

/**
 * The program under the real Pulumi engine and the real Kubernetes provider, in render mode, with a local
 * file backend. Certificates are `tls.mode: provided` (openssl-made from the program's spec), so that the checks can
 * compare the rendered Secrets with known material; generate mode under the real engine is generate-render.test.ts
 * and generate-clusters.test.ts.
 */

const missingPulumi = requirePulumi();
const tools = [requireTool("envoy", "bash tools/setup.sh"), requireTool("nginx", "apt-get install nginx")];
const missingTool = tools.find((t): t is { skip: string } => typeof t === "object");
const skip = missingPulumi || (missingTool ? missingTool.skip : false);

const STACK = "e2e";
describe("the real Pulumi engine on this program (render mode)", { skip }, () => {
    const project = skip ? undefined! : new PulumiProject();
    const renderDir = tempDir("rendered");
    const group = new ProcessGroup();
    const ca = skip ? undefined! : OpensslCa.create(undefined, "engine");
    const clusters = [
        { name: "cl1", host: "cl1m.example.com" },
        { name: "cl2", host: "cl2m.example.com" },
    ];
    let config: Record<string, unknown>;
    let model: Model;
    const servers: Record<string, Issued> = {};
    const nginxPorts: Record<string, number> = {};
    let client: Issued;

    before(async () => {
        client = ca.client();
        const pair = (i: Issued) => ({ certificate: i.certificate, privateKey: i.privateKey });
        for (const c of [...clusters, { name: "cl3", host: "cl3m.example.com" }]) {
            servers[c.name] = ca.server(c.host);
            nginxPorts[c.name] = await freePort();
        }
        const withClusters = async (list: { name: string; host: string }[]) => ({
            renderDirectory: renderDir,
            envoy: { adminPort: await freePort(), metricsPort: await freePort() },
            clusters: await Promise.all(list.map(async (c) => ({ ...c, port: await freePort(), address: `localhost:${nginxPorts[c.name]}` }))),
            tls: {
                mode: "provided",
                caBundle: ca.ca.certificate,
                client: pair(client),
                servers: Object.fromEntries(list.map((c) => [c.name, pair(servers[c.name])])),
            },
        });
        config = await withClusters(clusters);
        model = buildModel(config, { checkSecretMaterial: true, now: new Date() });
        project.writeStack(STACK, config);
        await project.ok(["stack", "init", STACK]);
    });

    after(async () => {
        await group.stopAll();
        await project?.run(["destroy", "-s", STACK, "--yes"]);
        await project?.run(["stack", "rm", STACK, "--yes"]);
    });

    it("stops with one clear message, no stack trace and no resource, on an invalid configuration", async () => {
        project.writeStack("bad", { renderDirectory: renderDir, clusters: [{ name: "cl1", hots: "x" }] });
        await project.ok(["stack", "init", "bad"]);
        const result = await project.run(["preview", "-s", "bad"]);
        await project.run(["stack", "rm", "bad", "--yes", "--force"]);
        assert.notEqual(result.code, 0);
        const output = result.stdout + result.stderr;
        assert.match(output, /envoy-thanos:clusters\[0\]: unknown key 'clusters\[0\]\.hots' \(did you mean 'host'\?\)/);
        assert.doesNotMatch(output, /envoy-thanos:clusters\[0\]\.host: is required/, "the typo is the one root cause");
        assert.doesNotMatch(output, /\n\s+at .*\.(ts|js):\d+/, "no stack trace");
        assert.doesNotMatch(output, /kubernetes:|pulumi:providers/, "no resource was planned");
    });

    it("previews the expected resources per cluster", async () => {
        const steps = await project.previewSteps(STACK);
        assert.ok(
            steps.every((s) => s.op === "create"),
            JSON.stringify(steps.filter((s) => s.op !== "create")),
        );
        const names = (type: string) =>
            steps
                .filter((s) => s.type === type)
                .map((s) => s.name)
                .sort();
        assert.deepEqual(names("pulumi:providers:kubernetes"), ["observed-cl1", "observed-cl2", "observer"]);
        assert.deepEqual(names("envoy-thanos:observed:ObservedCluster"), ["cluster-cl1", "cluster-cl2"]);
        assert.deepEqual(names("kubernetes:networking.k8s.io/v1:Ingress"), ["cluster-cl1-ingress", "cluster-cl2-ingress"]);
        assert.deepEqual(names("kubernetes:core/v1:Service"), ["observer-metrics", "observer-service-cl1", "observer-service-cl2"]);
        assert.deepEqual(names("kubernetes:core/v1:Secret"), [
            "cluster-cl1-client-ca",
            "cluster-cl1-server-tls",
            "cluster-cl2-client-ca",
            "cluster-cl2-server-tls",
            "observer-client-tls",
        ]);
        assert.deepEqual(names("kubernetes:apps/v1:Deployment"), ["observer-envoy"]);
        assert.equal(steps.filter((s) => s.type.startsWith("tls:") || s.type.startsWith("random:")).length, 0);
    });

    it("renders every cluster's manifests with `pulumi up`, as the program intends", async () => {
        await project.ok(["up", "-s", STACK, "--yes", "--skip-preview"]);
        const rendered = readRendered(renderDir);
        assert.deepEqual(Object.keys(rendered).sort(), ["cl1", "cl2", "observer"]);
        const configMap = find(rendered.observer, "ConfigMap", "envoy-thanos-bootstrap");
        assert.deepEqual(configMap.data, renderEnvoyFiles({ envoy: model.envoy, clusters: model.clusters }));
        const clientTls = find(rendered.observer, "Secret", "envoy-thanos-client-tls");
        assert.equal(clientTls.type, "kubernetes.io/tls");
        assert.deepEqual(secretData(clientTls), { "tls.crt": client.certificate, "tls.key": client.privateKey, "ca.crt": ca.ca.certificate });
        const deployment = find(rendered.observer, "Deployment", "envoy-thanos");
        assert.match(deployment.spec.template.metadata.annotations["envoy-thanos.io/checksum"], /^[0-9a-f]{64}$/);
        for (const c of clusters) {
            assert.deepEqual(find(rendered.observer, "Service", `envoy-${c.name}`).spec.ports[0].name, `envoy-${c.name}`);
            const serverTls = find(rendered[c.name], "Secret", `envoy-thanos-${c.name}-server-tls`);
            assert.equal(serverTls.type, "kubernetes.io/tls");
            assert.deepEqual(secretData(serverTls), { "tls.crt": servers[c.name].certificate, "tls.key": servers[c.name].privateKey });
            assert.ok(new crypto.X509Certificate(secretData(serverTls)["tls.crt"]).checkHost(c.host));
            assert.deepEqual(secretData(find(rendered[c.name], "Secret", `envoy-thanos-${c.name}-client-ca`)), { "ca.crt": ca.ca.certificate });
            const ingress = find(rendered[c.name], "Ingress", `envoy-thanos-${c.name}`);
            assert.equal(ingress.metadata.annotations?.["nginx.ingress.kubernetes.io/auth-tls-verify-client"], "on");
            assert.equal(ingress.spec.rules[0].host, c.host);
        }
    });

    it("keeps private keys encrypted in the stack state", async () => {
        const state = await project.exportState(STACK);
        assert.doesNotMatch(state, /PRIVATE KEY/);
        assert.ok(!state.includes(client.privateKey.split("\n")[1]), "no line of a key in plaintext");
        assert.match(state, /"ciphertext"/);
    });

    it("previews no change on a second run (the program is deterministic)", async () => {
        await project.ok(["preview", "-s", STACK, "--expect-no-changes"]);
    });

    it("previews no change for a stack whose gateway children still have their unprefixed names (the aliases carry them)", async () => {
        const current = await project.exportState(STACK);
        // The state as the program wrote it before children were prefixed with their component's name.
        const gatewayChild = /^urn:pulumi:[^:]+::[^:]+::envoy-thanos:observer:ObserverGateway\$[^:]+:[^:]*:[^:]+::observer-(.+)$/;
        let older = current;
        let renamed = 0;
        for (const resource of JSON.parse(current).deployment.resources as { urn: string }[]) {
            const match = gatewayChild.exec(resource.urn);
            if (match !== null) {
                older = older.split(JSON.stringify(resource.urn)).join(JSON.stringify(resource.urn.replace(/::observer-[^:]+$/, `::${match[1]}`)));
                renamed++;
            }
        }
        assert.ok(renamed >= 6, `only ${renamed} gateway children in the state`);
        await project.importState(STACK, older);
        try {
            await project.ok(["preview", "-s", STACK, "--expect-no-changes"]);
        } finally {
            await project.importState(STACK, current);
        }
    });

    it("carries gRPC through the rendered Envoy config, Secrets and Ingress", async () => {
        const rendered = readRendered(renderDir);
        const configMap = find(rendered.observer, "ConfigMap", "envoy-thanos-bootstrap");
        const clientTls = secretData(find(rendered.observer, "Secret", "envoy-thanos-client-tls"));
        const backends: Backend[] = [];
        try {
            for (const c of clusters) {
                const backend = new Backend(c.name);
                const backendPort = await freePort();
                await backend.start(backendPort);
                backends.push(backend);
                const manifests = rendered[c.name];
                const ingress = find(manifests, "Ingress", `envoy-thanos-${c.name}`) as unknown as IngressObject;
                const secrets: SecretStore = Object.fromEntries(
                    manifests.filter((m) => m.kind === "Secret").map((m) => [`${m.metadata.namespace}/${m.metadata.name}`, secretData(m)]),
                );
                const workDir = tempDir(`engine-nginx-${c.name}`);
                const nginx = new Nginx(workDir, nginxPorts[c.name], group);
                await nginx.start(
                    translateIngress(ingress, secrets, {
                        listenPort: nginxPorts[c.name],
                        workDir,
                        defaultCertificate: ca.server("ingress.local"),
                        resolveService: () => `127.0.0.1:${backendPort}`,
                    }),
                );
            }
            const envoy = new Envoy(
                {
                    envoy: model.envoy,
                    clusters: model.clusters,
                    workDir: tempDir("engine-envoy"),
                    tls: { certificate: clientTls["tls.crt"], privateKey: clientTls["tls.key"], ca: clientTls["ca.crt"] },
                    documents: (paths) => deployedDocuments(configMap.data, paths),
                },
                group,
            );
            await envoy.start();
            for (const [i, c] of model.clusters.entries()) {
                const querier = new QuerierClient(`127.0.0.1:${c.port}`);
                try {
                    assert.deepEqual((await querier.storeInfo()).labels, [{ name: "cluster", value: c.name }]);
                    assert.equal(backends[i].calls.at(-1)?.authority, c.host);
                    assert.equal(backends[i].calls.at(-1)?.sni, c.host);
                } finally {
                    querier.close();
                }
            }
            assert.ok(configMap.data[FILES.bootstrap].includes(`${POD_PATHS.configDir}/${FILES.listeners}`), "the rendered bootstrap uses the pod's paths");
            assert.ok(configMap.data[FILES.clusters].includes(`${POD_PATHS.configDir}/${FILES.clientCertificateSds}`), "so do the rendered clusters");
            assert.ok(configMap.data[FILES.clientCertificateSds].includes(`${POD_PATHS.tlsDir}/tls.crt`));

            // `npm run status -s`: clusters and Envoy's client certificate and key from this stack's outputs.
            const status = await runStatus(["-s", STACK, "--json"], project.env());
            assert.doesNotMatch(status.stdout + status.stderr, /PRIVATE KEY/, "the key from the secret output is never printed");
            assert.equal(status.code, 0, status.stderr + status.stdout);
            const report = JSON.parse(status.stdout) as StatusReport;
            assert.deepEqual(
                report.clusters.map((c) => [c.name, c.address, c.ok, c.sidecar?.labelSets]),
                model.clusters.map((c) => [c.name, `localhost:${nginxPorts[c.name]}`, true, [`cluster="${c.name}"`]]),
            );
            assert.equal(report.clientCertificate.notAfter, new Date(new crypto.X509Certificate(client.certificate).validTo).toISOString());
        } finally {
            await group.stopAll();
            await Promise.all(backends.map((b) => b.stop()));
        }
    });

    it("previews only creates for an appended cluster, and changes only the shared Envoy config", async () => {
        const appended = {
            ...config,
            clusters: [
                ...(config.clusters as object[]),
                { name: "cl3", host: "cl3m.example.com", port: await freePort(), address: `localhost:${nginxPorts.cl3}` },
            ],
        };
        const tls = config.tls as { servers: Record<string, unknown> };
        const cl3 = { certificate: servers.cl3.certificate, privateKey: servers.cl3.privateKey };
        project.writeStack(STACK, { ...appended, tls: { ...tls, servers: { ...tls.servers, cl3 } } });
        try {
            const changed = (await project.previewSteps(STACK)).filter((s) => s.op !== "same");
            const creates = changed.filter((s) => s.op === "create");
            assert.ok(creates.length >= 5 && creates.every((s) => s.name.includes("cl3")), JSON.stringify(creates.map((s) => s.name)));
            // A new listener and cluster change Envoy's watched LDS/CDS files in the ConfigMap (updated in place); Envoy
            // reloads them, so the Deployment's pod template stays. The NetworkPolicy opens the new listener port.
            // No other existing resource changes.
            assert.deepEqual(
                changed
                    .filter((s) => s.op !== "create")
                    .map((s) => `${s.op} ${s.type} ${s.name}`)
                    .sort(),
                ["update kubernetes:core/v1:ConfigMap observer-bootstrap", "update kubernetes:networking.k8s.io/v1:NetworkPolicy observer-envoy"],
            );
        } finally {
            project.writeStack(STACK, config);
        }
    });

    it("removes every rendered manifest with `pulumi destroy`, but the namespace it retains on purpose", async () => {
        await project.ok(["destroy", "-s", STACK, "--yes", "--skip-preview"]);
        const left = Object.values(readRendered(renderDir)).flat();
        assert.deepEqual(
            left.map((m) => `${m.kind}/${m.metadata.name}`),
            ["Namespace/envoy"],
        );
        const state = JSON.parse(await project.exportState(STACK));
        assert.deepEqual(
            (state.deployment.resources ?? []).map((r: { type: string }) => r.type).filter((t: string) => t !== "pulumi:pulumi:Stack"),
            [],
        );
    });
});
