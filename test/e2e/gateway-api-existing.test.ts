import assert from "node:assert/strict";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { OpensslCa } from "../../tools/pki/openssl-ca";
import { crdsIn, gatewayStatusStandIn, installCrds, requireGatewayApiCrds } from "./support/gateway-api";
import { ControlPlane, KubeClusters, requireKube } from "./support/kube";
import { tempDir } from "./support/processes";
import { PulumiProject, requirePulumi } from "./support/pulumi";

/**
 * gatewayApi.existingGateway against the real CRD schemas (Gateway API v1.6.1, Envoy Gateway v1.9.1): the platform
 * team's Gateway, configured as docs/front-doors.md says (its own port, perPort frontend validation naming our CA ConfigMap,
 * certificateRefs to our Secret, both across namespaces), is accepted by the API server; `pulumi up` attaches the route
 * to its listener through a ReferenceGrant and creates no Gateway of its own; the platform's Gateway is untouched.
 * A stand-in writes the route status the program waits for.
 */

const kube = requireKube();
const crds = requireGatewayApiCrds();
const missingPulumi = requirePulumi();
const skip = typeof kube === "object" && "skip" in kube ? kube.skip : typeof crds === "object" ? crds.skip : missingPulumi;

const STACK = "existing";
const NS = "monitoring";
const PLATFORM_NS = "gateways";
const GW = "/apis/gateway.networking.k8s.io/v1";
const GW_BETA = "/apis/gateway.networking.k8s.io/v1beta1";
const EG = "/apis/gateway.envoyproxy.io/v1alpha1";

/** The platform team's Gateway, as docs/front-doors.md ("Attaching to a platform team's Gateway") tells them to configure it. */
const platformGateway = {
    apiVersion: "gateway.networking.k8s.io/v1",
    kind: "Gateway",
    metadata: { name: "shared", namespace: PLATFORM_NS },
    spec: {
        gatewayClassName: "eg",
        listeners: [
            { name: "https", protocol: "HTTPS", port: 443, tls: { mode: "Terminate", certificateRefs: [{ kind: "Secret", name: "wildcard" }] } },
            {
                name: "thanos-cl1",
                protocol: "HTTPS",
                port: 8443,
                hostname: "cl1m.example.com",
                tls: { mode: "Terminate", certificateRefs: [{ kind: "Secret", name: "envoy-thanos-cl1-server-tls", namespace: NS }] },
                allowedRoutes: {
                    namespaces: { from: "Selector", selector: { matchLabels: { "kubernetes.io/metadata.name": NS } } },
                    kinds: [{ kind: "GRPCRoute" }],
                },
            },
        ],
        tls: {
            frontend: {
                // Required by the schema; empty: the platform's other ports verify no client certificate.
                default: {},
                perPort: [
                    {
                        port: 8443,
                        tls: {
                            validation: {
                                caCertificateRefs: [{ group: "", kind: "ConfigMap", name: "envoy-thanos-cl1-client-ca", namespace: NS }],
                                mode: "AllowValidOnly",
                            },
                        },
                    },
                ],
            },
        },
    },
};

async function get(plane: ControlPlane, pathname: string): Promise<any> {
    const res = await plane.request("GET", pathname);
    assert.equal(res.status, 200, `GET ${pathname}: ${res.status} ${JSON.stringify(res.body).slice(0, 300)}`);
    return res.body;
}

describe("gateway-api front door on a platform team's Gateway: real CRD schemas, pulumi up, read back", { skip }, () => {
    const dir = skip ? "" : tempDir("gateway-api-existing-e2e");
    const kubeconfig = path.join(dir, "kubeconfig");
    // One API server is the observer and the observed cluster.
    const clusters = skip ? undefined! : new KubeClusters(["cl1"]);
    const project = skip ? undefined! : new PulumiProject({ KUBECONFIG: kubeconfig });
    let standIn: { stop: () => Promise<void> } | undefined;

    before(async () => {
        await clusters.start();
        clusters.writeKubeconfig(kubeconfig);
        const cl1 = clusters.get("cl1");
        await installCrds(cl1, [...crdsIn(crds as string, "gateway-api"), ...crdsIn(crds as string, "envoy-gateway")]);
        for (const name of [NS, PLATFORM_NS]) await cl1.request("POST", "/api/v1/namespaces", { metadata: { name } });
        const created = await cl1.request("POST", `${GW}/namespaces/${PLATFORM_NS}/gateways`, platformGateway);
        assert.equal(created.status, 201, `the platform Gateway as documented: ${JSON.stringify(created.body).slice(0, 500)}`);
        const ca = OpensslCa.create(path.join(dir, "pki"), "existing");
        const pair = (i: { certificate: string; privateKey: string }) => ({ certificate: i.certificate, privateKey: i.privateKey });
        await project.ok(["stack", "init", STACK]);
        project.writeStack(STACK, {
            observer: { context: "cl1" },
            envoy: { replicas: 1 },
            sidecar: { namespace: NS, port: 10901 },
            frontDoor: "gateway-api",
            gatewayApi: { existingGateway: { namespace: PLATFORM_NS, name: "shared", sectionName: "thanos-cl1" } },
            clusters: [{ name: "cl1", host: "cl1m.example.com", address: "cl1m.example.com:8443", context: "cl1" }],
            tls: { mode: "provided", caBundle: ca.ca.certificate, client: pair(ca.client()), servers: { cl1: pair(ca.server("cl1m.example.com")) } },
        });
        standIn = gatewayStatusStandIn([cl1]);
    });

    after(async () => {
        await standIn?.stop();
        await project?.run(["destroy", "-s", STACK, "--yes", "--skip-preview"]);
        await clusters?.stop();
    });

    it("attaches the route to the platform's listener through a ReferenceGrant, and creates no Gateway", async () => {
        const cl1 = clusters.get("cl1");
        await project.ok(["up", "-s", STACK, "--yes", "--skip-preview"]);
        const route = await get(cl1, `${GW}/namespaces/${NS}/grpcroutes/envoy-thanos-cl1`);
        assert.deepEqual(route.spec.parentRefs, [
            { group: "gateway.networking.k8s.io", kind: "Gateway", namespace: PLATFORM_NS, name: "shared", sectionName: "thanos-cl1" },
        ]);
        const grant = await get(cl1, `${GW_BETA}/namespaces/${NS}/referencegrants/envoy-thanos-cl1`);
        assert.deepEqual(grant.spec, {
            from: [{ group: "gateway.networking.k8s.io", kind: "Gateway", namespace: PLATFORM_NS }],
            to: [
                { group: "", kind: "Secret", name: "envoy-thanos-cl1-server-tls" },
                { group: "", kind: "ConfigMap", name: "envoy-thanos-cl1-client-ca" },
            ],
        });
        await get(cl1, `/api/v1/namespaces/${NS}/secrets/envoy-thanos-cl1-server-tls`);
        await get(cl1, `/api/v1/namespaces/${NS}/configmaps/envoy-thanos-cl1-client-ca`);
        await get(cl1, `${EG}/namespaces/${NS}/backendtrafficpolicies/envoy-thanos-cl1`);
        assert.equal((await cl1.request("GET", `${GW}/namespaces/${NS}/gateways/envoy-thanos-cl1`)).status, 404, "no Gateway of the program's own");
        assert.equal((await cl1.request("GET", `${EG}/namespaces/${NS}/clienttrafficpolicies/envoy-thanos-cl1`)).status, 404);
        const platform = await get(cl1, `${GW}/namespaces/${PLATFORM_NS}/gateways/shared`);
        assert.equal(platform.metadata.generation, 1, "the platform's Gateway is not modified");
        assert.deepEqual(platform.spec.tls, platformGateway.spec.tls);
    });

    it("previews no change right after", async () => {
        await project.ok(["preview", "-s", STACK, "--expect-no-changes"]);
    });

    it("leaves the platform's Gateway in place on `pulumi destroy`, and removes the ReferenceGrant", async () => {
        const cl1 = clusters.get("cl1");
        await project.ok(["destroy", "-s", STACK, "--yes", "--skip-preview"]);
        assert.equal((await cl1.request("GET", `${GW_BETA}/namespaces/${NS}/referencegrants/envoy-thanos-cl1`)).status, 404);
        assert.equal((await cl1.request("GET", `${GW}/namespaces/${NS}/grpcroutes/envoy-thanos-cl1`)).status, 404);
        await get(cl1, `${GW}/namespaces/${PLATFORM_NS}/gateways/shared`);
    });
});
