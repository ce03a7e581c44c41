import assert from "node:assert/strict";
import * as fs from "node:fs";
import { it } from "node:test";
import type { Model } from "../../../components/config/model";
import { envoyName } from "../../../components/names";
import { FILES } from "../../../components/observer/bootstrap";
import { client, TWO_CLUSTERS } from "./data-path-checks";
import { QuerierClient } from "./grpc";
import { HaproxyConnection, STORE_API_TIMEOUTS } from "./haproxy";
import { waitFor } from "./processes";
import { servedCertificate } from "./tls";
import { expectsProxyProtocol, Topology } from "./topology";

/**
 * The checks only a path through an L4 hop has (haproxy.test.ts), each registered on a data-path suite's topology
 * after the shared checks: SNI routing, HAProxy's timeouts, a dead front door behind it, the PROXY protocol.
 */

/** Where Envoy's own cluster for `cluster` is in a bootstrap's documents. */
function envoyCluster(documents: Record<string, any>, cluster: string): any {
    return documents[FILES.clusters].resources.find((c: { name: string }) => c.name === envoyName(cluster));
}

/** A client of `cluster`'s listener on an Envoy of `model`. */
function clientOf(model: Model, cluster: string): QuerierClient {
    return new QuerierClient(`127.0.0.1:${model.clusters.find((m) => m.name === cluster)!.port}`);
}

/**
 * One call to each cluster through a fresh Envoy behind the topology's HAProxy, which then stops: HAProxy logs a
 * connection when it ends. Returns those connections.
 */
async function oneCallEach(t: Topology): Promise<HaproxyConnection[]> {
    const logged = t.hop!.haproxy.connections().length;
    const fresh = await t.startExtraEnvoy({});
    try {
        for (const { name } of TWO_CLUSTERS) {
            const c = clientOf(fresh.model, name);
            try {
                assert.deepEqual((await c.storeInfo()).labels, [{ name: "cluster", value: name }]);
            } finally {
                c.close();
            }
        }
    } finally {
        await fresh.envoy.stop();
    }
    return waitFor("HAProxy to log both connections", 5000, async () => {
        const ended = t.hop!.haproxy.connections().slice(logged);
        return ended.length >= TWO_CLUSTERS.length ? ended : undefined;
    });
}

export function routingCheck(topology: () => Topology): void {
    it("routes each cluster's connections by SNI to its own front door, and closes a connection whose SNI it does not route", async () => {
        const t = topology();
        const side = t.side("cl1");
        const beforeRouted = side.frontDoor.checkpoint();
        assert.deepEqual(
            (await oneCallEach(t)).map((c) => [c.sni, c.backend, c.termination]).sort(),
            TWO_CLUSTERS.map(({ name, host }) => [host, name, "--"]),
        );
        // The count below starts once the front door has logged cl1's call: a run took its count while that line was
        // still on its way into the log, and counted it against the unrouted connection.
        await waitFor("cl1's front door to log its call", 5000, async () => (side.frontDoor.requests().length > beforeRouted.requests ? true : undefined));

        // An Envoy that sends SNI unrouted.example.com for cl1 (everything else as the program has it).
        const unrouted = "unrouted.example.com";
        const since = side.frontDoor.checkpoint();
        const before = t.backend("cl1").calls.length;
        const { envoy, model } = await t.startExtraEnvoy({
            mutate: (documents) => (envoyCluster(documents, "cl1").transport_socket.typed_config.sni = unrouted),
        });
        const c = clientOf(model, "cl1");
        try {
            const started = Date.now();
            await assert.rejects(c.storeInfo(10_000), "the call must fail");
            assert.ok(Date.now() - started < 5000, `failed after ${Date.now() - started} ms`);
            const refused = await waitFor("HAProxy to log the unrouted connection", 5000, async () =>
                t.hop!.haproxy.connections().find((conn) => conn.sni === unrouted),
            );
            assert.equal(refused.server, "<NOSRV>");
            assert.equal(side.frontDoor.requests().length, since.requests, "nothing reached the front door");
            assert.equal(t.backend("cl1").calls.length, before, "nothing reached the backend");
        } finally {
            c.close();
            await envoy.stop();
        }
    });
}

/** What HAProxy's timeouts do to an idle stream; the front door behind plays no part. */
export function tunnelTimeoutCheck(topology: () => Topology): void {
    it("cuts an idle stream when its tunnel timeout is below Envoy's HTTP/2 PING interval; PINGs more often, or short client and server timeouts beside a long tunnel, keep it", async () => {
        const t = topology();
        // Idle for 6 s before the first frame: twice the short timeouts. The three Envoys run at once.
        const idle = { frames: 2, initialDelayMs: 6000, intervalMs: 10, frameBytes: 64 };
        const shortTunnel = { ...STORE_API_TIMEOUTS, tunnel: "3s" };
        const [cut, pinged, tunnelOnly] = await Promise.all([
            t.startExtraEnvoy({ l4Hop: { timeouts: shortTunnel } }),
            t.startExtraEnvoy({ l4Hop: { timeouts: shortTunnel }, envoy: { http2Keepalive: { interval: "1s", timeout: "1s" } } }),
            t.startExtraEnvoy({ l4Hop: { timeouts: { ...STORE_API_TIMEOUTS, client: "3s", server: "3s" } } }),
        ]);
        const clients = [cut, pinged, tunnelOnly].map((x) => clientOf(x.model, "cl1"));
        try {
            const [cutStream, pingedStream, tunnelOnlyStream] = await Promise.allSettled(clients.map((c) => c.series(idle, 20_000)));
            assert.equal(cutStream.status, "rejected", "HAProxy's 3 s tunnel timeout must cut the idle stream");
            assert.ok(
                cut.hop!.connections().some((conn) => conn.backend === "cl1" && conn.termination === "cD"),
                cut.hop!.log(),
            );
            for (const [what, result] of [
                ["a PING every second", pingedStream],
                ["timeout tunnel 1h beside timeout client/server 3s", tunnelOnlyStream],
            ] as const) {
                assert.equal(result.status, "fulfilled", `${what}: ${result.status === "rejected" ? result.reason : ""}`);
                if (result.status === "fulfilled")
                    assert.ok(result.value.frames === 2 && result.value.arrivals[0] >= 5.9, `${what}: ${JSON.stringify(result.value)}`);
            }
        } finally {
            for (const c of clients) c.close();
            for (const x of [cut, pinged, tunnelOnly]) {
                await x.envoy.stop();
                await x.hop?.stop();
            }
        }
    });
}

/** nginx only: its front door can be stopped and started again like a dead ingress controller. */
export function deadFrontDoorCheck(topology: () => Topology): void {
    it("fails a cluster fast while its front door behind HAProxy is dead, keeps the other answering, and recovers", async () => {
        const t = topology();
        const down = t.side("cl2");
        const c1 = client(t, "cl1");
        const c2 = client(t, "cl2");
        try {
            await down.nginx.stop();
            const started = Date.now();
            await assert.rejects(c2.storeInfo(10_000), (err: any) => err.code !== undefined);
            const failedAfter = Date.now() - started;
            assert.ok(failedAfter < 5000, `failed after ${failedAfter} ms; must fail within the 5 s connect timeout`);
            // HAProxy logs a connection once it has closed it, which can come just after Envoy has failed the call.
            const refused = await waitFor("HAProxy to log its refused connection to cl2", 5000, async () =>
                t.hop!.haproxy.connections().some((conn) => conn.backend === "cl2" && conn.termination === "SC") ? true : undefined,
            ).catch(() => false);
            assert.ok(refused, "HAProxy could not connect to cl2's front door");
            assert.deepEqual((await c1.storeInfo()).labels, [{ name: "cluster", value: "cl1" }]);
        } finally {
            await down.nginx.start(fs.readFileSync(down.nginx.configFile, "utf8"));
        }
        try {
            const info = await waitFor("cl2 to answer again", 15_000, async () => (await c2.storeInfo(2000).catch(() => undefined)) ?? undefined, 250);
            assert.deepEqual(info.labels, [{ name: "cluster", value: "cl2" }]);
        } finally {
            c1.close();
            c2.close();
        }
    });
}

/** Envoy Gateway, cl1's listener reading the PROXY protocol (the hop sends it v2) and cl2's not (the hop sends none). */
export function proxyProtocolChecks(topology: () => Topology): void {
    it("gives cl1's front door Envoy's address from HAProxy's PROXY v2 header; cl2's, without the protocol, sees the hop's", async () => {
        const t = topology();
        const since = Object.fromEntries(TWO_CLUSTERS.map(({ name }) => [name, t.side(name).frontDoor.checkpoint().requests]));
        const ended = await oneCallEach(t);
        for (const { name } of TWO_CLUSTERS) {
            const envoyAddresses = ended.filter((c) => c.backend === name).map((c) => c.client);
            const seen = await waitFor(`${name}'s front door to log the call`, 5000, async () => {
                const requests = t.side(name).frontDoor.requests().slice(since[name]);
                return requests.length > 0 ? requests.map((r) => r.client) : undefined;
            });
            const fromHeader = seen.every((address) => envoyAddresses.includes(address ?? ""));
            assert.equal(
                fromHeader,
                expectsProxyProtocol(t.model.clusters.find((c) => c.name === name)!),
                `${name}: Envoy at ${envoyAddresses}, front door saw ${seen}`,
            );
        }
    });

    it("refuses, at the front door, a connection without the header where its listener expects one, and one with it where it does not", async () => {
        const t = topology();
        const before = TWO_CLUSTERS.map(({ name }) => t.backend(name).calls.length);
        const since = TWO_CLUSTERS.map(({ name }) => t.side(name).frontDoor.checkpoint().logLength);
        const inverted = await t.startExtraEnvoy({ l4Hop: { sendProxyV2: (c) => !expectsProxyProtocol(c) } });
        try {
            for (const { name } of TWO_CLUSTERS) {
                const c = clientOf(inverted.model, name);
                try {
                    await assert.rejects(c.storeInfo(5000), `${name}: the call must fail`);
                } finally {
                    c.close();
                }
            }
        } finally {
            await inverted.envoy.stop();
            await inverted.hop?.stop();
        }
        assert.deepEqual(
            TWO_CLUSTERS.map(({ name }) => t.backend(name).calls.length),
            before,
            "nothing reached a backend",
        );
        // HAProxy routed to both front doors, and neither sent anything back.
        const attempts = inverted.hop!.connections();
        assert.deepEqual([...new Set(attempts.map((c) => `${c.backend}/${c.server}`))].sort(), ["cl1/cl1", "cl2/cl2"], inverted.hop!.log());
        assert.ok(
            attempts.every((c) => c.bytesRead === 0),
            inverted.hop!.log(),
        );
        // Each front door's connection log: cl1's listener closed the connection before TLS began (no SNI read), cl2's
        // TLS took the PROXY header for a record of an unknown version.
        // A front door writes its connection log when it closes the connection, which can follow the client's failure.
        const expected = [/sni=- peer_serial=- failure=-/, /sni=- peer_serial=- failure=\S*WRONG_VERSION_NUMBER/];
        const logged = TWO_CLUSTERS.map(({ name }, i) => t.side(name).frontDoor.log().slice(since[i]));
        await waitFor("both front doors to log the refused connection", 5000, async () => {
            TWO_CLUSTERS.forEach(({ name }, i) => (logged[i] = t.side(name).frontDoor.log().slice(since[i])));
            return expected.every((pattern, i) => pattern.test(logged[i])) || undefined;
        }).catch(() => undefined);
        expected.forEach((pattern, i) => assert.match(logged[i], pattern));

        // Directly, without HAProxy: cl1's listener serves only a connection that starts with the header.
        const cl1 = t.side("cl1");
        await assert.rejects(servedCertificate(cl1.frontDoorPort, cl1.host), "no PROXY header: refused");
        assert.ok((await servedCertificate(cl1.frontDoorPort, cl1.host, { proxyV2: true })).checkHost(cl1.host));
    });
}
