import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { imagePinProblem } from "../../components/image-pin";
import { COMPUTED_OBJECT, COMPUTED_STRING, policy, runPolicy, TYPES } from "./harness";

const NGINX = "nginx.ingress.kubernetes.io/";

describe("gateway-requires-client-cert", () => {
    const name = "gateway-requires-client-cert";
    const listener = { name: "thanos-grpc", protocol: "HTTPS", port: 443, tls: { mode: "Terminate" } };
    const validation = { caCertificateRefs: [{ group: "", kind: "ConfigMap", name: "client-ca" }], mode: "AllowValidOnly" };
    const gateway = (tls: unknown, listeners: unknown[] = [listener]) => ({ metadata: { name: "gw" }, spec: { gatewayClassName: "eg", listeners, tls } });

    it("passes a Gateway that validates client certificates (default or per port)", async () => {
        assert.deepEqual(await runPolicy(policy(name), TYPES.gateway, gateway({ frontend: { default: { validation } } })), []);
        assert.deepEqual(
            await runPolicy(policy(name), TYPES.gateway, gateway({ frontend: { default: {}, perPort: [{ port: 443, tls: { validation } }] } })),
            [],
        );
    });

    it("rejects a TLS listener without frontend validation, naming the listener and the fix", async () => {
        const violations = await runPolicy(policy(name), TYPES.gateway, gateway(undefined));
        assert.equal(violations.length, 1);
        assert.match(
            violations[0],
            /listener thanos-grpc \(port 443\) terminates TLS without client-certificate validation.*Fix: set spec\.tls\.frontend\.default\.validation\.caCertificateRefs/,
        );
    });

    it("rejects the insecure fallback mode, and ignores plain HTTP listeners", async () => {
        const insecure = await runPolicy(
            policy(name),
            TYPES.gateway,
            gateway({ frontend: { default: { validation: { ...validation, mode: "AllowInsecureFallback" } } } }),
        );
        assert.equal(insecure.length, 1);
        assert.match(insecure[0], /AllowInsecureFallback.*Fix: set the validation mode to AllowValidOnly/);
        assert.deepEqual(await runPolicy(policy(name), TYPES.gateway, gateway(undefined, [{ name: "http", protocol: "HTTP", port: 80 }])), []);
    });

    it("does not judge what is unknown during preview", async () => {
        assert.deepEqual(await runPolicy(policy(name), TYPES.gateway, gateway(COMPUTED_OBJECT)), []);
    });
});

describe("grpc-ingress-requires-client-cert", () => {
    const name = "grpc-ingress-requires-client-cert";
    const ingress = (annotations: Record<string, string>) => ({
        metadata: { name: "sidecar", annotations },
        spec: { rules: [{ host: "cl1m.example.com" }] },
    });
    const mtls = { [`${NGINX}backend-protocol`]: "GRPC", [`${NGINX}auth-tls-verify-client`]: "on", [`${NGINX}auth-tls-secret`]: "monitoring/client-ca" };

    it("passes a gRPC Ingress that verifies client certificates against a CA Secret", async () => {
        assert.deepEqual(await runPolicy(policy(name), TYPES.ingress, ingress(mtls)), []);
    });

    it("ignores an Ingress that is not a gRPC backend", async () => {
        assert.deepEqual(await runPolicy(policy(name), TYPES.ingress, ingress({ [`${NGINX}backend-protocol`]: "HTTP" })), []);
    });

    it("rejects a gRPC Ingress without client certificate verification (the manual recipe)", async () => {
        const violations = await runPolicy(policy(name), TYPES.ingress, ingress({ [`${NGINX}backend-protocol`]: "GRPC" }));
        assert.equal(violations.length, 2);
        assert.match(
            violations[0],
            /forwards gRPC \(backend-protocol: GRPC\).*auth-tls-verify-client is not set.*Fix: set nginx\.ingress\.kubernetes\.io\/auth-tls-verify-client: "on"/,
        );
        assert.match(violations[1], /auth-tls-secret is not set.*Fix: set nginx\.ingress\.kubernetes\.io\/auth-tls-secret: <namespace>\/<Secret with ca\.crt>/);
    });

    it("rejects verification that is only optional, and an empty CA Secret", async () => {
        const violations = await runPolicy(
            policy(name),
            TYPES.ingress,
            ingress({ ...mtls, [`${NGINX}auth-tls-verify-client`]: "optional", [`${NGINX}auth-tls-secret`]: "" }),
        );
        assert.equal(violations.length, 2);
        assert.match(violations[0], /auth-tls-verify-client is "optional"/);
    });

    it("does not flag values that are only known after the preview", async () => {
        const computed = { ...mtls, [`${NGINX}auth-tls-verify-client`]: COMPUTED_STRING, [`${NGINX}auth-tls-secret`]: COMPUTED_STRING };
        assert.deepEqual(await runPolicy(policy(name), TYPES.ingress, ingress(computed)), []);
    });
});

describe("grpc-ingress-no-bypass-annotations", () => {
    const name = "grpc-ingress-no-bypass-annotations";
    const ingress = (annotations: Record<string, string>) => ({ metadata: { name: "sidecar", annotations }, spec: { rules: [{ host: "cl1m.example.com" }] } });
    // What the program sets on every Ingress (rule 4 judges those values), plus a harmless extra.
    const ours = {
        [`${NGINX}backend-protocol`]: "GRPC",
        [`${NGINX}auth-tls-verify-client`]: "on",
        [`${NGINX}auth-tls-secret`]: "monitoring/client-ca",
        [`${NGINX}auth-tls-match-cn`]: "CN=envoy-thanos-client(,|$)",
        [`${NGINX}proxy-read-timeout`]: "3600",
        [`${NGINX}proxy-body-size`]: "8m",
    };

    it("passes the program's own annotations and harmless extras, and the default of the boolean ones", async () => {
        const defaults = { [`${NGINX}ssl-passthrough`]: "false", [`${NGINX}auth-tls-pass-certificate-to-upstream`]: "false" };
        assert.deepEqual(await runPolicy(policy(name), TYPES.ingress, ingress({ ...ours, ...defaults })), []);
    });

    it("rejects each bypass on a gRPC Ingress, naming the annotation and the fix", async () => {
        const bypasses = {
            [`${NGINX}server-snippet`]: "ssl_verify_client off;",
            [`${NGINX}ssl-passthrough`]: "true",
            [`${NGINX}auth-tls-pass-certificate-to-upstream`]: "true",
            [`${NGINX}canary`]: "true",
            [`${NGINX}default-backend`]: "elsewhere",
        };
        const violations = await runPolicy(policy(name), TYPES.ingress, ingress({ ...ours, ...bypasses }));
        assert.equal(violations.length, 5, violations.join("\n"));
        assert.match(violations[0], /^annotation nginx\.ingress\.kubernetes\.io\/server-snippet inserts raw nginx configuration.*\. Fix: remove it\.$/);
        assert.match(violations[1], /ssl-passthrough makes nginx pass the TLS connection through/);
        assert.match(violations[2], /auth-tls-pass-certificate-to-upstream .*Fix: remove it \(or set "false", the default\)\.$/);
        assert.match(violations[3], /canary makes this Ingress a canary/);
        assert.match(violations[4], /default-backend sends requests to another Service/);
    });

    it("ignores Ingresses that do not forward gRPC, and values computed during the preview", async () => {
        assert.deepEqual(await runPolicy(policy(name), TYPES.ingress, ingress({ [`${NGINX}server-snippet`]: "return 200;" })), []);
        assert.deepEqual(await runPolicy(policy(name), TYPES.ingress, ingress({ ...ours, [`${NGINX}server-snippet`]: COMPUTED_STRING })), []);
    });
});

describe("configmap-no-private-key", () => {
    const name = "configmap-no-private-key";
    const pem = (label: string) => `-----BEGIN ${label}-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n-----END ${label}-----\n`;

    it("passes certificates and paths", async () => {
        const props = { data: { "ca.crt": pem("CERTIFICATE"), "sds.yaml": "private_key: { filename: /etc/envoy-tls/tls.key }" } };
        assert.deepEqual(await runPolicy(policy(name), TYPES.configMap, props), []);
    });

    it("rejects a private key in data or binaryData", async () => {
        const props = {
            data: { "tls.key": pem("EC PRIVATE KEY"), "ca.crt": pem("CERTIFICATE") },
            binaryData: { "key.pem": Buffer.from(pem("PRIVATE KEY")).toString("base64") },
        };
        const violations = await runPolicy(policy(name), TYPES.configMap, props);
        assert.equal(violations.length, 2);
        assert.match(violations[0], /^ConfigMap data\.tls\.key contains a PEM private key;.*Fix: move the key to a Secret/);
        assert.match(violations[1], /^ConfigMap binaryData\.key\.pem contains a PEM private key/);
    });

    it("does not trip over values computed during the preview", async () => {
        const props = { data: { later: COMPUTED_STRING, "tls.key": pem("RSA PRIVATE KEY") } };
        assert.equal((await runPolicy(policy(name), TYPES.configMap, props)).length, 1, "the known key is still reported");
    });
});

describe("workload containers", () => {
    /** A hardened Deployment; `edit` changes its pod spec. */
    const deployment = (edit: (pod: Record<string, any>) => void = () => {}) => {
        const pod: Record<string, any> = {
            securityContext: { runAsNonRoot: true, runAsUser: 101 },
            containers: [{ name: "envoy", image: "envoyproxy/envoy:v1.40.0", resources: { limits: { cpu: "1", memory: "512Mi" } } }],
        };
        edit(pod);
        return { spec: { selector: {}, template: { spec: pod } } };
    };
    const run = (name: string, props: object, type: string = TYPES.deployment) => runPolicy(policy(name), type, props);

    it("passes a hardened Deployment under every container rule", async () => {
        for (const name of ["containers-have-limits", "containers-run-as-non-root", "images-pinned"]) {
            assert.deepEqual(await run(name, deployment()), [], name);
        }
    });

    it("containers-have-limits: rejects a container without limits, naming what is missing", async () => {
        const violations = await run(
            "containers-have-limits",
            deployment((pod) => (pod.containers[0].resources = { limits: { cpu: "1" } })),
        );
        assert.deepEqual(violations.length, 1);
        assert.match(
            violations[0],
            /^container "envoy" has no memory limit, so it can starve everything else on its node\. Fix: set resources\.limits\.cpu and resources\.limits\.memory/,
        );
    });

    it("containers-have-limits: covers init containers and the other workload kinds", async () => {
        const unlimited = deployment((pod) => (pod.initContainers = [{ name: "init", image: "busybox:1.36" }]));
        assert.match((await run("containers-have-limits", unlimited)).join("\n"), /init container "init" has no cpu or memory limit/);
        for (const type of [TYPES.statefulSet, TYPES.daemonSet]) {
            assert.equal((await run("containers-have-limits", unlimited, type)).length, 1, type);
        }
        assert.equal((await run("containers-have-limits", unlimited.spec.template, TYPES.pod)).length, 1, "Pod");
    });

    it("containers-run-as-non-root: a container setting overrides the pod's", async () => {
        const ok = deployment((pod) => {
            pod.securityContext = {};
            pod.containers[0].securityContext = { runAsNonRoot: true };
        });
        assert.deepEqual(await run("containers-run-as-non-root", ok), []);
        const overridden = deployment((pod) => (pod.containers[0].securityContext = { runAsNonRoot: false }));
        assert.match((await run("containers-run-as-non-root", overridden)).join("\n"), /container "envoy" does not set runAsNonRoot: true/);
    });

    it("containers-run-as-non-root: rejects UID 0 and a missing runAsNonRoot", async () => {
        const root = deployment((pod) => (pod.securityContext = { runAsUser: 0 }));
        const violations = await run("containers-run-as-non-root", root);
        assert.equal(violations.length, 2);
        assert.match(violations[0], /^container "envoy" runs as UID 0 \(root\)\. Fix: set securityContext\.runAsUser to a non-zero UID/);
        assert.match(
            violations[1],
            /does not set runAsNonRoot: true, so an image whose user is root runs as root\. Fix: set securityContext\.runAsNonRoot: true/,
        );
    });

    it("images-pinned: rejects :latest and untagged images", async () => {
        const latest = await run(
            "images-pinned",
            deployment((pod) => (pod.containers[0].image = "envoyproxy/envoy:latest")),
        );
        assert.match(latest.join("\n"), /container "envoy" image "envoyproxy\/envoy:latest" uses the :latest tag: .*Fix: pin a version tag/);
        const untagged = await run(
            "images-pinned",
            deployment((pod) => (pod.containers[0].image = "registry:5000/envoy")),
        );
        assert.match(untagged.join("\n"), /image "registry:5000\/envoy" has no tag, so Kubernetes pulls :latest/);
    });

    it("images-pinned: accepts version tags and digests", () => {
        for (const image of ["envoyproxy/envoy:v1.40.0", "registry:5000/envoy:1.2", "envoy@sha256:0123abcd", "envoy:latest@sha256:0123abcd"]) {
            assert.equal(imagePinProblem(image), undefined, image);
        }
    });

    it("images-by-digest (advisory): warns about a tag without a digest, accepts a digest", async () => {
        assert.equal(policy("images-by-digest").enforcementLevel, "advisory");
        const tagged = await run("images-by-digest", deployment());
        assert.match(tagged.join("\n"), /image "envoyproxy\/envoy:v1\.40\.0" has no digest.*Fix: pin the digest you verified/);
        const pinned = deployment((pod) => (pod.containers[0].image = `envoyproxy/envoy:v1.40.0@sha256:${"0".repeat(64)}`));
        assert.deepEqual(await run("images-by-digest", pinned), []);
    });

    it("flags nothing that is only known after the preview", async () => {
        const computed = deployment((pod) => {
            pod.securityContext = COMPUTED_OBJECT;
            pod.containers[0].image = COMPUTED_STRING;
            pod.containers[0].resources = COMPUTED_OBJECT;
        });
        for (const name of ["containers-have-limits", "containers-run-as-non-root", "images-pinned"]) {
            assert.deepEqual(await run(name, computed), [], name);
        }
        assert.deepEqual(await run("images-pinned", { spec: { template: { spec: { containers: COMPUTED_OBJECT } } } }), []);
    });
});
