import assert from "node:assert/strict";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { OpensslCa } from "../../tools/pki/openssl-ca";
import { crdsIn, gatewayStatusStandIn, installCrds, requireGatewayApiCrds } from "./support/gateway-api";
import { fakeIngressStatus, fakeSidecar, KubeClusters, requireKube } from "./support/kube";
import { applyPreviewRole, writePreviewKubeconfig } from "./support/preview-role";
import { tempDir } from "./support/processes";
import { PulumiProject, requirePulumi } from "./support/pulumi";

/**
 * The pull-request preview's credentials, on real API servers: with only rbac/preview-readonly.yaml (get, list,
 * watch) a `pulumi preview --refresh` of a change succeeds (the refresh reads every object the program manages, so a
 * kind missing from the role fails it) and finds the healthy objects healthy (the kinds the provider reads to judge
 * health are in the role too), and the same credentials cannot apply the change. Both front doors are there:
 * cl1 on ingress-nginx, cl2 (on the same API server) on the Gateway API, its CRDs installed from the pinned releases.
 */

const kube = requireKube();
const crds = requireGatewayApiCrds();
const skip = typeof kube === "object" && "skip" in kube ? kube.skip : typeof crds === "object" ? crds.skip : requirePulumi();
const SIDECAR = { namespace: "monitoring", service: "prom-kube-prometheus-prometheus-thanos" };

describe("pull-request previews with read-only credentials (rbac/preview-readonly.yaml)", { skip }, () => {
    const dir = skip ? "" : tempDir("preview-rbac");
    const kubeconfig = path.join(dir, "kubeconfig");
    const clusters = skip ? undefined! : new KubeClusters(["observer", "cl1"]);
    const project = skip ? undefined! : new PulumiProject({ KUBECONFIG: kubeconfig });
    let ingressStatus: { stop: () => Promise<void> } | undefined;
    let gatewayStatus: { stop: () => Promise<void> } | undefined;
    let stackConfig: (replicas: number) => Record<string, unknown>;

    before(async () => {
        await clusters.start();
        clusters.writeKubeconfig(kubeconfig);
        const cl1 = clusters.get("cl1");
        await fakeSidecar(cl1, SIDECAR);
        ingressStatus = fakeIngressStatus([cl1]);
        await installCrds(cl1, [...crdsIn(crds as string, "gateway-api"), ...crdsIn(crds as string, "envoy-gateway")]);
        gatewayStatus = gatewayStatusStandIn([cl1]);
        const ca = OpensslCa.create(path.join(dir, "pki"), "rbac");
        const client = ca.client();
        const server = ca.server("cl1m.example.com");
        const server2 = ca.server("cl2m.example.com");
        stackConfig = (replicas) => ({
            observer: { context: "observer" },
            envoy: { replicas },
            sidecar: { ...SIDECAR, port: 10901 },
            frontDoor: "gateway-api",
            clusters: [
                { name: "cl1", host: "cl1m.example.com", port: 10002, context: "cl1", frontDoor: "ingress-nginx" },
                { name: "cl2", host: "cl2m.example.com", port: 10003, context: "cl1" },
            ],
            tls: {
                mode: "provided",
                caBundle: ca.ca.certificate,
                client: { certificate: client.certificate, privateKey: client.privateKey },
                servers: {
                    cl1: { certificate: server.certificate, privateKey: server.privateKey },
                    cl2: { certificate: server2.certificate, privateKey: server2.privateKey },
                },
            },
        });
        project.writeStack("rbac", stackConfig(2));
        await project.ok(["stack", "init", "rbac"]);
        await project.ok(["up", "-s", "rbac", "--yes", "--skip-preview"]);
        await applyPreviewRole(clusters);
    });

    after(async () => {
        clusters?.writeKubeconfig(kubeconfig);
        await project?.run(["destroy", "-s", "rbac", "--yes", "--skip-preview"]);
        await ingressStatus?.stop();
        await gatewayStatus?.stop();
        await clusters?.stop();
    });

    it("previews a change with get/list/watch only, and cannot apply it", async () => {
        writePreviewKubeconfig(clusters, kubeconfig, "observer", path.join(dir, "users"));
        project.writeStack("rbac", stackConfig(3));
        // --refresh reads every live object first, as a preview that checks for drift does: it needs each get rule.
        const preview = await project.run(["preview", "-s", "rbac", "--diff", "--refresh"]);
        assert.equal(preview.code, 0, `${preview.stdout.slice(-3000)}\n${preview.stderr.slice(-2000)}`);
        assert.match(preview.stdout, /~ .*Deployment.*update|replicas/, "the preview shows the change");
        // Denied a kind it reads to judge health, the provider reads it as absent: kwok's Ready pods, the ReplicaSet
        // and the sidecar's Endpoints exist, so any such warning is the role's.
        assert.doesNotMatch(
            preview.stdout + preview.stderr,
            /unhealthy state|was not attained|No matching service found/,
            "the refresh misjudged a healthy object",
        );
        const up = await project.run(["up", "-s", "rbac", "--yes", "--skip-preview"]);
        assert.notEqual(up.code, 0, "read-only credentials applied a change");
        assert.match(up.stdout + up.stderr, /forbidden/i);
    });
});
