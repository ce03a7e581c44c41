import assert from "node:assert/strict";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import * as YAML from "yaml";
import { buildModel, Model } from "../../components/config/model";
import { TLS_KEYS } from "../../components/observer/bootstrap";
import { NATIVE_MOUNTS } from "../../components/observer/native";
import { endpointSdFile, querierFlags } from "../../components/outputs";
import { Issued, OpensslCa } from "../../tools/pki/openssl-ca";
import { writeSecretVolume } from "./support/envoy";
import { freePort, ProcessGroup, requireTool, sleep, tempDir, waitFor } from "./support/processes";
import { healthyStores, ObservedMonitoring, Querier, startObservedMonitoring, stopObservedMonitoring } from "./support/thanos";
import { Topology } from "./support/topology";

/**
 * `observer.mode: native` with real programs: a Thanos v0.42 querier, configured from the program's own
 * `endpointSdFile` output (per-endpoint TLS), reaches two observed clusters' front doors (nginx rendered from the
 * program's Ingress) and their real sidecars, with no Envoy. The TLS files sit in a Secret-volume layout.
 */

const tools = [
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

function byCluster(result: { metric: Record<string, string>; value: [number, string] }[]): Record<string, string> {
    return Object.fromEntries(result.map((s) => [s.metric.cluster, s.value[1]]));
}

/** The program's endpoint config for a model, its pod paths moved to `tlsDir` (object traversal, no text edits). */
function sdFileFor(model: Model, tlsDir: string, edit: (config: any) => void = () => {}): string {
    const config = YAML.parse(endpointSdFile(model));
    for (const endpoint of config.endpoints) {
        const files = endpoint.client_config.tls_config;
        for (const key of Object.keys(files)) files[key] = path.join(tlsDir, path.relative(NATIVE_MOUNTS.tlsDirectory, files[key]));
    }
    edit(config);
    return YAML.stringify(config);
}

function tlsVolume(dir: string, client: Issued, ca: string): void {
    writeSecretVolume(dir, { [TLS_KEYS.certificate]: client.certificate, [TLS_KEYS.privateKey]: client.privateKey, [TLS_KEYS.ca]: ca });
}

const serialOf = (pem: string) => new crypto.X509Certificate(pem).serialNumber.toUpperCase();

describe("native mode: the Thanos querier does the mTLS itself", { skip }, () => {
    const group = new ProcessGroup();
    const dir = tempDir("native");
    let observed: Record<string, ObservedMonitoring>;
    let topology: Topology;
    let model: Model;
    let querier: Querier;
    const tlsDir = path.join(dir, "querier-tls");

    /** A querier on its own SD file; stopped with the group. */
    async function startQuerier(name: string, sdFile: string): Promise<Querier> {
        const file = path.join(dir, `${name}.yaml`);
        fs.writeFileSync(file, sdFile);
        const q = new Querier(path.join(dir, name), await freePort(), await freePort(), group);
        fs.mkdirSync(q.dir, { recursive: true });
        await q.start({ sdFile: file });
        return q;
    }

    before(async () => {
        observed = await startObservedMonitoring(
            CLUSTERS.map((c) => c.name),
            dir,
            group,
        );
        topology = await new Topology({
            clusters: CLUSTERS,
            observedOnly: true,
            sidecarAddress: (name) => `127.0.0.1:${observed[name].sidecar.grpcPort}`,
        }).start();
        // The same clusters as a native-mode stack: no Envoy keys, the front doors' addresses.
        model = buildModel(
            {
                renderDirectory: dir,
                observer: { mode: "native", namespace: "monitoring", querierVersion: "v0.42.4" },
                clusters: topology.model.clusters.map((c) => ({ name: c.name, host: c.host, address: `${c.address.host}:${c.address.port}` })),
            },
            { checkSecretMaterial: false, now: new Date() },
        );
        assert.deepEqual(querierFlags(model), [`--endpoint.sd-config-file=${NATIVE_MOUNTS.endpointsDirectory}/${NATIVE_MOUNTS.endpointsFile}`]);
        tlsVolume(tlsDir, topology.client, topology.ca.ca.certificate);
        querier = await startQuerier("query-native", sdFileFor(model, tlsDir));
    });

    after(async () => {
        await topology?.stop();
        await group.stopAll();
        if (observed) await stopObservedMonitoring(observed);
    });

    it("registers both clusters as stores, with no Envoy anywhere", async () => {
        const labelSets = await healthyStores(querier, CLUSTERS.length);
        assert.deepEqual(labelSets.map((l) => l.cluster).sort(), ["cl1", "cl2"]);
        for (const c of CLUSTERS) {
            const entries = topology.side(c.name).nginx.accessLog();
            assert.ok(entries.length > 0, `the querier went through ${c.name}'s front door`);
            assert.ok(
                entries.every((e) => e.sni === c.host && e.host === c.host && e.clientVerify === "SUCCESS"),
                JSON.stringify(entries.slice(0, 3)),
            );
        }
    });

    it("answers queries equal to each Prometheus asked directly", async () => {
        await healthyStores(querier, CLUSTERS.length);
        const at = Math.floor(Date.now() / 1000) - 1;
        const expr = "prometheus_tsdb_head_series";
        const viaThanos = await querier.query(`/api/v1/query?query=${enc(expr)}&time=${at}`);
        assert.equal(viaThanos.status, "success");
        const direct: Record<string, string> = {};
        for (const [name, o] of Object.entries(observed)) {
            direct[name] = (await o.prometheus.query(`/api/v1/query?query=${enc(expr)}&time=${at}`)).data.result[0].value[1];
        }
        assert.deepEqual(byCluster(viaThanos.data.result), direct);
    });

    it("completes a query whose Series stream lasts 20 s", { timeout: 120_000 }, async () => {
        await healthyStores(querier, CLUSTERS.length);
        observed.cl1.slow.delayMs = 20_000;
        try {
            const at = Math.floor(Date.now() / 1000) - 2;
            const started = Date.now();
            const res = await querier.query(`/api/v1/query_range?query=up&start=${at - 30}&end=${at}&step=2`, 90_000);
            assert.ok((Date.now() - started) / 1000 >= 19, "the slow stream lasted 20 s");
            assert.equal(res.status, "success");
            assert.deepEqual(res.warnings ?? [], []);
            assert.deepEqual(res.data.result.map((s: any) => s.metric.cluster).sort(), ["cl1", "cl2"]);
        } finally {
            observed.cl1.slow.delayMs = 0;
        }
    });

    it("gives a partial response while one sidecar is down, and recovers", { timeout: 120_000 }, async () => {
        await healthyStores(querier, CLUSTERS.length);
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
            assert.deepEqual(Object.keys(byCluster(partial.data.result)), ["cl1"]);
        } finally {
            await observed.cl2.sidecar.start();
        }
        await healthyStores(querier, CLUSTERS.length);
    });

    /** A querier that must never see data: several refresh rounds, no healthy store, no series. */
    async function assertNeverServed(q: Querier): Promise<void> {
        for (let round = 0; round < 6; round++) {
            await sleep(1000);
            const stores = await q.stores();
            assert.equal(stores.filter((s) => s.lastError === null && s.labelSets.length > 0).length, 0, JSON.stringify(stores));
            assert.deepEqual((await q.query(`/api/v1/query?query=up`)).data?.result ?? [], []);
        }
    }

    it("is refused with a client certificate from another CA", { timeout: 60_000 }, async () => {
        const foreign = OpensslCa.create(path.join(dir, "foreign"), "foreign").client("foreign");
        const foreignDir = path.join(dir, "foreign-tls");
        tlsVolume(foreignDir, foreign, topology.ca.ca.certificate);
        await assertNeverServed(await startQuerier("query-foreign", sdFileFor(model, foreignDir)));
        for (const c of CLUSTERS) assert.match(topology.side(c.name).nginx.errorLog(), /client SSL certificate verify error/);
    });

    it("is refused when the server name does not match the front door's certificate", { timeout: 60_000 }, async () => {
        const wrong = sdFileFor(model, tlsDir, (config) => {
            for (const endpoint of config.endpoints) endpoint.client_config.server_name = "wrong.example.com";
        });
        const q = await startQuerier("query-wrong-name", wrong);
        await assertNeverServed(q);
        assert.match(q.log(), /certificate is valid for .*, not wrong\.example\.com|certificate is not valid for any names|x509/);
    });

    it("presents a renewed client certificate (Secret-volume swap) at its next handshake, with no failed query", { timeout: 120_000 }, async () => {
        await healthyStores(querier, CLUSTERS.length);
        const renewed = topology.ca.client("renewed");
        let queries = 0;
        const failures: string[] = [];
        let running = true;
        // Queries all along, bounded by the test's own steps (at most a few hundred).
        const load = (async () => {
            while (running && queries < 2000) {
                const res = await querier.query(`/api/v1/query?query=up`).catch((err: Error) => ({ status: "error", error: err.message }));
                queries++;
                if (res.status !== "success" || (res.warnings?.length ?? 0) > 0 || Object.keys(byCluster(res.data.result)).length !== 2) {
                    failures.push(JSON.stringify(res).slice(0, 300));
                }
                await sleep(100);
            }
        })();
        try {
            tlsVolume(tlsDir, renewed, topology.ca.ca.certificate);
            await sleep(3000);
            // The querier keeps its connections; a front-door reload (what ingress-nginx does on every change)
            // closes them once idle, and the next handshake reads the certificate files again.
            for (const c of CLUSTERS) topology.side(c.name).nginx.reload();
            for (const c of CLUSTERS) {
                await waitFor(`${c.name}'s front door sees the renewed certificate`, 60_000, async () =>
                    topology
                        .side(c.name)
                        .nginx.accessLog()
                        .some((e) => e.clientSerial.toUpperCase() === serialOf(renewed.certificate))
                        ? true
                        : undefined,
                );
            }
            await sleep(2000);
        } finally {
            running = false;
            await load;
        }
        assert.deepEqual(failures, [], `${failures.length} of ${queries} queries failed or were partial`);
        assert.ok(queries > 20, `only ${queries} queries ran`);
    });
});
