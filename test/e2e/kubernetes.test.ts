import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import * as YAML from "yaml";
import { FILES } from "../../components/observer/bootstrap";
import { CHECKSUM_ANNOTATION } from "../../components/observer/manifests";
import { Issued, OpensslCa } from "../../tools/pki/openssl-ca";
import { ControlPlane, fakeIngressStatus, fakeSidecar, KubeClusters, requireKube } from "./support/kube";
import { tempDir } from "./support/processes";
import { PulumiProject, requirePulumi } from "./support/pulumi";

/**
 * `pulumi up` with the real engine into real API servers (etcd, kube-apiserver, kube-controller-manager,
 * kube-scheduler, and kwok simulating nodes and pods): an observer and observed clusters, each its own
 * control plane, reached through one kubeconfig with a context per cluster.
 * Certificates are `tls.mode: provided` (known material to compare with); generate mode against real API servers is
 * generate-clusters.test.ts.
 */

const kube = requireKube();
const missingPulumi = requirePulumi();
const skip = typeof kube === "object" && "skip" in kube ? kube.skip : missingPulumi;

const STACK = "clusters";
const SIDECAR = { namespace: "monitoring", service: "prom-kube-prometheus-prometheus-thanos" };
const PART_OF = "app.kubernetes.io/part-of=envoy-thanos";
/** Another reference to the same Envoy version: what a registry mirror or digest pin changes. */
const NEW_IMAGE = "registry.example.com/envoyproxy/envoy:v1.40.0";
/** Envoy settings after the roll-out test, kept by the tests that follow. */
const settled = { connectTimeout: "3s", image: NEW_IMAGE };

async function get(plane: ControlPlane, pathname: string): Promise<any> {
    const res = await plane.request("GET", pathname);
    assert.equal(res.status, 200, `GET ${pathname} on ${plane.name}: ${res.status} ${JSON.stringify(res.body).slice(0, 300)}`);
    return res.body;
}

describe("pulumi up into real API servers: observer + observed clusters", { skip }, () => {
    const dir = skip ? "" : tempDir("kube-e2e");
    const kubeconfig = path.join(dir, "kubeconfig");
    const clusters = skip ? undefined! : new KubeClusters(["observer", "cl1", "cl2", "cl3"]);
    const project = skip ? undefined! : new PulumiProject({ KUBECONFIG: kubeconfig });
    const ca = skip ? undefined! : OpensslCa.create(path.join(dir, "pki"), "kube");
    const servers: Record<string, Issued> = {};
    let client: Issued;
    let ingressStatus: { stop: () => Promise<void> };
    const observed = ["cl1", "cl2"];

    const pair = (i: Issued) => ({ certificate: i.certificate, privateKey: i.privateKey });
    const stackConfig = (names: string[], envoy: Record<string, unknown> = {}) => ({
        observer: { context: "observer" },
        envoy: { replicas: 2, ...envoy },
        sidecar: SIDECAR,
        clusters: names.map((name, i) => ({ name, host: `${name}m.example.com`, port: 10002 + i, context: name })),
        tls: { mode: "provided", caBundle: ca.ca.certificate, client: pair(client), servers: Object.fromEntries(names.map((n) => [n, pair(servers[n])])) },
    });

    before(async () => {
        await clusters.start();
        clusters.writeKubeconfig(kubeconfig);
        client = ca.client();
        for (const name of ["cl1", "cl2", "cl3"]) {
            servers[name] = ca.server(`${name}m.example.com`);
            await fakeSidecar(clusters.get(name), SIDECAR);
        }
        ingressStatus = fakeIngressStatus(["cl1", "cl2", "cl3"].map((n) => clusters.get(n)));
        project.writeStack(STACK, stackConfig(observed));
        await project.ok(["stack", "init", STACK]);
    });

    after(async () => {
        await ingressStatus?.stop();
        await project?.run(["destroy", "-s", STACK, "--yes", "--skip-preview"]);
        await clusters?.stop();
    });

    it("creates everything in the right cluster, as the program intends, and the Envoy Deployment becomes available", async () => {
        await project.ok(["up", "-s", STACK, "--yes", "--skip-preview"]);
        const observer = clusters.get("observer");
        assert.equal((await get(observer, "/api/v1/namespaces/envoy")).status.phase, "Active");
        const tlsSecret = await get(observer, "/api/v1/namespaces/envoy/secrets/envoy-thanos-client-tls");
        assert.equal(tlsSecret.type, "kubernetes.io/tls");
        assert.deepEqual(Object.keys(tlsSecret.data).sort(), ["ca.crt", "tls.crt", "tls.key"]);
        assert.equal(Buffer.from(tlsSecret.data["tls.key"], "base64").toString(), client.privateKey);
        const configMap = await get(observer, "/api/v1/namespaces/envoy/configmaps/envoy-thanos-bootstrap");
        assert.equal(YAML.parse(configMap.data[FILES.listeners]).resources.length, 2, "one listener per observed cluster");
        for (const [i, name] of observed.entries()) {
            const service = await get(observer, `/api/v1/namespaces/envoy/services/envoy-${name}`);
            assert.deepEqual(
                service.spec.ports.map((p: any) => [p.name, p.port]),
                [[`envoy-${name}`, 10002 + i]],
            );
            const plane = clusters.get(name);
            const ingress = await get(plane, `/apis/networking.k8s.io/v1/namespaces/monitoring/ingresses/envoy-thanos-${name}`);
            assert.equal(ingress.metadata.annotations["nginx.ingress.kubernetes.io/auth-tls-verify-client"], "on");
            assert.equal(ingress.metadata.annotations["nginx.ingress.kubernetes.io/auth-tls-secret"], `monitoring/envoy-thanos-${name}-client-ca`);
            assert.equal(ingress.spec.rules[0].host, `${name}m.example.com`);
            const serverTls = await get(plane, `/api/v1/namespaces/monitoring/secrets/envoy-thanos-${name}-server-tls`);
            assert.equal(serverTls.type, "kubernetes.io/tls");
            assert.equal(Buffer.from(serverTls.data["tls.crt"], "base64").toString(), servers[name].certificate);
            assert.deepEqual(Object.keys((await get(plane, `/api/v1/namespaces/monitoring/secrets/envoy-thanos-${name}-client-ca`)).data), ["ca.crt"]);
            // Nothing of the observer's landed here, nothing of an observed cluster on the observer.
            assert.equal((await plane.request("GET", "/api/v1/namespaces/envoy")).status, 404);
        }
        assert.deepEqual((await get(observer, `/apis/networking.k8s.io/v1/ingresses?labelSelector=${encodeURIComponent(PART_OF)}`)).items, []);
        assert.equal((await clusters.get("cl3").request("GET", `/apis/networking.k8s.io/v1/namespaces/monitoring/ingresses/envoy-thanos-cl3`)).status, 404);
        const policy = await get(observer, "/apis/networking.k8s.io/v1/namespaces/envoy/networkpolicies/envoy-thanos");
        assert.deepEqual(policy.spec.policyTypes, ["Ingress", "Egress"], "the API server accepted the default NetworkPolicy as rendered");
        const deployment = await get(observer, "/apis/apps/v1/namespaces/envoy/deployments/envoy-thanos");
        assert.match(deployment.spec.template.metadata.annotations[CHECKSUM_ANNOTATION], /^[0-9a-f]{64}$/);
        assert.equal(deployment.status.availableReplicas, 2, "kwok's simulated pods made the Deployment available");
    });

    it("previews no change right after", async () => {
        await project.ok(["preview", "-s", STACK, "--expect-no-changes"]);
    });

    /** The pod template, the Deployment's generation and what the preview wants to change, around an `up`. */
    const deploymentOf = async () => get(clusters.get("observer"), "/apis/apps/v1/namespaces/envoy/deployments/envoy-thanos");
    const changedSteps = async () =>
        (await project.previewSteps(STACK))
            .filter((s) => s.op !== "same")
            .map((s) => `${s.op} ${s.type.split(":").pop()} ${s.name}`)
            .sort();

    it("applies a cluster setting through the ConfigMap alone, and rolls the Deployment for a new image, leaving the Services alone", async () => {
        const observer = clusters.get("observer");
        const before = await deploymentOf();
        const services = await get(observer, `/api/v1/namespaces/envoy/services?labelSelector=${encodeURIComponent(PART_OF)}`);
        project.writeStack(STACK, stackConfig(observed, { connectTimeout: "3s" }));
        assert.deepEqual(await changedSteps(), ["update ConfigMap observer-bootstrap"]);
        await project.ok(["up", "-s", STACK, "--yes", "--skip-preview"]);
        const reloaded = await deploymentOf();
        assert.deepEqual(reloaded.spec.template, before.spec.template, "Envoy reloads its CDS file: the pods stay");
        assert.equal(reloaded.metadata.generation, before.metadata.generation);

        project.writeStack(STACK, stackConfig(observed, settled));
        assert.deepEqual(await changedSteps(), ["update Deployment observer-envoy"]);
        await project.ok(["up", "-s", STACK, "--yes", "--skip-preview"]);
        const rolled = await deploymentOf();
        assert.equal(rolled.spec.template.spec.containers[0].image, NEW_IMAGE);
        assert.ok(rolled.metadata.generation > before.metadata.generation, "a new pod template");
        assert.equal(rolled.status.availableReplicas, 2);
        const servicesAfter = await get(observer, `/api/v1/namespaces/envoy/services?labelSelector=${encodeURIComponent(PART_OF)}`);
        assert.deepEqual(
            servicesAfter.items.map((s: any) => [s.metadata.name, s.metadata.resourceVersion]),
            services.items.map((s: any) => [s.metadata.name, s.metadata.resourceVersion]),
        );
    });

    it("updates the Secrets in place with renewed certificates, and leaves the pod template alone", async () => {
        const observer = clusters.get("observer");
        const cl1 = clusters.get("cl1");
        const clientBefore = await get(observer, "/api/v1/namespaces/envoy/secrets/envoy-thanos-client-tls");
        const serverBefore = await get(cl1, "/api/v1/namespaces/monitoring/secrets/envoy-thanos-cl1-server-tls");
        const before = await deploymentOf();
        client = ca.client("client-renewed");
        servers.cl1 = ca.server("cl1m.example.com");
        project.writeStack(STACK, stackConfig(observed, settled));
        await project.ok(["up", "-s", STACK, "--yes", "--skip-preview"]);
        const clientAfter = await get(observer, "/api/v1/namespaces/envoy/secrets/envoy-thanos-client-tls");
        const serverAfter = await get(cl1, "/api/v1/namespaces/monitoring/secrets/envoy-thanos-cl1-server-tls");
        assert.equal(clientAfter.metadata.uid, clientBefore.metadata.uid, "updated in place, not replaced");
        assert.equal(serverAfter.metadata.uid, serverBefore.metadata.uid, "updated in place, not replaced");
        assert.equal(Buffer.from(clientAfter.data["tls.crt"], "base64").toString(), client.certificate);
        assert.equal(Buffer.from(serverAfter.data["tls.crt"], "base64").toString(), servers.cl1.certificate);
        // Envoy re-reads the Secret's files (SDS); a server certificate is ingress-nginx's to reload.
        const after = await deploymentOf();
        assert.deepEqual(after.spec.template, before.spec.template);
        assert.equal(after.metadata.generation, before.metadata.generation);
    });

    it("adds a third observed cluster with creates only, plus the shared Envoy ConfigMap and NetworkPolicy; the pod template stays", async () => {
        const before = await deploymentOf();
        project.writeStack(STACK, stackConfig([...observed, "cl3"], settled));
        const changed = (await project.previewSteps(STACK)).filter((s) => s.op !== "same");
        assert.ok(changed.filter((s) => s.op === "create").every((s) => s.name.includes("cl3")));
        // The ConfigMap gets the new listener and cluster, the NetworkPolicy the new listener port; not the Deployment.
        assert.deepEqual(
            changed
                .filter((s) => s.op !== "create")
                .map((s) => `${s.op} ${s.type.split(":").pop()} ${s.name}`)
                .sort(),
            // The ConfigMap gets the new listener and cluster, the NetworkPolicy the new listener port; not the Deployment.
            ["update ConfigMap observer-bootstrap", "update NetworkPolicy observer-envoy"],
        );
        await project.ok(["up", "-s", STACK, "--yes", "--skip-preview"]);
        assert.equal(
            (await get(clusters.get("cl3"), "/apis/networking.k8s.io/v1/namespaces/monitoring/ingresses/envoy-thanos-cl3")).spec.rules[0].host,
            "cl3m.example.com",
        );
        assert.ok(await get(clusters.get("observer"), "/api/v1/namespaces/envoy/services/envoy-cl3"));
        const configMap = await get(clusters.get("observer"), "/api/v1/namespaces/envoy/configmaps/envoy-thanos-bootstrap");
        assert.deepEqual(
            YAML.parse(configMap.data[FILES.listeners]).resources.map((l: any) => l.name),
            ["thanos_cl1", "thanos_cl2", "thanos_cl3"],
        );
        const after = await deploymentOf();
        assert.deepEqual(after.spec.template, before.spec.template);
        assert.equal(after.metadata.generation, before.metadata.generation);
    });

    it("names the unreachable cluster when one cannot be reached, and leaves the others untouched", async () => {
        const observer = clusters.get("observer");
        const cl1 = clusters.get("cl1");
        const versions = async () => [
            (await get(observer, "/api/v1/namespaces/envoy/configmaps/envoy-thanos-bootstrap")).metadata.resourceVersion,
            (await get(cl1, "/apis/networking.k8s.io/v1/namespaces/monitoring/ingresses/envoy-thanos-cl1")).metadata.resourceVersion,
        ];
        const before = await versions();
        const good = fs.readFileSync(kubeconfig, "utf8");
        const doc = YAML.parse(good);
        const cl2Cluster = doc.contexts.find((c: any) => c.name === "cl2").context.cluster;
        doc.clusters.find((c: any) => c.name === cl2Cluster).cluster.server = "https://127.0.0.1:1";
        fs.writeFileSync(kubeconfig, YAML.stringify(doc));
        try {
            const result = await project.run(["up", "-s", STACK, "--yes", "--skip-preview", "--refresh"]);
            assert.notEqual(result.code, 0);
            const output = result.stdout + result.stderr;
            assert.match(output, /observed-cl2|cluster-cl2/);
            assert.match(output, /127\.0\.0\.1:1|connection refused|unreachable/);
            assert.doesNotMatch(output, /error:.*(observed-cl1|cluster-cl1|observed-cl3)/);
        } finally {
            fs.writeFileSync(kubeconfig, good);
        }
        assert.deepEqual(await versions(), before);
        await project.ok(["preview", "-s", STACK, "--expect-no-changes"]);
    });

    it("leaves every cluster empty of our objects after `pulumi destroy`, but for the retained namespace", async () => {
        await project.ok(["destroy", "-s", STACK, "--yes", "--skip-preview"]);
        for (const name of ["observer", "cl1", "cl2", "cl3"]) {
            const plane = clusters.get(name);
            for (const kind of [
                "/api/v1/secrets",
                "/api/v1/configmaps",
                "/api/v1/services",
                "/apis/apps/v1/deployments",
                "/apis/networking.k8s.io/v1/ingresses",
                "/apis/networking.k8s.io/v1/networkpolicies",
            ]) {
                const items = (await get(plane, `${kind}?labelSelector=${encodeURIComponent(PART_OF)}`)).items;
                assert.deepEqual(
                    items.map((i: any) => i.metadata.name),
                    [],
                    `${kind} on ${name}`,
                );
            }
        }
        // The namespace the program created is retained on purpose: deleting it would delete whatever else lives there.
        assert.equal((await get(clusters.get("observer"), "/api/v1/namespaces/envoy")).status.phase, "Active");
    });
});
