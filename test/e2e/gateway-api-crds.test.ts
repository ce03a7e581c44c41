import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import * as YAML from "yaml";
import { OpensslCa } from "../../tools/pki/openssl-ca";
import { crdsIn, installCrds, requireGatewayApiCrds } from "./support/gateway-api";
import { createObject, issueUserCredentials, KubeClusters, requireKube } from "./support/kube";
import { tempDir } from "./support/processes";
import { PulumiProject, requirePulumi } from "./support/pulumi";

/**
 * A gateway-api cluster whose Gateway API CRDs are missing or too old stops `pulumi preview` and `pulumi up` with one
 * message naming the cluster, the installed version and the fix, before any resource is registered: against a real
 * API server with no CRDs, then with a Gateway CRD whose schema lacks spec.tls.frontend (as before v1.5.0), then with
 * the CRDs the tests pin, which pass.
 */

const kube = requireKube();
const crds = requireGatewayApiCrds();
const missingPulumi = requirePulumi();
const skip = typeof kube === "object" && "skip" in kube ? kube.skip : typeof crds === "object" ? crds.skip : missingPulumi;

const ROOT = path.resolve(__dirname, "../..");
const STACK = "crds";
const GATEWAY_CRD = "gateways.gateway.networking.k8s.io";
const CRD_PATH = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions";

describe("gateway-api front door: missing or old Gateway API CRDs are one clear error", { skip }, () => {
    const dir = skip ? "" : tempDir("gateway-api-crds-e2e");
    const kubeconfig = path.join(dir, "kubeconfig");
    // One API server is both the observer and the observed cluster: the check reads only the observed one.
    const clusters = skip ? undefined! : new KubeClusters(["cl1"]);
    const project = skip ? undefined! : new PulumiProject({ KUBECONFIG: kubeconfig });
    // The pull-request preview's user, bound to rbac/preview-readonly.yaml only: the check must be able to read the CRD.
    const readOnlyKubeconfig = path.join(dir, "kubeconfig-read-only");
    const readOnly = skip ? undefined! : new PulumiProject({ KUBECONFIG: readOnlyKubeconfig });

    before(async () => {
        await clusters.start();
        clusters.writeKubeconfig(kubeconfig);
        const cl1 = clusters.get("cl1");
        for (const doc of YAML.parseAllDocuments(fs.readFileSync(path.join(ROOT, "rbac/preview-readonly.yaml"), "utf8")).map((d) => d.toJS())) {
            await createObject(cl1, `/apis/rbac.authorization.k8s.io/v1/${doc.kind === "ClusterRole" ? "clusterroles" : "clusterrolebindings"}`, doc);
        }
        const user = issueUserCredentials(cl1, "envoy-thanos-preview", path.join(dir, "users"));
        clusters.writeKubeconfig(readOnlyKubeconfig, "cl1", () => user);
        const ca = OpensslCa.create(path.join(dir, "pki"), "crds");
        const pair = (i: { certificate: string; privateKey: string }) => ({ certificate: i.certificate, privateKey: i.privateKey });
        await project.ok(["stack", "init", STACK]);
        await readOnly.ok(["stack", "init", STACK]);
        const config = {
            observer: { context: "cl1" },
            envoy: { replicas: 1 },
            sidecar: { namespace: "monitoring", port: 10901 },
            frontDoor: "gateway-api",
            clusters: [{ name: "cl1", host: "cl1m.example.com", context: "cl1" }],
            tls: { mode: "provided", caBundle: ca.ca.certificate, client: pair(ca.client()), servers: { cl1: pair(ca.server("cl1m.example.com")) } },
        };
        project.writeStack(STACK, config);
        readOnly.writeStack(STACK, config);
    });

    after(async () => {
        await clusters?.stop();
    });

    /** Runs a command that must fail with exactly one message matching `message`, no stack trace, nothing registered. */
    async function failsWith(args: string[], message: RegExp, as = project): Promise<void> {
        const result = await as.run(args);
        const output = result.stdout + result.stderr;
        assert.notEqual(result.code, 0, output.slice(-3000));
        const errors = output.split("\n").filter((line) => /^\s*error: /.test(line) && !/^\s*error: (preview|update) failed$/.test(line));
        assert.equal(errors.length, 1, output.slice(-3000));
        assert.match(errors[0], message);
        assert.doesNotMatch(output, /\n\s+at |unhandled exception|error serializing/, "a user error, printed without a stack trace");
        const state = JSON.parse(await as.exportState(STACK));
        assert.deepEqual(
            (state.deployment.resources ?? []).map((r: { type: string }) => r.type).filter((t: string) => t !== "pulumi:pulumi:Stack"),
            [],
            "no resource was registered",
        );
    }

    it("names the cluster and the fix when the CRDs are missing, in preview and in up", async () => {
        const message =
            /^\s*error: Observed cluster cl1 \(clusters\[0\], front door gateway-api\) has no Gateway API CRDs \(no CustomResourceDefinition gateways\.gateway\.networking\.k8s\.io\)\. Install the Gateway API CRDs v1\.5\.0 or later, standard channel .*releases\/download\/v1\.6\.1\/standard-install\.yaml .*clusters\[0\]\.frontDoor: ingress-nginx\.$/;
        await failsWith(["preview", "-s", STACK], message);
        await failsWith(["up", "-s", STACK, "--yes", "--skip-preview"], message);
        // Without the CRD read in rbac/preview-readonly.yaml the check would be refused and this preview would pass.
        await failsWith(["preview", "-s", STACK], message, readOnly);
    });

    it("names the installed version when the Gateway CRD has no spec.tls.frontend", async () => {
        const all = [...crdsIn(crds as string, "gateway-api"), ...crdsIn(crds as string, "envoy-gateway")];
        // What Gateway API v1.2.1 installed: the same CRD without the frontend TLS block (spec.tls came with v1.5.0).
        const old = structuredClone(all.find((c) => c.metadata.name === GATEWAY_CRD));
        old.metadata.annotations["gateway.networking.k8s.io/bundle-version"] = "v1.2.1";
        for (const version of old.spec.versions) delete version.schema.openAPIV3Schema.properties.spec.properties.tls;
        await installCrds(clusters.get("cl1"), [old, ...all.filter((c) => c.metadata.name !== GATEWAY_CRD)]);
        const message =
            /^\s*error: Observed cluster cl1 \(clusters\[0\], front door gateway-api\) has Gateway API v1\.2\.1 \(standard channel\), whose Gateway has no spec\.tls\.frontend \(client-certificate validation, new in v1\.5\.0\)\. Install the Gateway API CRDs v1\.5\.0 or later/;
        await failsWith(["preview", "-s", STACK], message);
        await failsWith(["up", "-s", STACK, "--yes", "--skip-preview"], message);
    });

    it("passes the check with the pinned CRDs (the preview plans the Gateway)", async () => {
        const cl1 = clusters.get("cl1");
        const current = crdsIn(crds as string, "gateway-api").find((c) => c.metadata.name === GATEWAY_CRD);
        const installed = (await cl1.request("GET", `${CRD_PATH}/${GATEWAY_CRD}`)).body;
        const res = await cl1.request("PUT", `${CRD_PATH}/${GATEWAY_CRD}`, {
            ...current,
            metadata: { ...current.metadata, resourceVersion: installed.metadata.resourceVersion },
        });
        assert.equal(res.status, 200, JSON.stringify(res.body).slice(0, 300));
        const steps = await project.previewSteps(STACK);
        assert.ok(
            steps.some((s) => s.op === "create" && s.name === "cluster-cl1-gateway-api-gateway"),
            steps.map((s) => `${s.op} ${s.name}`).join("\n"),
        );
    });
});
