import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as pulumi from "@pulumi/pulumi";
import * as YAML from "yaml";
import { CHECKSUM_ANNOTATION } from "../../components/observer/manifests";
import {
    clustersConfig,
    devStackConfig,
    isSecret,
    MINIMAL_KUBECONFIG,
    MOCK_CERT_MARK,
    MOCK_PRIVATE_KEY_MARK,
    named,
    ofType,
    plain,
    RecordedResource,
    runProgram,
    runProgramRecordingParents,
    runWithMocks,
    RunResult,
} from "./harness";

const T = {
    namespace: "kubernetes:core/v1:Namespace",
    configMap: "kubernetes:core/v1:ConfigMap",
    secret: "kubernetes:core/v1:Secret",
    service: "kubernetes:core/v1:Service",
    deployment: "kubernetes:apps/v1:Deployment",
    pdb: "kubernetes:policy/v1:PodDisruptionBudget",
    ingress: "kubernetes:networking.k8s.io/v1:Ingress",
    gateway: "kubernetes:gateway.networking.k8s.io/v1:Gateway",
    grpcRoute: "kubernetes:gateway.networking.k8s.io/v1:GRPCRoute",
    backendTrafficPolicy: "kubernetes:gateway.envoyproxy.io/v1alpha1:BackendTrafficPolicy",
    clientTrafficPolicy: "kubernetes:gateway.envoyproxy.io/v1alpha1:ClientTrafficPolicy",
    referenceGrant: "kubernetes:gateway.networking.k8s.io/v1beta1:ReferenceGrant",
    networkPolicy: "kubernetes:networking.k8s.io/v1:NetworkPolicy",
    provider: "pulumi:providers:kubernetes",
};

function countBy(resources: RecordedResource[], key: (r: RecordedResource) => string): Record<string, number> {
    const counts: Record<string, number> = {};
    for (const r of resources) counts[key(r)] = (counts[key(r)] ?? 0) + 1;
    return counts;
}

/**
 * `certificates`: issued by the program (generate mode) or supplied by the operator (provided, files);
 * `gatewayApi`: the clusters whose front door is gateway-api (Envoy Gateway), the others are on ingress-nginx.
 */
function assertInventory(result: RunResult, names: string[], certificates: "issued" | "supplied" = "issued", gatewayApi: string[] = []): void {
    const n = names.length;
    assert.equal(result.error, undefined, result.error?.message);
    const k8sResources = result.resources.filter((r) => r.type.startsWith("kubernetes:"));
    const byProvider = countBy(k8sResources, (r) => `${r.provider} ${r.type}`);
    const expected: Record<string, number> = {
        [`observer ${T.namespace}`]: 1,
        [`observer ${T.configMap}`]: 1,
        [`observer ${T.secret}`]: 1,
        [`observer ${T.deployment}`]: 1,
        [`observer ${T.pdb}`]: 1,
        [`observer ${T.service}`]: n + 1,
        [`observer ${T.networkPolicy}`]: 1,
    };
    for (const name of names) {
        if (gatewayApi.includes(name)) {
            for (const type of [T.secret, T.configMap, T.gateway, T.grpcRoute, T.backendTrafficPolicy, T.clientTrafficPolicy]) {
                expected[`observed-${name} ${type}`] = 1;
            }
        } else {
            expected[`observed-${name} ${T.secret}`] = 2;
            expected[`observed-${name} ${T.ingress}`] = 1;
        }
    }
    assert.deepEqual(byProvider, expected);
    const others = countBy(
        result.resources.filter((r) => !r.type.startsWith("kubernetes:")),
        (r) => r.type,
    );
    const issuing =
        certificates === "issued"
            ? {
                  "random:index/randomId:RandomId": 1,
                  "tls:index/privateKey:PrivateKey": n + 2,
                  "tls:index/certRequest:CertRequest": n + 1,
                  "tls:index/selfSignedCert:SelfSignedCert": 1,
                  "tls:index/locallySignedCert:LocallySignedCert": n + 1,
              }
            : {};
    assert.deepEqual(others, {
        "envoy-thanos:pki:Pki": 1,
        "envoy-thanos:observer:ObserverGateway": 1,
        "envoy-thanos:observed:ObservedCluster": n,
        ...(gatewayApi.length > 0 ? { "envoy-thanos:observed:GatewayApiFrontDoor": gatewayApi.length } : {}),
        [T.provider]: n + 1,
        ...issuing,
    });
}

describe("program under Pulumi mocks", () => {
    for (const n of [1, 2, 25]) {
        it(`declares the expected resources per provider for ${n} cluster(s)`, async () => {
            assertInventory(
                await runProgram(clustersConfig(n)),
                Array.from({ length: n }, (_, i) => `c${i + 1}`),
            );
        });
    }

    it("creates every resource of cluster X with X's provider, and names what it creates after X", async () => {
        const result = await runProgram(clustersConfig(3));
        for (const r of result.resources.filter((r) => r.type.startsWith("kubernetes:"))) {
            const match = /^cluster-(c\d+)-/.exec(r.name);
            if (match) {
                assert.equal(r.provider, `observed-${match[1]}`, `${r.type} ${r.name}`);
                assert.match(r.inputs.metadata.name, new RegExp(`-${match[1]}(-|$)`));
            } else {
                assert.equal(r.provider, "observer", `${r.type} ${r.name}`);
            }
        }
    });

    it("renders each cluster into its own sub-directory in render mode, and connects by context otherwise", async () => {
        const rendered = await runProgram(clustersConfig(2));
        assert.deepEqual(
            ofType(rendered, T.provider).map((p) => [p.name, p.inputs.renderYamlToDirectory]),
            [
                ["observer", "rendered/observer"],
                ["observed-c1", "rendered/c1"],
                ["observed-c2", "rendered/c2"],
            ],
        );
        const live = await runProgram({
            observer: { context: "obs" },
            clusters: [
                { name: "c1", host: "c1.example.com", context: "ctx-1" },
                { name: "c2", host: "c2.example.com", kubeconfig: MINIMAL_KUBECONFIG },
                { name: "c3", host: "c3.example.com", kubeconfig: MINIMAL_KUBECONFIG, context: "edge" },
            ],
        });
        const providers = Object.fromEntries(ofType(live, T.provider).map((p) => [p.name, p.inputs]));
        assert.equal(providers.observer.context, "obs");
        assert.equal(providers["observed-c1"].context, "ctx-1");
        assert.equal(providers["observed-c1"].renderYamlToDirectory, undefined);
        assert.ok(isSecret(providers["observed-c2"].kubeconfig), "kubeconfig content must be a secret");
        assert.equal(providers["observed-c2"].context, undefined, "without context, the kubeconfig's current-context applies");
        assert.ok(isSecret(providers["observed-c3"].kubeconfig));
        assert.equal(providers["observed-c3"].context, "edge", "a context beside a kubeconfig picks one of its contexts");
        for (const p of Object.values(providers)) {
            // Provider inputs reach the engine as strings.
            assert.equal(String(p.enableSecretMutable), "true", "renewed certificates update Secrets in place");
            assert.equal(String(p.enableConfigMapMutable), "true");
        }
    });

    it("builds the Ingress for ingress-nginx with client verification, gRPC and long timeouts", async () => {
        const result = await runProgram(
            clustersConfig(1, { clusters: [{ name: "c1", host: "c1.example.com", ingress: { annotations: { "example.com/team": "obs" } } }] }),
        );
        const ingress = named(result, T.ingress, "cluster-c1-ingress").inputs;
        assert.deepEqual(ingress.metadata.annotations, {
            "example.com/team": "obs",
            "nginx.ingress.kubernetes.io/backend-protocol": "GRPC",
            "nginx.ingress.kubernetes.io/auth-tls-secret": "monitoring/envoy-thanos-c1-client-ca",
            "nginx.ingress.kubernetes.io/auth-tls-verify-client": "on",
            "nginx.ingress.kubernetes.io/auth-tls-verify-depth": "1",
            "nginx.ingress.kubernetes.io/auth-tls-match-cn": "CN=envoy-thanos-client(,|$)",
            "nginx.ingress.kubernetes.io/proxy-read-timeout": "3600",
            "nginx.ingress.kubernetes.io/proxy-send-timeout": "3600",
        });
        assert.equal(ingress.metadata.namespace, "monitoring");
        assert.equal(ingress.spec.ingressClassName, "nginx");
        assert.deepEqual(ingress.spec.tls, [{ hosts: ["c1.example.com"], secretName: "envoy-thanos-c1-server-tls" }]);
        assert.deepEqual(ingress.spec.rules[0].host, "c1.example.com");
        assert.deepEqual(ingress.spec.rules[0].http.paths[0].backend, { service: { name: "prom-kube-prometheus-prometheus-thanos", port: { name: "grpc" } } });
        const numeric = await runProgram(clustersConfig(1, { sidecar: { port: 10901, service: "thanos-sidecar" } }));
        assert.deepEqual(named(numeric, T.ingress, "cluster-c1-ingress").inputs.spec.rules[0].http.paths[0].backend, {
            service: { name: "thanos-sidecar", port: { number: 10901 } },
        });
    });

    it("pins Envoy's CN on the Ingress literally: another CN of the same CA, or a longer one, does not match", async () => {
        const { matchCnPattern } = await import("../../components/observed/ingress");
        const pattern = new RegExp(matchCnPattern("envoy-thanos-client"));
        assert.ok(pattern.test("CN=envoy-thanos-client,O=envoy-thanos"));
        assert.ok(pattern.test("O=envoy-thanos,CN=envoy-thanos-client"));
        assert.ok(!pattern.test("CN=envoy-thanos-client-2,O=envoy-thanos"));
        assert.ok(!pattern.test("CN=intruder,O=envoy-thanos"));
        assert.equal(matchCnPattern("q.example.com"), "CN=q\\.example\\.com(,|$)");
        assert.ok(!new RegExp(matchCnPattern("q.example.com")).test("CN=qxexample.com"));
    });

    it("builds the Gateway API front door: Gateway with frontend client validation, GRPCRoute, Envoy Gateway policies", async () => {
        const result = await runProgram(clustersConfig(1, { frontDoor: "gateway-api", gatewayApi: { gatewayClassName: "eg-internal" } }));
        assert.equal(ofType(result, T.ingress).length, 0);
        const caMap = named(result, T.configMap, "cluster-c1-gateway-api-client-ca").inputs;
        assert.deepEqual(plain(caMap.data), { "ca.crt": "-----BEGIN CERTIFICATE-----\nMOCK CERTIFICATE pki-ca\n-----END CERTIFICATE-----\n" });
        assert.equal(caMap.metadata.name, "envoy-thanos-c1-client-ca");
        assert.doesNotMatch(JSON.stringify(caMap), /PRIVATE KEY/);
        const gateway = named(result, T.gateway, "cluster-c1-gateway-api-gateway").inputs;
        assert.deepEqual([gateway.metadata.name, gateway.metadata.namespace], ["envoy-thanos-c1", "monitoring"]);
        assert.deepEqual(JSON.parse(gateway.metadata.annotations["pulumi.com/waitFor"]), ["condition=Accepted", "condition=Programmed"]);
        assert.deepEqual(gateway.spec, {
            gatewayClassName: "eg-internal",
            listeners: [
                {
                    name: "thanos-grpc",
                    protocol: "HTTPS",
                    port: 443,
                    hostname: "c1.observed.example.com",
                    tls: { mode: "Terminate", certificateRefs: [{ group: "", kind: "Secret", name: "envoy-thanos-c1-server-tls" }] },
                    allowedRoutes: { namespaces: { from: "Same" }, kinds: [{ group: "gateway.networking.k8s.io", kind: "GRPCRoute" }] },
                },
            ],
            tls: {
                frontend: {
                    default: {
                        validation: { caCertificateRefs: [{ group: "", kind: "ConfigMap", name: "envoy-thanos-c1-client-ca" }], mode: "AllowValidOnly" },
                    },
                },
            },
        });
        const route = named(result, T.grpcRoute, "cluster-c1-gateway-api-route").inputs;
        assert.deepEqual(route.spec, {
            parentRefs: [{ group: "gateway.networking.k8s.io", kind: "Gateway", name: "envoy-thanos-c1", sectionName: "thanos-grpc" }],
            hostnames: ["c1.observed.example.com"],
            rules: [{ backendRefs: [{ group: "", kind: "Service", name: "prom-kube-prometheus-prometheus-thanos", port: 10901 }] }],
        });
        assert.match(route.metadata.annotations["pulumi.com/waitFor"], /parents\[0\].*Accepted.*ResolvedRefs/);
        const backend = named(result, T.backendTrafficPolicy, "cluster-c1-gateway-api-backend-traffic").inputs.spec;
        assert.deepEqual(backend.timeout, { http: { requestTimeout: "0s", streamIdleTimeout: "3600s" } }, "no 15 s route timeout on Series streams");
        assert.deepEqual(backend.targetRefs, [{ group: "gateway.networking.k8s.io", kind: "GRPCRoute", name: "envoy-thanos-c1" }]);
        const client = named(result, T.clientTrafficPolicy, "cluster-c1-gateway-api-client-traffic").inputs.spec;
        assert.deepEqual(client.targetRefs, [{ group: "gateway.networking.k8s.io", kind: "Gateway", name: "envoy-thanos-c1", sectionName: "thanos-grpc" }]);
        assert.deepEqual(client.tls.clientValidation, {
            caCertificateRefs: [{ group: "", kind: "ConfigMap", name: "envoy-thanos-c1-client-ca" }],
            subjectAltNames: { dnsNames: [{ type: "Exact", value: "envoy-thanos-client" }] },
        });
        assert.deepEqual(client.timeout, { http: { streamIdleTimeout: "3600s" } });
        assert.equal(client.proxyProtocol, undefined, "no PROXY protocol unless asked: a direct client sends no header");
        // Envoy's generated client certificate carries the identity the policy pins.
        assert.deepEqual(named(result, "tls:index/certRequest:CertRequest", "pki-client").inputs.dnsNames, ["envoy-thanos-client"]);
    });

    it("attaches to a platform team's Gateway: no Gateway or ClientTrafficPolicy, the route on its listener, a ReferenceGrant across namespaces", async () => {
        const result = await runProgram(
            clustersConfig(2, {
                frontDoor: "gateway-api",
                gatewayApi: { existingGateway: { namespace: "gateways", name: "shared", sectionName: "thanos-mtls" } },
            }),
        );
        assert.equal(result.error, undefined, result.error?.message);
        assert.equal(ofType(result, T.gateway).length + ofType(result, T.clientTrafficPolicy).length, 0, "the platform team owns the Gateway and its policies");
        const route = named(result, T.grpcRoute, "cluster-c2-gateway-api-route").inputs;
        assert.deepEqual(route.spec.parentRefs, [
            { group: "gateway.networking.k8s.io", kind: "Gateway", namespace: "gateways", name: "shared", sectionName: "thanos-mtls" },
        ]);
        assert.deepEqual(route.spec.hostnames, ["c2.observed.example.com"]);
        assert.match(route.metadata.annotations["pulumi.com/waitFor"], /parents\[0\].*Accepted.*ResolvedRefs/, "ready once the listener accepts it");
        const grant = named(result, T.referenceGrant, "cluster-c2-gateway-api-reference-grant").inputs;
        assert.deepEqual([grant.metadata.name, grant.metadata.namespace], ["envoy-thanos-c2", "monitoring"]);
        assert.deepEqual(grant.spec, {
            from: [{ group: "gateway.networking.k8s.io", kind: "Gateway", namespace: "gateways" }],
            to: [
                { group: "", kind: "Secret", name: "envoy-thanos-c2-server-tls" },
                { group: "", kind: "ConfigMap", name: "envoy-thanos-c2-client-ca" },
            ],
        });
        // What the program still owns: the server certificate, the CA its frontend validation names, the route's policy.
        for (const c of ["c1", "c2"]) {
            named(result, T.secret, `cluster-${c}-server-tls`);
            named(result, T.configMap, `cluster-${c}-gateway-api-client-ca`);
            named(result, T.backendTrafficPolicy, `cluster-${c}-gateway-api-backend-traffic`);
        }
    });

    it("needs no ReferenceGrant for a Gateway in the sidecar's namespace, and takes a cluster's own existing Gateway over the stack's", async () => {
        const config = clustersConfig(2, { frontDoor: "gateway-api", gatewayApi: { existingGateway: { name: "shared", sectionName: "thanos" } } });
        (config.clusters as Array<Record<string, unknown>>)[1].gatewayApi = { existingGateway: { namespace: "edge", name: "edge", sectionName: "cl2" } };
        const result = await runProgram(config);
        assert.equal(result.error, undefined, result.error?.message);
        assert.deepEqual(named(result, T.grpcRoute, "cluster-c1-gateway-api-route").inputs.spec.parentRefs, [
            { group: "gateway.networking.k8s.io", kind: "Gateway", namespace: "monitoring", name: "shared", sectionName: "thanos" },
        ]);
        assert.deepEqual(named(result, T.grpcRoute, "cluster-c2-gateway-api-route").inputs.spec.parentRefs[0].namespace, "edge");
        assert.deepEqual(
            ofType(result, T.referenceGrant).map((r) => r.name),
            ["cluster-c2-gateway-api-reference-grant"],
        );
    });

    it("has the listener of a cluster behind a PROXY protocol hop read the header, and refuse connections without one", async () => {
        const config = clustersConfig(2, { frontDoor: "gateway-api" });
        (config.clusters as Array<Record<string, unknown>>)[0].gatewayApi = { proxyProtocol: true };
        const result = await runProgram(config);
        assert.equal(result.error, undefined, result.error?.message);
        const spec = (c: string) => named(result, T.clientTrafficPolicy, `cluster-${c}-gateway-api-client-traffic`).inputs.spec;
        assert.deepEqual(spec("c1").proxyProtocol, {}, "required, not optional");
        assert.equal(spec("c2").proxyProtocol, undefined);
    });

    it("creates only standard Gateway API objects for another implementation", async () => {
        const result = await runProgram(clustersConfig(2, { frontDoor: "gateway-api", gatewayApi: { implementation: "other" } }));
        assert.equal(ofType(result, T.gateway).length, 2);
        assert.equal(ofType(result, T.grpcRoute).length, 2);
        assert.equal(ofType(result, T.backendTrafficPolicy).length + ofType(result, T.clientTrafficPolicy).length, 0);
    });

    it("writes Secrets of the right type and keys, with the keys as Pulumi secrets", async () => {
        const result = await runProgram(clustersConfig(1));
        const serverTls = named(result, T.secret, "cluster-c1-server-tls").inputs;
        assert.equal(serverTls.type, "kubernetes.io/tls");
        assert.deepEqual(Object.keys(plain(serverTls.stringData)).sort(), ["tls.crt", "tls.key"]);
        assert.ok(isSecret(serverTls.stringData), "server key must be a secret");
        assert.match(plain(serverTls.stringData)["tls.crt"], /MOCK CERTIFICATE pki-server-c1/);
        assert.match(plain(serverTls.stringData)["tls.key"], /MOCK PRIVATE KEY pki-server-c1/);
        const clientCa = named(result, T.secret, "cluster-c1-client-ca").inputs;
        assert.deepEqual(Object.keys(plain(clientCa.stringData)), ["ca.crt"]);
        assert.match(plain(clientCa.stringData)["ca.crt"], /MOCK CERTIFICATE pki-ca/);
        const client = named(result, T.secret, "observer-client-tls").inputs;
        assert.equal(client.type, "kubernetes.io/tls");
        assert.deepEqual(Object.keys(plain(client.stringData)).sort(), ["ca.crt", "tls.crt", "tls.key"]);
        assert.ok(isSecret(client.stringData));
        assert.match(plain(client.stringData)["tls.key"], /MOCK PRIVATE KEY pki-client/);
    });

    it("issues P-256 ECDSA keys and certificates with the right SANs and usages", async () => {
        const result = await runProgram(clustersConfig(2));
        for (const key of ofType(result, "tls:index/privateKey:PrivateKey")) {
            assert.deepEqual([key.inputs.algorithm, key.inputs.ecdsaCurve], ["ECDSA", "P256"], key.name);
        }
        const ca = named(result, "tls:index/selfSignedCert:SelfSignedCert", "pki-ca").inputs;
        assert.equal(ca.isCaCertificate, true);
        assert.equal(ca.subject.commonName, "envoy-thanos CA 0a1b2c3d", "the CA name carries the random id");
        assert.deepEqual(named(result, "tls:index/certRequest:CertRequest", "pki-server-c2").inputs.dnsNames, ["c2.observed.example.com"]);
        assert.deepEqual(named(result, "tls:index/locallySignedCert:LocallySignedCert", "pki-server-c2").inputs.allowedUses, [
            "server_auth",
            "digital_signature",
            "key_encipherment",
        ]);
        const client = named(result, "tls:index/locallySignedCert:LocallySignedCert", "pki-client").inputs;
        assert.deepEqual(client.allowedUses, ["client_auth", "digital_signature", "key_encipherment"]);
        assert.equal(client.validityPeriodHours, 8760);
        assert.equal(client.earlyRenewalHours, 720);
    });

    it("never puts a private key into a ConfigMap, a plain resource input or a plain stack output", async () => {
        const result = await runProgram(clustersConfig(3));
        const configMap = named(result, T.configMap, "observer-bootstrap").inputs;
        assert.doesNotMatch(JSON.stringify(configMap), /PRIVATE KEY/);
        // The one output with the key (for `npm run status`) is a secret: the engine stores it encrypted.
        const { clientPrivateKey, ...plainOutputs } = result.outputs!;
        assert.doesNotMatch(JSON.stringify(plainOutputs), new RegExp(MOCK_PRIVATE_KEY_MARK));
        assert.match(String(clientPrivateKey), new RegExp(MOCK_PRIVATE_KEY_MARK));
        assert.deepEqual(result.secretOutputs, ["clientPrivateKey"]);
        // Anywhere a key appears in a Kubernetes object, it is inside a secret.
        for (const r of result.resources.filter((r) => r.type.startsWith("kubernetes:"))) {
            const visible = JSON.stringify(r.inputs, (_k, v) => (isSecret(v) ? "<secret>" : v));
            assert.doesNotMatch(visible, new RegExp(MOCK_PRIVATE_KEY_MARK), `${r.type} ${r.name}`);
        }
    });

    it("configures the Envoy Deployment for safe rollouts and a locked-down pod", async () => {
        const result = await runProgram(clustersConfig(2));
        const deployment = named(result, T.deployment, "observer-envoy").inputs;
        const spec = deployment.spec;
        assert.equal(spec.replicas, 2);
        assert.deepEqual(spec.strategy, { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } });
        const pod = spec.template.spec;
        assert.match(spec.template.metadata.annotations[CHECKSUM_ANNOTATION], /^[0-9a-f]{64}$/);
        assert.equal(pod.automountServiceAccountToken, false);
        assert.equal(pod.securityContext.runAsNonRoot, true);
        assert.equal(pod.securityContext.seccompProfile.type, "RuntimeDefault");
        assert.equal(pod.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution.length, 1);
        const container = pod.containers[0];
        assert.equal(container.image, "envoyproxy/envoy:v1.40.0");
        assert.deepEqual(container.securityContext, {
            allowPrivilegeEscalation: false,
            readOnlyRootFilesystem: true,
            runAsNonRoot: true,
            capabilities: { drop: ["ALL"] },
        });
        assert.equal(container.readinessProbe.httpGet.path, "/ready");
        assert.equal(container.livenessProbe.httpGet.path, "/live", "liveness must not depend on readiness (a draining pod is alive)");
        assert.equal(container.readinessProbe.httpGet.port, "metrics");
        assert.equal(container.livenessProbe.httpGet.port, "metrics");
        assert.ok(container.resources.limits.memory && container.resources.requests.cpu);
        assert.deepEqual(container.args, [
            "--config-path",
            "/etc/envoy/envoy.yaml",
            "--log-level",
            "info",
            "--concurrency",
            "1",
            "--drain-time-s",
            "120",
            "--drain-strategy",
            "immediate",
            "--disable-hot-restart",
        ]);
        // A port per listener would put the cluster list into the pod template; the Services target port numbers.
        assert.deepEqual(
            container.ports.map((p: any) => [p.name, p.containerPort]),
            [["metrics", 9902]],
        );
        const preStop = container.lifecycle.preStop.exec.command;
        assert.deepEqual(preStop.slice(0, 2), ["/bin/bash", "-c"]);
        assert.match(preStop[2], /\/healthcheck\/fail/);
        assert.match(preStop[2], /drain_listeners\?graceful/);
        assert.match(preStop[2], /127\.0\.0\.1\/9901/);
        assert.equal(pod.terminationGracePeriodSeconds, 5 + 120 + 10);
        assert.deepEqual(
            pod.volumes.map((v: any) => v.configMap?.name ?? v.secret?.secretName),
            ["envoy-thanos-bootstrap", "envoy-thanos-client-tls"],
        );
        const pdb = named(result, T.pdb, "observer-envoy").inputs;
        assert.deepEqual(pdb.spec.selector.matchLabels, spec.selector.matchLabels);
    });

    it("sizes Envoy from the container limits: workers from the CPU limit, the heap monitor from the memory limit", async () => {
        const result = await runProgram(clustersConfig(1, { envoy: { resources: { limits: { cpu: "2500m", memory: "1Gi" } } } }));
        const args: string[] = named(result, T.deployment, "observer-envoy").inputs.spec.template.spec.containers[0].args;
        assert.equal(args[args.indexOf("--concurrency") + 1], "3");
        const bootstrap = YAML.parse(named(result, T.configMap, "observer-bootstrap").inputs.data["envoy.yaml"]);
        assert.equal(bootstrap.overload_manager.resource_monitors[1].typed_config.max_heap_size_bytes, Math.floor(1024 ** 3 * 0.8));
    });

    it("keeps the pod template unchanged when clusters are added or removed, certificates renewed or cluster settings changed", async () => {
        const { OpensslCa } = await import("../../tools/pki/openssl-ca");
        const ca = OpensslCa.create(undefined, "template");
        const renewedCa = OpensslCa.create(undefined, "template-renewed");
        const provided = (names: string[], authority = ca, client = authority.client()) => ({
            mode: "provided",
            caBundle: authority.ca.certificate,
            client: { certificate: client.certificate, privateKey: client.privateKey },
            servers: Object.fromEntries(
                names.map((n) => {
                    const server = authority.server(`${n}.observed.example.com`);
                    return [n, { certificate: server.certificate, privateKey: server.privateKey }];
                }),
            ),
        });
        const template = async (config: Record<string, unknown>) => {
            const result = await runProgram(config);
            assert.equal(result.error, undefined, result.error?.message);
            return plain(named(result, T.deployment, "observer-envoy").inputs.spec.template);
        };
        const base = await template(clustersConfig(2, { tls: provided(["c1", "c2"]) }));
        assert.match(base.metadata.annotations[CHECKSUM_ANNOTATION], /^[0-9a-f]{64}$/);
        const reloadedInPlace: Array<[string, Record<string, unknown>]> = [
            ["a cluster appended", clustersConfig(3, { tls: provided(["c1", "c2", "c3"]) })],
            ["a cluster removed", clustersConfig(1, { tls: provided(["c1"]) })],
            ["the client certificate renewed", clustersConfig(2, { tls: provided(["c1", "c2"], ca, ca.client("renewed")) })],
            ["a new CA and certificates", clustersConfig(2, { tls: provided(["c1", "c2"], renewedCa) })],
            ["a cluster setting changed", clustersConfig(2, { tls: provided(["c1", "c2"]), envoy: { connectTimeout: "3s", streamIdleTimeout: "10m" } })],
        ];
        for (const [what, config] of reloadedInPlace) {
            assert.deepEqual(await template(config), base, `${what} must not roll the pods`);
        }
        const rolls: Array<[string, Record<string, unknown>]> = [
            ["a new image", { image: "registry.example.com/envoyproxy/envoy:v1.40.0" }],
            ["new resources", { resources: { limits: { memory: "1Gi" } } }],
            ["a new admin port", { adminPort: 19901 }],
            ["a new longest stream", { longestStream: "5m" }],
        ];
        for (const [what, envoy] of rolls) {
            assert.notDeepEqual(await template(clustersConfig(2, { tls: provided(["c1", "c2"]), envoy })), base, `${what} must roll the pods`);
        }
    });

    it("names one Service per cluster `envoy-<name>` with a port of the same name, selecting the Envoy pods", async () => {
        const result = await runProgram(clustersConfig(2));
        const deployment = named(result, T.deployment, "observer-envoy").inputs;
        for (const [i, c] of ["c1", "c2"].entries()) {
            const service = named(result, T.service, `observer-service-${c}`).inputs;
            assert.equal(service.metadata.name, `envoy-${c}`);
            assert.equal(service.metadata.namespace, "envoy");
            assert.deepEqual(service.spec.ports, [
                { name: `envoy-${c}`, port: 10002 + i, targetPort: 10002 + i, protocol: "TCP", appProtocol: "kubernetes.io/h2c" },
            ]);
            assert.deepEqual(service.spec.selector, deployment.spec.selector.matchLabels);
            for (const [key, value] of Object.entries(service.spec.selector)) {
                assert.equal(deployment.spec.template.metadata.labels[key], value, "the pods carry the Service's selector labels");
            }
        }
    });

    it("restricts Envoy with a NetworkPolicy by default: querier in, scraper to metrics, DNS and the upstream ports out", async () => {
        const defaults = named(
            await runProgram(
                clustersConfig(2, {
                    clusters: [
                        { name: "c1", host: "c1.observed.example.com" },
                        { name: "c2", host: "c2.observed.example.com", address: "lb.example.net:8443" },
                    ],
                }),
            ),
            T.networkPolicy,
            "observer-envoy",
        ).inputs.spec;
        assert.deepEqual(defaults.podSelector, { matchLabels: { "app.kubernetes.io/name": "envoy-thanos", "app.kubernetes.io/component": "gateway" } });
        assert.deepEqual(defaults.policyTypes, ["Ingress", "Egress"]);
        assert.deepEqual(defaults.ingress, [
            {
                from: [{ podSelector: { matchLabels: { "app.kubernetes.io/name": "thanos-query" } }, namespaceSelector: { matchLabels: {} } }],
                ports: [
                    { port: 10002, protocol: "TCP" },
                    { port: 10003, protocol: "TCP" },
                ],
            },
            {
                from: [{ podSelector: { matchLabels: { "app.kubernetes.io/name": "prometheus" } }, namespaceSelector: { matchLabels: {} } }],
                ports: [{ port: 9902, protocol: "TCP" }],
            },
        ]);
        assert.deepEqual(defaults.egress, [
            {
                to: [
                    {
                        podSelector: { matchLabels: { "k8s-app": "kube-dns" } },
                        namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "kube-system" } },
                    },
                ],
                ports: [
                    { port: 53, protocol: "UDP" },
                    { port: 53, protocol: "TCP" },
                ],
            },
            {
                ports: [
                    { port: 443, protocol: "TCP" },
                    { port: 8443, protocol: "TCP" },
                ],
            },
        ]);
        const custom = named(
            await runProgram(clustersConfig(1, { networkPolicy: { querierPodSelector: { app: "q" }, querierNamespaceSelector: { team: "obs" } } })),
            T.networkPolicy,
            "observer-envoy",
        ).inputs.spec;
        assert.deepEqual(custom.ingress[0].from, [{ podSelector: { matchLabels: { app: "q" } }, namespaceSelector: { matchLabels: { team: "obs" } } }]);
    });

    it("leaves the NetworkPolicy out only when told, and warns about it outside render mode", async () => {
        const off = await runProgram(clustersConfig(1, { networkPolicy: { enabled: false } }));
        assert.equal(ofType(off, T.networkPolicy).length, 0);
        assert.ok(!off.warnings.some((w) => w.includes("networkPolicy.enabled is false")), "render mode talks to no cluster: no warning");
        const live = await runProgram({
            observer: { context: "o" },
            networkPolicy: { enabled: false },
            clusters: [{ name: "c1", host: "c1.example.com", context: "c1" }],
        });
        assert.ok(
            live.warnings.some((w) => w.includes("networkPolicy.enabled is false")),
            live.warnings.join("\n"),
        );
    });

    it("can leave the namespace to the operator", async () => {
        const result = await runProgram(clustersConfig(1, { observer: { namespace: "edge", createNamespace: false } }));
        assert.equal(ofType(result, T.namespace).length, 0);
        assert.equal(named(result, T.service, "observer-service-c1").inputs.metadata.namespace, "edge");
        assert.deepEqual(result.outputs?.querierFlags, ["--endpoint=dnssrv+_envoy-c1._tcp.envoy-c1.edge.svc.cluster.local"]);
    });

    it("imports the existing per-cluster Services with observer.adoptServices, and creates them otherwise", async () => {
        const live = (observer: Record<string, unknown>) =>
            runProgram({
                observer: { context: "o", ...observer },
                clusters: ["c1", "c2"].map((name) => ({ name, host: `${name}.example.com`, context: name })),
            });
        const adopting = await live({ adoptServices: true });
        assert.equal(adopting.error, undefined);
        const importIds = (result: RunResult) => Object.fromEntries(ofType(result, T.service).map((s) => [s.name, s.importId]));
        assert.deepEqual(importIds(adopting), {
            "observer-service-c1": "envoy/envoy-c1",
            "observer-service-c2": "envoy/envoy-c2",
            "observer-metrics": undefined,
        });
        const after = await live({});
        assert.deepEqual(Object.values(importIds(after)), [undefined, undefined, undefined]);
    });

    it("names every component child after its component, with an alias to its old name so existing stacks keep their state", async () => {
        const { result, children } = await runProgramRecordingParents(clustersConfig(2, { networkPolicy: { enabled: true } }));
        assert.equal(result.error, undefined);
        const owned = children.filter((c) => c.parent !== undefined);
        assert.ok(owned.length > 20, `only ${owned.length} children recorded`);
        for (const child of owned) {
            assert.ok(child.name.startsWith(`${child.parent}-`), `${child.parent}/${child.name} is not prefixed with its component's name`);
        }
        // The names children had before they were prefixed: each renamed child must alias its old name.
        const oldNames = (parent: string) =>
            owned
                .filter((c) => c.parent === parent)
                .map((c) => (c.aliasNames.length === 0 ? "(no alias)" : c.aliasNames.join(",")))
                .sort();
        assert.deepEqual(oldNames("observer"), ["bootstrap", "client-tls", "envoy", "envoy", "envoy", "metrics", "namespace", "service-c1", "service-c2"]);
        assert.deepEqual(oldNames("pki"), [
            "ca",
            "ca",
            "ca-id",
            "client",
            "client",
            "client",
            "server-c1",
            "server-c1",
            "server-c1",
            "server-c2",
            "server-c2",
            "server-c2",
        ]);
        for (const child of owned.filter((c) => c.parent === "observer" || c.parent === "pki")) {
            assert.deepEqual(child.aliasNames, [child.name.slice(`${child.parent}-`.length)], `${child.parent}/${child.name}`);
        }
        // Native mode's component is newer than the rename: prefixed from the start, nothing to alias.
        const native = await runProgramRecordingParents(clustersConfig(1, { observer: { mode: "native", namespace: "monitoring" } }));
        assert.equal(native.result.error, undefined);
        const nativeChildren = native.children.filter((c) => c.parent === "querier-access");
        assert.ok(nativeChildren.length >= 2, JSON.stringify(native.children));
        for (const child of nativeChildren) {
            assert.ok(child.name.startsWith("querier-access-"), child.name);
        }
    });

    it("appending a cluster leaves every existing cluster's resources unchanged", async () => {
        const before = await runProgram(clustersConfig(2));
        const after = await runProgram(clustersConfig(3));
        const index = (r: RunResult) => new Map(r.resources.map((x) => [`${x.type}::${x.name}`, x]));
        const a = index(before);
        const b = index(after);
        // The shared gateway config changes by design: a new listener and cluster in the watched files, a new port in the
        // NetworkPolicy. The Deployment does not.
        const changesByDesign = new Set([`${T.configMap}::observer-bootstrap`, `${T.networkPolicy}::observer-envoy`]);
        for (const [key, resource] of a) {
            assert.ok(b.has(key), `${key} disappeared`);
            if (!changesByDesign.has(key)) {
                assert.deepEqual(plain(b.get(key)!.inputs), plain(resource.inputs), `${key} changed`);
            }
        }
        const added = [...b.keys()].filter((k) => !a.has(k));
        assert.ok(added.length > 0 && added.every((k) => k.includes("c3")), added.join(", "));
    });

    it("rotates the generated CA with overlap: trust both, issue from the new one, drop the old one; the pod template never changes", async () => {
        const phase = async (ca: { issuing: string; trusted: string[] } | undefined) => {
            const result = await runProgram(clustersConfig(1, ca === undefined ? {} : { tls: { ca } }));
            assert.equal(result.error, undefined, result.error?.message);
            const caCerts = ofType(result, "tls:index/selfSignedCert:SelfSignedCert").map((r) => r.name);
            const trustedByEnvoy = plain(named(result, T.secret, "observer-client-tls").inputs.stringData)["ca.crt"];
            const trustedByNginx = plain(named(result, T.secret, "cluster-c1-client-ca").inputs.stringData)["ca.crt"];
            assert.equal(trustedByEnvoy, trustedByNginx, "both sides trust the same CAs");
            const issuers = ["pki-client", "pki-server-c1"].map((n) =>
                plain(named(result, "tls:index/locallySignedCert:LocallySignedCert", n).inputs.caCertPem),
            );
            const template = plain(named(result, T.deployment, "observer-envoy").inputs.spec.template);
            return { caCerts, trusted: (trustedByEnvoy.match(/MOCK CERTIFICATE \S+/g) ?? []).map((m: string) => m.split(" ")[2]), issuers, template };
        };
        const before = await phase(undefined);
        assert.deepEqual([before.caCerts, before.trusted], [["pki-ca"], ["pki-ca"]]);
        const steps = [
            { ca: { issuing: "a", trusted: ["a", "b"] }, caCerts: ["pki-ca", "pki-ca-b"], trusted: ["pki-ca", "pki-ca-b"], issuer: "pki-ca" },
            { ca: { issuing: "b", trusted: ["a", "b"] }, caCerts: ["pki-ca", "pki-ca-b"], trusted: ["pki-ca", "pki-ca-b"], issuer: "pki-ca-b" },
            { ca: { issuing: "b", trusted: ["b"] }, caCerts: ["pki-ca-b"], trusted: ["pki-ca-b"], issuer: "pki-ca-b" },
        ];
        for (const step of steps) {
            const now = await phase(step.ca);
            const what = JSON.stringify(step.ca);
            assert.deepEqual(now.caCerts, step.caCerts, what);
            assert.deepEqual(now.trusted, step.trusted, what);
            for (const issuer of now.issuers) assert.match(issuer, new RegExp(`MOCK CERTIFICATE ${step.issuer}\n`), what);
            assert.deepEqual(now.template, before.template, `${what} must not roll the pods`);
        }
    });

    it("passes provided certificates through unchanged, keys as secrets", async () => {
        const { OpensslCa } = await import("../../tools/pki/openssl-ca");
        const ca = OpensslCa.create(undefined, "unit");
        const server = ca.server("c1.observed.example.com");
        const client = ca.client();
        const result = await runProgram(
            clustersConfig(1, {
                tls: {
                    mode: "provided",
                    caBundle: ca.ca.certificate,
                    client: { certificate: client.certificate, privateKey: client.privateKey },
                    servers: { c1: { certificate: server.certificate, privateKey: server.privateKey } },
                },
            }),
        );
        assert.equal(result.error, undefined, result.error?.message);
        assert.equal(result.resources.filter((r) => r.type.startsWith("tls:") || r.type.startsWith("random:")).length, 0);
        const serverTls = named(result, T.secret, "cluster-c1-server-tls").inputs;
        assert.ok(isSecret(serverTls.stringData));
        assert.equal(plain(serverTls.stringData)["tls.key"], server.privateKey);
        assert.equal(plain(named(result, T.secret, "observer-client-tls").inputs.stringData)["ca.crt"], ca.ca.certificate);
        assert.equal(named(result, T.ingress, "cluster-c1-ingress").inputs.metadata.annotations["nginx.ingress.kubernetes.io/auth-tls-verify-depth"], "2");
        assert.equal(result.outputs?.caCertificate, ca.ca.certificate);
    });

    it("verifies Envoy's client certificate at both front doors against tls.clientCaBundle, and the servers against tls.caBundle", async () => {
        const { OpensslCa } = await import("../../tools/pki/openssl-ca");
        const serverCa = OpensslCa.create(undefined, "unit-server-ca");
        const clientCa = OpensslCa.create(undefined, "unit-client-ca");
        const client = clientCa.client();
        const servers = Object.fromEntries(
            ["c1", "c2"].map((n) => {
                const server = serverCa.server(`${n}.observed.example.com`);
                return [n, { certificate: server.certificate, privateKey: server.privateKey }];
            }),
        );
        const config = clustersConfig(2, {
            tls: {
                mode: "provided",
                caBundle: serverCa.ca.certificate,
                clientCaBundle: clientCa.ca.certificate,
                client: { certificate: client.certificate, privateKey: client.privateKey },
                servers,
            },
        });
        (config.clusters as Array<Record<string, unknown>>)[1].frontDoor = "gateway-api";
        (config.clusters as Array<Record<string, unknown>>)[1].sidecar = { port: 10901 };
        const result = await runProgram(config);
        assert.equal(result.error, undefined, result.error?.message);
        assert.equal(plain(named(result, T.secret, "cluster-c1-client-ca").inputs.stringData)["ca.crt"], clientCa.ca.certificate, "nginx's CA Secret");
        assert.equal(
            plain(named(result, T.configMap, "cluster-c2-gateway-api-client-ca").inputs.data)["ca.crt"],
            clientCa.ca.certificate,
            "the Gateway's CA ConfigMap",
        );
        assert.equal(plain(named(result, T.secret, "observer-client-tls").inputs.stringData)["ca.crt"], serverCa.ca.certificate, "Envoy verifies the servers");
        assert.equal(result.outputs?.caCertificate, serverCa.ca.certificate);
    });

    it("deploys certificates read from files, keys as secrets and nowhere else", async () => {
        const { OpensslCa } = await import("../../tools/pki/openssl-ca");
        const ca = OpensslCa.create(undefined, "unit-files");
        const server = ca.server("c1.observed.example.com");
        const client = ca.client();
        const result = await runProgram(
            clustersConfig(1, {
                tls: {
                    mode: "files",
                    files: {
                        caBundle: ca.ca.certificatePath,
                        client: { certificate: client.certificatePath, privateKey: client.privateKeyPath },
                        servers: { c1: { certificate: server.certificatePath, privateKey: server.privateKeyPath } },
                    },
                },
            }),
        );
        assertInventory(result, ["c1"], "supplied");
        const serverTls = named(result, T.secret, "cluster-c1-server-tls").inputs;
        assert.equal(plain(serverTls.stringData)["tls.crt"], server.certificate);
        assert.equal(plain(serverTls.stringData)["tls.key"], server.privateKey);
        assert.equal(plain(named(result, T.secret, "observer-client-tls").inputs.stringData)["tls.key"], client.privateKey);
        const keyLine = (pem: string) => pem.split("\n")[1];
        for (const r of result.resources) {
            const visible = JSON.stringify(r.inputs, (_k, v) => (isSecret(v) ? "<secret>" : v));
            for (const key of [server.privateKey, client.privateKey]) {
                assert.ok(!visible.includes(keyLine(key)), `a private key read from a file is visible in ${r.type} ${r.name}`);
            }
        }
        const { clientPrivateKey, ...plainOutputs } = result.outputs!;
        assert.ok(!JSON.stringify(plainOutputs).includes(keyLine(client.privateKey)));
        assert.equal(clientPrivateKey, client.privateKey, "status reads the client key from this secret output");
        assert.deepEqual(result.secretOutputs, ["clientPrivateKey"]);
    });
});

describe("private keys are secrets from the moment the program has them", () => {
    /** Runs the Pki component alone under mocks and reports, per key output, whether the program marked it secret. */
    async function keySecrecy(tls: Record<string, unknown>): Promise<Record<string, boolean>> {
        let secrecy: Promise<Record<string, boolean>> = Promise.resolve({});
        const result = await runWithMocks(clustersConfig(1, { tls }), () => {
            const { loadModel } = require("../../components/program") as typeof import("../../components/program");
            const { Pki } = require("../../components/pki/pki") as typeof import("../../components/pki/pki");
            const model = loadModel();
            const pki = new Pki("pki", { tls: model.tls, clusters: model.clusters });
            const keys = { client: pki.client.privateKey, ...Object.fromEntries(Object.entries(pki.servers).map(([n, s]) => [n, s.privateKey])) };
            secrecy = Promise.all(Object.entries(keys).map(async ([n, k]) => [n, await pulumi.isSecret(k)] as const)).then(Object.fromEntries);
            return {};
        });
        assert.equal(result.error, undefined, result.error?.message);
        return secrecy;
    }

    it("in generate mode and for material read from files", async () => {
        const { OpensslCa } = await import("../../tools/pki/openssl-ca");
        const ca = OpensslCa.create(undefined, "unit-secrecy");
        const client = ca.client();
        const server = ca.server("c1.observed.example.com");
        assert.deepEqual(await keySecrecy({}), { client: true, c1: true });
        const files = {
            mode: "files",
            files: {
                caBundle: ca.ca.certificatePath,
                client: { certificate: client.certificatePath, privateKey: client.privateKeyPath },
                servers: { c1: { certificate: server.certificatePath, privateKey: server.privateKeyPath } },
            },
        };
        assert.deepEqual(await keySecrecy(files), { client: true, c1: true });
    });
});

describe("observer.mode: native", () => {
    it("deploys no Envoy: a TLS Secret and the endpoint config in the querier's namespace, the same observed clusters", async () => {
        const config = clustersConfig(2, { observer: { mode: "native", namespace: "monitoring" } });
        const result = await runProgram(config);
        assert.equal(result.error, undefined, result.error?.message);
        const observer = result.resources.filter((r) => r.provider === "observer");
        assert.deepEqual(observer.map((r) => `${r.type} ${r.inputs.metadata.namespace}/${r.inputs.metadata.name}`).sort(), [
            `${T.configMap} monitoring/envoy-thanos-querier-endpoints`,
            `${T.secret} monitoring/envoy-thanos-querier-tls`,
        ]);
        assert.equal(result.resources.filter((r) => r.type === T.deployment).length, 0);
        const secret = named(result, T.secret, "querier-access-tls").inputs;
        assert.deepEqual(Object.keys(plain(secret.stringData)).sort(), ["ca.crt", "tls.crt", "tls.key"]);
        assert.match(plain(secret.stringData)["tls.key"], new RegExp(MOCK_PRIVATE_KEY_MARK));
        const endpoints = YAML.parse(named(result, T.configMap, "querier-access-endpoints").inputs.data["endpoints.yaml"]);
        assert.deepEqual(endpoints.endpoints[1], {
            address: "c2.observed.example.com:443",
            client_config: {
                server_name: "c2.observed.example.com",
                tls_config: { cert_file: "/etc/envoy-thanos/tls/tls.crt", key_file: "/etc/envoy-thanos/tls/tls.key", ca_file: "/etc/envoy-thanos/tls/ca.crt" },
            },
        });
        assert.deepEqual(result.outputs?.querierFlags, ["--endpoint.sd-config-file=/etc/envoy-thanos/endpoints/endpoints.yaml"]);
        assert.deepEqual(YAML.parse(result.outputs?.endpointSdFile as string), endpoints);
        // The observed side is the same as in envoy mode.
        const envoyMode = await runProgram(clustersConfig(2));
        const observed = (r: RunResult) => r.resources.filter((x) => x.provider.startsWith("observed-")).map((x) => [x.type, x.name, plain(x.inputs)]);
        assert.deepEqual(observed(result), observed(envoyMode));
    });
});

describe("index.ts with the dev stack", () => {
    it("exports the seed's exact querier flags, an endpoint SD file, the cluster summary and the CA", async () => {
        const result = await runWithMocks(devStackConfig(), () => require("../../index"));
        assert.equal(result.error, undefined, result.error?.message);
        const outputs = result.outputs!;
        assert.deepEqual(outputs.querierFlags, [
            "--endpoint=dnssrv+_envoy-cl1._tcp.envoy-cl1.envoy.svc.cluster.local",
            "--endpoint=dnssrv+_envoy-cl2._tcp.envoy-cl2.envoy.svc.cluster.local",
        ]);
        assert.deepEqual(YAML.parse(outputs.endpointSdFile as string), {
            endpoints: [
                { address: "dnssrv+_envoy-cl1._tcp.envoy-cl1.envoy.svc.cluster.local" },
                { address: "dnssrv+_envoy-cl2._tcp.envoy-cl2.envoy.svc.cluster.local" },
            ],
        });
        assert.deepEqual(outputs.clusters, [
            {
                name: "cl1",
                service: "envoy-cl1.envoy",
                port: 10002,
                host: "cl1m.example.com",
                address: "cl1m.example.com:443",
                endpoint: "dnssrv+_envoy-cl1._tcp.envoy-cl1.envoy.svc.cluster.local",
            },
            {
                name: "cl2",
                service: "envoy-cl2.envoy",
                port: 10003,
                host: "cl2m.example.com",
                address: "cl2m.example.com:443",
                endpoint: "dnssrv+_envoy-cl2._tcp.envoy-cl2.envoy.svc.cluster.local",
            },
        ]);
        // The dev stack issues its own certificates (generate, the default mode): the CA output is its self-signed CA.
        const ca = result.resources.find((r) => r.type === "tls:index/selfSignedCert:SelfSignedCert")!;
        assert.equal(outputs.caCertificate, `-----BEGIN CERTIFICATE-----\n${MOCK_CERT_MARK} ${ca.name}\n-----END CERTIFICATE-----\n`);
        assert.equal(outputs.renderDirectory, "rendered");
        assertInventory(result, ["cl1", "cl2"], "issued", ["cl2"]);
    });
});
