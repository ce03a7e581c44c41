import assert from "node:assert/strict";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { buildModel } from "../../components/config/model";
import { observedNames } from "../../components/names";
import { clientCaData, clientTrafficPolicySpec, ENVOY_GATEWAY_VERSION, GATEWAY_API_VERSION, gatewaySpec } from "../../components/observed/gateway-api";
import { Issued, OpensslCa } from "../../tools/pki/openssl-ca";
import { CONTROLLER_NAME, EnvoyGateway } from "./support/envoy-gateway";
import { requireFrontDoor } from "./support/front-doors";
import { crdsIn, installCrds, requireGatewayApiCrds } from "./support/gateway-api";
import { ControlPlane, KubeClusters, requireKube } from "./support/kube";
import { sleep, tempDir, waitFor } from "./support/processes";
import { PulumiProject, requirePulumi } from "./support/pulumi";

/**
 * The gateway-api front door against the real CRD schemas: the Gateway API Standard channel and Envoy Gateway CRDs of
 * the pinned releases (from their Go modules) installed into a real API server; `pulumi up` with the real engine,
 * read back, no-change preview; and the migration of a cluster from ingress-nginx. A real Envoy Gateway translates
 * what `pulumi up` creates and writes the status `pulumi up` waits for (the data path through it is datapath.test.ts).
 */

const kube = requireKube();
const crds = requireGatewayApiCrds();
const missingPulumi = requirePulumi();
const envoyGateway = requireFrontDoor("envoy-gateway");
const skip =
    typeof kube === "object" && "skip" in kube
        ? kube.skip
        : typeof crds === "object"
          ? crds.skip
          : missingPulumi || (envoyGateway === true ? false : envoyGateway.skip);

const STACK = "gateway";
const NS = "monitoring";
const SERVICE = "prom-kube-prometheus-prometheus-thanos";
const PART_OF = "app.kubernetes.io/part-of=envoy-thanos";
const GW = "/apis/gateway.networking.k8s.io/v1";
const EG = "/apis/gateway.envoyproxy.io/v1alpha1";

async function get(plane: ControlPlane, pathname: string): Promise<any> {
    const res = await plane.request("GET", pathname);
    assert.equal(res.status, 200, `GET ${pathname} on ${plane.name}: ${res.status} ${JSON.stringify(res.body).slice(0, 300)}`);
    return res.body;
}

describe("gateway-api front door: real CRD schemas, pulumi up, read back, migration from ingress-nginx", { skip }, () => {
    const dir = skip ? "" : tempDir("gateway-api-e2e");
    const kubeconfig = path.join(dir, "kubeconfig");
    const clusters = skip ? undefined! : new KubeClusters(["observer", "cl1"]);
    const project = skip ? undefined! : new PulumiProject({ KUBECONFIG: kubeconfig });
    const ca = skip ? undefined! : OpensslCa.create(path.join(dir, "pki"), "gateway");
    let client: Issued;
    let server: Issued;
    let eg: EnvoyGateway;

    const pair = (i: Issued) => ({ certificate: i.certificate, privateKey: i.privateKey });
    const stackConfig = (frontDoor: string) => ({
        observer: { context: "observer" },
        envoy: { replicas: 1 },
        sidecar: { namespace: NS, service: SERVICE, port: 10901 },
        frontDoor,
        gatewayApi: { gatewayClassName: "eg" },
        clusters: [{ name: "cl1", host: "cl1m.example.com", port: 10002, context: "cl1" }],
        tls: { mode: "provided", caBundle: ca.ca.certificate, client: pair(client), servers: { cl1: pair(server) } },
    });

    before(async () => {
        await clusters.start();
        clusters.writeKubeconfig(kubeconfig);
        const cl1 = clusters.get("cl1");
        await installCrds(cl1, [...crdsIn(crds as string, "gateway-api"), ...crdsIn(crds as string, "envoy-gateway")]);
        client = ca.client();
        server = ca.server("cl1m.example.com");
        await cl1.request("POST", "/api/v1/namespaces", { metadata: { name: NS } });
        await cl1.request("POST", `/api/v1/namespaces/${NS}/services`, {
            metadata: { name: SERVICE },
            spec: { selector: { app: "thanos-sidecar" }, ports: [{ name: "grpc", port: 10901, targetPort: 10901 }] },
        });
        await project.ok(["stack", "init", STACK]);
        eg = await EnvoyGateway.start(cl1, "eg", path.join(dir, "envoy-gateway"));
    });

    after(async () => {
        await project?.run(["destroy", "-s", STACK, "--yes", "--skip-preview"]);
        await eg?.stop();
        await clusters?.stop();
    });

    it("starts on ingress-nginx (the Ingress gets its address from a stand-in)", async () => {
        const cl1 = clusters.get("cl1");
        let running = true;
        const ingressStatus = (async () => {
            for (let round = 0; running && round < 2_000; round++) {
                const list = await cl1
                    .request("GET", `/apis/networking.k8s.io/v1/ingresses?labelSelector=${encodeURIComponent(PART_OF)}`)
                    .catch(() => undefined);
                for (const ing of list?.body?.items ?? []) {
                    if (!ing.status?.loadBalancer?.ingress?.length) {
                        await cl1.request("PATCH", `/apis/networking.k8s.io/v1/namespaces/${NS}/ingresses/${ing.metadata.name}/status`, {
                            status: { loadBalancer: { ingress: [{ ip: "127.0.0.1" }] } },
                        });
                    }
                }
                await sleep(300);
            }
        })();
        project.writeStack(STACK, stackConfig("ingress-nginx"));
        try {
            await project.ok(["up", "-s", STACK, "--yes", "--skip-preview"]);
        } finally {
            running = false;
            await ingressStatus;
        }
        assert.equal((await get(cl1, `/apis/networking.k8s.io/v1/namespaces/${NS}/ingresses/envoy-thanos-cl1`)).spec.rules[0].host, "cl1m.example.com");
    });

    it("previews the switch to gateway-api as creates of the Gateway API objects and deletes of the Ingress and its CA Secret only", async () => {
        project.writeStack(STACK, stackConfig("gateway-api"));
        const changed = (await project.previewSteps(STACK)).filter((s) => s.op !== "same");
        assert.deepEqual(
            changed.map((s) => `${s.op} ${s.type.split(":").pop()} ${s.name}`).sort(),
            [
                "create BackendTrafficPolicy cluster-cl1-gateway-api-backend-traffic",
                "create ClientTrafficPolicy cluster-cl1-gateway-api-client-traffic",
                "create ConfigMap cluster-cl1-gateway-api-client-ca",
                "create GRPCRoute cluster-cl1-gateway-api-route",
                "create Gateway cluster-cl1-gateway-api-gateway",
                "create GatewayApiFrontDoor cluster-cl1-gateway-api",
                "delete Ingress cluster-cl1-ingress",
                "delete Secret cluster-cl1-client-ca",
            ],
            "the server certificate Secret and everything on the observer stay as they are",
        );
    });

    it("waits for Envoy Gateway to report the Gateway Programmed, and deletes the Ingress only after that", { timeout: 240_000 }, async () => {
        const cl1 = clusters.get("cl1");
        // The Gateway's Envoy counts as not ready yet (a slow rollout): Envoy Gateway reports the Gateway not Programmed.
        eg.hold();
        let finished = false;
        const up = project.run(["up", "-s", STACK, "--yes", "--skip-preview"]).then((r) => {
            finished = true;
            return r;
        });
        const programmed = async () => {
            const gateway = (await cl1.request("GET", `${GW}/namespaces/${NS}/gateways/envoy-thanos-cl1`)).body;
            return gateway?.status?.conditions?.find((c: any) => c.type === "Programmed");
        };
        const notProgrammed = await waitFor(
            "Envoy Gateway to accept the Gateway and report it not Programmed",
            120_000,
            async () => ((await programmed())?.status === "False" ? await programmed() : undefined),
            300,
        );
        // Both the route (dependsOn the Gateway) and the Ingress's deletion wait for the Gateway's readiness.
        await sleep(3_000);
        assert.equal(finished, false, `pulumi up is still waiting for the Gateway (${JSON.stringify(notProgrammed)})`);
        assert.equal((await cl1.request("GET", `${GW}/namespaces/${NS}/grpcroutes/envoy-thanos-cl1`)).status, 404, "the route waits for a Programmed Gateway");
        assert.equal(
            (await cl1.request("GET", `/apis/networking.k8s.io/v1/namespaces/${NS}/ingresses/envoy-thanos-cl1`)).status,
            200,
            "the Ingress still serves while the Gateway is not Programmed",
        );
        eg.release();
        const result = await up;
        assert.equal(result.code, 0, result.stdout.slice(-3000) + result.stderr.slice(-3000));
        assert.equal((await programmed())?.status, "True", "Envoy Gateway reported the Gateway Programmed");
        const route = (await get(cl1, `${GW}/namespaces/${NS}/grpcroutes/envoy-thanos-cl1`)).status.parents[0];
        assert.equal(route.controllerName, CONTROLLER_NAME);
        for (const type of ["Accepted", "ResolvedRefs"]) assert.equal(route.conditions.find((c: any) => c.type === type)?.status, "True", type);
        for (const plural of ["backendtrafficpolicies", "clienttrafficpolicies"]) {
            const policy = (await get(cl1, `${EG}/namespaces/${NS}/${plural}/envoy-thanos-cl1`)).status.ancestors[0];
            assert.equal(policy.conditions.find((c: any) => c.type === "Accepted")?.status, "True", plural);
        }
        assert.equal((await cl1.request("GET", `/apis/networking.k8s.io/v1/namespaces/${NS}/ingresses/envoy-thanos-cl1`)).status, 404);
        assert.equal((await cl1.request("GET", `/api/v1/namespaces/${NS}/secrets/envoy-thanos-cl1-client-ca`)).status, 404);
    });

    it("reads back what the real schemas kept: frontend client validation, the route, the policies", async () => {
        const cl1 = clusters.get("cl1");
        const gateway = await get(cl1, `${GW}/namespaces/${NS}/gateways/envoy-thanos-cl1`);
        assert.equal(gateway.spec.gatewayClassName, "eg");
        assert.deepEqual(gateway.spec.listeners[0].tls, {
            mode: "Terminate",
            certificateRefs: [{ group: "", kind: "Secret", name: "envoy-thanos-cl1-server-tls" }],
        });
        assert.equal(gateway.spec.listeners[0].hostname, "cl1m.example.com");
        // An API server whose CRD lacked spec.tls.frontend would have pruned this silently.
        assert.deepEqual(gateway.spec.tls.frontend.default.validation, {
            caCertificateRefs: [{ group: "", kind: "ConfigMap", name: "envoy-thanos-cl1-client-ca" }],
            mode: "AllowValidOnly",
        });
        const caMap = await get(cl1, `/api/v1/namespaces/${NS}/configmaps/envoy-thanos-cl1-client-ca`);
        assert.deepEqual(caMap.data, { "ca.crt": ca.ca.certificate });
        const route = await get(cl1, `${GW}/namespaces/${NS}/grpcroutes/envoy-thanos-cl1`);
        assert.deepEqual(route.spec.hostnames, ["cl1m.example.com"]);
        assert.deepEqual(route.spec.rules[0].backendRefs, [{ group: "", kind: "Service", name: SERVICE, port: 10901, weight: 1 }]);
        const backend = await get(cl1, `${EG}/namespaces/${NS}/backendtrafficpolicies/envoy-thanos-cl1`);
        assert.equal(backend.spec.timeout.http.requestTimeout, "0s");
        const clientPolicy = await get(cl1, `${EG}/namespaces/${NS}/clienttrafficpolicies/envoy-thanos-cl1`);
        assert.deepEqual(clientPolicy.spec.tls.clientValidation.subjectAltNames, { dnsNames: [{ type: "Exact", value: "envoy-thanos-client" }] });
        const serverTls = await get(cl1, `/api/v1/namespaces/${NS}/secrets/envoy-thanos-cl1-server-tls`);
        assert.equal(Buffer.from(serverTls.data["tls.crt"], "base64").toString(), server.certificate);
    });

    it("previews no change right after", async () => {
        await project.ok(["preview", "-s", STACK, "--expect-no-changes"]);
    });

    it("leaves the cluster empty of our Gateway API objects after `pulumi destroy`", async () => {
        await project.ok(["destroy", "-s", STACK, "--yes", "--skip-preview"]);
        const cl1 = clusters.get("cl1");
        for (const kind of [`${GW}/gateways`, `${GW}/grpcroutes`, `${EG}/backendtrafficpolicies`, `${EG}/clienttrafficpolicies`, "/api/v1/configmaps"]) {
            const items = (await get(cl1, `${kind}?labelSelector=${encodeURIComponent(PART_OF)}`)).items;
            assert.deepEqual(
                items.map((i: any) => i.metadata.name),
                [],
                kind,
            );
        }
    });

    it(
        "shows why the ClientTrafficPolicy does not wait for the Gateway: a CA ConfigMap only the Gateway names does not wake Envoy Gateway",
        { timeout: 120_000 },
        async () => {
            const cl1 = clusters.get("cl1");
            const cluster = buildModel(
                {
                    renderDirectory: dir,
                    frontDoor: "gateway-api",
                    gatewayApi: { gatewayClassName: "eg" },
                    sidecar: { namespace: NS, service: SERVICE, port: 10901 },
                    clusters: [{ name: "cl1", host: "cl1m.example.com", port: 10002 }],
                },
                { checkSecretMaterial: false, now: new Date() },
            ).clusters[0];
            const names = observedNames(cluster.name);
            const create = async (collection: string, body: object) => {
                const res = await cl1.request("POST", collection, body);
                assert.equal(res.status, 201, `${collection}: ${JSON.stringify(res.body).slice(0, 300)}`);
            };
            const meta = (name: string) => ({ name, namespace: NS });
            const gatewayCondition = async (type: string) =>
                (await get(cl1, `${GW}/namespaces/${NS}/gateways/${names.gateway}`)).status?.conditions?.find((c: any) => c.type === type);
            // The order `pulumi up` never uses but Envoy Gateway's cache may see: the Gateway before its CA ConfigMap.
            await create(`/api/v1/namespaces/${NS}/secrets`, {
                metadata: meta(names.serverTlsSecret),
                type: "kubernetes.io/tls",
                stringData: { "tls.crt": server.certificate, "tls.key": server.privateKey },
            });
            await create(`${GW}/namespaces/${NS}/gateways`, {
                apiVersion: GATEWAY_API_VERSION,
                kind: "Gateway",
                metadata: meta(names.gateway),
                spec: gatewaySpec(cluster),
            });
            // The CRD's default status says Pending until Envoy Gateway has judged the Gateway.
            await waitFor(
                "Envoy Gateway to judge the Gateway",
                60_000,
                async () => ((await gatewayCondition("Accepted"))?.reason !== "Pending" ? true : undefined),
                300,
            );
            await create(`/api/v1/namespaces/${NS}/configmaps`, { metadata: meta(names.clientCaConfigMap), data: clientCaData(ca.ca.certificate) });
            await sleep(15_000);
            assert.notEqual((await gatewayCondition("Programmed"))?.status, "True", "the CA ConfigMap alone does not get the Gateway translated again");
            await create(`${EG}/namespaces/${NS}/clienttrafficpolicies`, {
                apiVersion: ENVOY_GATEWAY_VERSION,
                kind: "ClientTrafficPolicy",
                metadata: meta(names.clientTrafficPolicy),
                spec: clientTrafficPolicySpec(cluster),
            });
            await waitFor("the Gateway Programmed once a ClientTrafficPolicy names the ConfigMap", 60_000, async () =>
                (await gatewayCondition("Programmed"))?.status === "True" ? true : undefined,
            );
        },
    );
});
