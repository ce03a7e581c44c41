import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { FILES } from "../components/observer/bootstrap";
import { tempDir } from "../test/e2e/support/processes";
import { METRIC } from "./dataset";
import { BenchPath, CLUSTER, cpuMs, envoyCounters, GrpcTarget, reapedChildrenCpuMs, Stack, unmeasuredFrontDoors, Variant } from "./stack";

/**
 * The data path measured two ways over the same stack (bench/stack.ts), repetitions interleaved across paths:
 * real PromQL through a real querier per path (wall time, and the CPU each proxy spends from /proc), and ghz on
 * the sidecar's Info (unary) and Series (stream) calls (latency, calls per second, CPU per call, ghz's own CPU).
 * Then a steady run of unary calls through the program's Envoy, with and without its connection rotation, counted
 * from Envoy's statistics.
 */

export interface Summary {
    median: number;
    min: number;
    max: number;
}

export interface DataPathOptions {
    reps: number;
    /** Queries of each kind per repetition and path. */
    perQuery: number;
    /** ghz calls per run: unary Info, streamed Series. */
    unaryCalls: number;
    streamCalls: number;
    concurrency: number;
    /** Unary calls of the steady run that counts handshakes and retries. */
    steadyCalls: number;
    stats: (values: number[]) => Summary;
    fmt: (s: Summary, digits?: number) => string;
}

const enc = encodeURIComponent;
const MIB = 1024 * 1024;

function queries(stack: Stack): Record<string, string> {
    const { end, hours } = stack.dataset;
    const start = end - hours * 3600;
    return {
        [`instant, every series: \`sum by (group) (${METRIC})\``]: `/api/v1/query?query=${enc(`sum by (group) (${METRIC})`)}&time=${end}`,
        [`range, every series over ${hours} h, step 60 s: \`sum by (group) (avg_over_time(${METRIC}[5m]))\``]: `/api/v1/query_range?query=${enc(
            `sum by (group) (avg_over_time(${METRIC}[5m]))`,
        )}&start=${start}&end=${end}&step=60`,
        [`raw samples of one group over ${hours} h: \`${METRIC}{group="g7"}[${hours}h]\``]: `/api/v1/query?query=${enc(`${METRIC}{group="g7"}[${hours}h]`)}&time=${end}`,
        "`/api/v1/series`, every series": `/api/v1/series?match[]=${enc(METRIC)}&start=${start}&end=${end}`,
    };
}

function proxyPids(p: BenchPath): { envoy: number[]; frontDoor: number[] } {
    return { envoy: p.processes.envoy === undefined ? [] : [p.processes.envoy], frontDoor: p.processes.frontDoor?.() ?? [] };
}

interface CpuSnapshot {
    envoy: number;
    frontDoor: number;
    querier: number;
    sidecar: number;
    prometheus: number;
    /** Bytes Envoy received from the front door (TLS records), where Envoy is on the path. */
    rxBytes: number;
}

async function snapshot(stack: Stack, p: BenchPath): Promise<CpuSnapshot> {
    const pids = proxyPids(p);
    const rxBytes = p.envoyStats ? ((await envoyCounters(p.envoyStats.adminPort))[`cluster.${p.envoyStats.cluster}.upstream_cx_rx_bytes_total`] ?? 0) : 0;
    return {
        envoy: cpuMs(pids.envoy),
        frontDoor: cpuMs(pids.frontDoor),
        querier: cpuMs([p.querier.pid!]),
        sidecar: cpuMs([p.processes.sidecar]),
        prometheus: cpuMs([stack.prometheus.pid!]),
        rxBytes,
    };
}

function delta(a: CpuSnapshot, b: CpuSnapshot): CpuSnapshot {
    return Object.fromEntries(Object.keys(a).map((k) => [k, b[k as keyof CpuSnapshot] - a[k as keyof CpuSnapshot]])) as unknown as CpuSnapshot;
}

function add(a: CpuSnapshot, b: CpuSnapshot): CpuSnapshot {
    return delta(Object.fromEntries(Object.keys(a).map((k) => [k, -a[k as keyof CpuSnapshot]])) as unknown as CpuSnapshot, b);
}

const ZERO: CpuSnapshot = { envoy: 0, frontDoor: 0, querier: 0, sidecar: 0, prometheus: 0, rxBytes: 0 };

/** Every repetition runs every path once, starting one path further each time, so drift and order affect all alike. */
function rotated<T>(items: T[], rep: number): T[] {
    return items.map((_, i) => items[(i + rep) % items.length]);
}

export interface RealQueryResult {
    /** envoy-thanos over native mTLS, wall time summed over one of each query (medians). */
    chainOverNativeMtls: number;
    /** Envoy + nginx CPU per MB Envoy received, on the envoy-thanos path. */
    proxyCpuMsPerMb: number;
}

export async function realQueries(stack: Stack, lines: string[], o: DataPathOptions): Promise<RealQueryResult> {
    const kinds = queries(stack);
    const wall: Record<string, Record<string, number[]>> = {};
    const cpu: Record<string, CpuSnapshot> = {};
    const bytesPerKind: Record<string, number> = {};
    const counted: Record<string, number> = {};
    let failed = 0;
    for (const p of stack.paths) {
        wall[p.id] = Object.fromEntries(Object.keys(kinds).map((k) => [k, []]));
        cpu[p.id] = { ...ZERO };
        counted[p.id] = 0;
    }
    // One untimed round first: the queriers' and sidecars' caches and connections warm, for every path alike.
    for (const p of stack.paths) for (const url of Object.values(kinds)) await p.querier.query(url, 300_000);
    for (let rep = 0; rep < o.reps; rep++) {
        for (const p of rotated(stack.paths, rep)) {
            for (const [kind, url] of Object.entries(kinds)) {
                const before = await snapshot(stack, p);
                for (let i = 0; i < o.perQuery; i++) {
                    const t0 = performance.now();
                    const res = await p.querier.query(url, 300_000);
                    const ms = performance.now() - t0;
                    if (res.status !== "success" || (res.warnings?.length ?? 0) > 0) failed++;
                    else wall[p.id][kind].push(ms);
                }
                const used = delta(before, await snapshot(stack, p));
                cpu[p.id] = add(cpu[p.id], used);
                if (p.id === "envoy-thanos") bytesPerKind[kind] = (bytesPerKind[kind] ?? 0) + used.rxBytes / o.perQuery / o.reps;
                counted[p.id] += o.perQuery;
            }
        }
    }
    const d = stack.dataset;
    const median = (id: string, kind: string) => o.stats(wall[id][kind]).median;
    const ids = stack.paths.map((p) => p.id);
    const sumOfMedians = (id: string) => Object.keys(kinds).reduce((s, k) => s + median(id, k), 0);
    const chainOverNativeMtls = sumOfMedians("envoy-thanos") / sumOfMedians("native-mtls");
    const mbPerQuery = Object.values(bytesPerKind).reduce((s, b) => s + b, 0) / Object.keys(kinds).length / 1e6;
    const envoyThanos = cpu["envoy-thanos"];
    const proxyCpuMsPerMb = (envoyThanos.envoy + envoyThanos.frontDoor) / (envoyThanos.rxBytes / 1e6);

    lines.push(
        "### Real queries through a real querier per path",
        "",
        ...unmeasuredFrontDoors().flatMap(({ kind, reason }) => [`Not measured: envoy-thanos through ${kind}, because ${reason}.`, ""]),
        ...stack.paths.flatMap((p) =>
            p.harnessOnPath === undefined
                ? []
                : [
                      `Measured with the harness on the path: ${p.id} goes through ${p.harnessOnPath}; its wall times include them, its CPU columns count the proxies alone.`,
                      "",
                  ],
        ),
        (chainOverNativeMtls >= 1
            ? `On real queries the proxy chain (Envoy → nginx) adds ${((chainOverNativeMtls - 1) * 100).toFixed(0)} % wall time over native mTLS ` +
              "(the querier's per-endpoint TLS straight to the sidecar), summed over one of each query below; "
            : "On real queries the proxy chain (Envoy → nginx) adds no measurable wall time over native mTLS (the querier's per-endpoint TLS " +
              `straight to the sidecar): summed over one of each query below it took ${((1 - chainOverNativeMtls) * 100).toFixed(0)} % less, ` +
              "which is this run's noise, not a gain; ") + `Envoy and nginx together spend ${proxyCpuMsPerMb.toFixed(2)} ms of CPU per MB of gRPC they carry.`,
        "",
        `Dataset: ${d.series.toLocaleString("en")} series (${d.groups} groups × ${d.instancesPerGroup} instances of \`${METRIC}\`), one sample every ` +
            `${d.stepSeconds} s over ${d.hours} h: ${d.samples.toLocaleString("en")} samples, generated at bench time as ` +
            `${(d.openMetricsBytes / MIB).toFixed(0)} MiB of OpenMetrics and built into blocks by \`promtool tsdb create-blocks-from openmetrics\` ` +
            `in ${d.buildSeconds.toFixed(0)} s, served by one Prometheus through real Thanos sidecars. ${o.reps} repetitions × ${o.perQuery} of each query ` +
            `per path, interleaved, after one untimed round; ${failed} queries failed or were partial.`,
        "",
        `| query | ${stack.paths.map((p) => `${p.id} ms`).join(" | ")} | envoy-thanos / native-mtls | envoy-thanos / direct | recipe / native-mtls |`,
        `| --- | ${stack.paths.map(() => "---").join(" | ")} | --- | --- | --- |`,
    );
    for (const kind of Object.keys(kinds)) {
        const ratio = (a: string, b: string) => (median(a, kind) / median(b, kind)).toFixed(2);
        lines.push(
            `| ${kind} (${(bytesPerKind[kind] / 1e6).toFixed(2)} MB) | ${ids.map((id) => o.fmt(o.stats(wall[id][kind]), 1)).join(" | ")} | ${ratio("envoy-thanos", "native-mtls")} | ${ratio(
                "envoy-thanos",
                "direct",
            )} | ${ratio("recipe", "native-mtls")} |`,
        );
    }
    lines.push(
        `| **sum of the medians** | ${ids.map((id) => `**${sumOfMedians(id).toFixed(1)}**`).join(" | ")} | **${chainOverNativeMtls.toFixed(2)}** | ${(
            sumOfMedians("envoy-thanos") / sumOfMedians("direct")
        ).toFixed(2)} | ${(sumOfMedians("recipe") / sumOfMedians("native-mtls")).toFixed(2)} |`,
        "",
        "Wall time per query in ms, median (min–max); MB in the first column: TLS bytes Envoy received from nginx per query.",
        "",
        "| path | Envoy CPU ms / query | front door CPU ms / query | proxies CPU ms / MB | querier CPU ms / query | sidecar + Prometheus CPU ms / query | proxies' share of the query's CPU |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    );
    for (const p of stack.paths) {
        const c = cpu[p.id];
        const n = counted[p.id];
        const proxies = c.envoy + c.frontDoor;
        const total = proxies + c.querier + c.sidecar + c.prometheus;
        const hasProxy = p.processes.envoy !== undefined || p.processes.frontDoor !== undefined;
        lines.push(
            `| ${p.id}: ${p.label} | ${p.processes.envoy === undefined ? "—" : (c.envoy / n).toFixed(2)} | ${p.processes.frontDoor === undefined ? "—" : (c.frontDoor / n).toFixed(2)} | ${
                hasProxy ? (proxies / (n * mbPerQuery)).toFixed(2) : "—"
            } | ${(c.querier / n).toFixed(2)} | ${((c.sidecar + c.prometheus) / n).toFixed(2)} | ${hasProxy ? `${((proxies / total) * 100).toFixed(1)} %` : "—"} |`,
        );
    }
    lines.push(
        "",
        `CPU from /proc (10 ms ticks) over every timed query; nginx counts its master and worker. Per MB: the ${mbPerQuery.toFixed(2)} MB a query ` +
            "moves on average (measured on the envoy-thanos path; the same queries move the same data on every path).",
        "",
    );
    return { chainOverNativeMtls, proxyCpuMsPerMb };
}

interface GhzReport {
    count: number;
    total: number;
    rps: number;
    latencyDistribution: { percentage: number; latency: number }[] | null;
    errorDistribution: Record<string, number> | null;
}

export function ghzBinary(): string {
    const result = spawnSync("bash", [path.join(__dirname, "../tools/ghz/build.sh"), "--print-path"], { encoding: "utf8" });
    const binary = result.stdout.trim().split("\n").at(-1) ?? "";
    if (!fs.existsSync(binary)) throw new Error(`ghz is not built; run: bash tools/ghz/build.sh (or bash tools/setup.sh)`);
    return binary;
}

function ghzVersion(binary: string): string {
    const result = spawnSync(binary, ["--version"], { encoding: "utf8" });
    return `${result.stdout}${result.stderr}`.trim();
}

const CALLS = {
    info: { proto: path.join(__dirname, "../test/e2e/proto/info.proto"), call: "thanos.info.Info/Info" },
    series: { proto: path.join(__dirname, "proto/store.proto"), call: "thanos.Store/Series" },
} as const;

/** One ghz run; its own CPU is what this process reaped from it. */
async function ghz(
    binary: string,
    target: GrpcTarget,
    call: keyof typeof CALLS,
    data: object,
    total: number,
    concurrency: number,
): Promise<{ report: GhzReport; cpuMs: number; wallMs: number }> {
    const out = path.join(tempDir("bench-ghz"), "report.json");
    const tls = target.tls
        ? [`--cacert=${target.tls.ca}`, `--cert=${target.tls.cert}`, `--key=${target.tls.key}`, `--cname=${target.tls.serverName}`]
        : ["--insecure"];
    const args = [
        `--proto=${CALLS[call].proto}`,
        `--call=${CALLS[call].call}`,
        `--data=${JSON.stringify(data)}`,
        `--total=${total}`,
        `--concurrency=${concurrency}`,
        "--connections=1",
        "--timeout=60s",
        "--format=json",
        `--output=${out}`,
        ...tls,
        target.address,
    ];
    const cpu0 = reapedChildrenCpuMs();
    const t0 = performance.now();
    const code = await new Promise<number>((resolve, reject) => {
        const child = spawn(binary, args, { stdio: ["ignore", "ignore", "pipe"] });
        let stderr = "";
        child.stderr.on("data", (d) => (stderr += d));
        const timer = setTimeout(() => child.kill("SIGKILL"), 600_000);
        child.on("error", reject);
        child.on("exit", (c) => {
            clearTimeout(timer);
            if (c !== 0) reject(new Error(`ghz ${call} on ${target.address} exited ${c}: ${stderr.slice(-1000)}`));
            else resolve(c);
        });
    });
    const wallMs = performance.now() - t0;
    const report = JSON.parse(fs.readFileSync(out, "utf8")) as GhzReport;
    fs.rmSync(path.dirname(out), { recursive: true, force: true });
    void code;
    return { report, cpuMs: reapedChildrenCpuMs() - cpu0, wallMs };
}

function percentileMs(report: GhzReport, p: number): number {
    return (report.latencyDistribution?.find((l) => l.percentage === p)?.latency ?? NaN) / 1e6;
}

function errors(report: GhzReport): number {
    return Object.values(report.errorDistribution ?? {}).reduce((s, n) => s + n, 0);
}

/** The micro Series call: every raw chunk of one group's series over the dataset's hours. */
function seriesOfOneGroup(stack: Stack): object {
    const { end, hours } = stack.dataset;
    return {
        min_time: String((end - hours * 3600) * 1000),
        max_time: String(end * 1000),
        matchers: [
            { type: "EQ", name: "__name__", value: METRIC },
            { type: "EQ", name: "group", value: "g7" },
        ],
    };
}

export interface MicroResult {
    /** Envoy + nginx CPU per unary call on the envoy-thanos path, µs. */
    unaryProxyCpuUs: number;
    /** envoy-thanos RPS over native mTLS RPS, unary. */
    unaryRpsOverNativeMtls: number;
}

export async function micro(stack: Stack, lines: string[], o: DataPathOptions): Promise<MicroResult> {
    const binary = ghzBinary();
    const { hours } = stack.dataset;
    const seriesRequest = seriesOfOneGroup(stack);
    const runs = { info: { data: {}, total: o.unaryCalls }, series: { data: seriesRequest, total: o.streamCalls } } as const;
    type Sample = { p50: number; p99: number; rps: number; envoyUs: number; frontDoorUs: number; sidecarUs: number; ghzUs: number; ghzCores: number };
    const samples: Record<string, Record<string, Sample[]>> = {};
    const failed: Record<string, Record<string, number>> = {};
    /** What ghz reported for the failed calls, by path and message. */
    const failures: Record<string, Record<string, number>> = {};
    for (const p of stack.paths) {
        failures[p.id] = {};
        samples[p.id] = { info: [], series: [] };
        failed[p.id] = { info: 0, series: 0 };
    }
    // A short untimed run per path and call: connections up, sidecar warm.
    for (const p of stack.paths)
        for (const [call, run] of Object.entries(runs)) await ghz(binary, p.grpc, call as keyof typeof CALLS, run.data, 50, o.concurrency);
    for (let rep = 0; rep < o.reps; rep++) {
        for (const p of rotated(stack.paths, rep)) {
            for (const [call, run] of Object.entries(runs)) {
                const pids = proxyPids(p);
                const before = { envoy: cpuMs(pids.envoy), frontDoor: cpuMs(pids.frontDoor), sidecar: cpuMs([p.processes.sidecar]) };
                const { report, cpuMs: ghzMs, wallMs } = await ghz(binary, p.grpc, call as keyof typeof CALLS, run.data, run.total, o.concurrency);
                const us = (ms: number) => (ms * 1000) / report.count;
                failed[p.id][call] += errors(report);
                for (const [message, n] of Object.entries(report.errorDistribution ?? {})) failures[p.id][message] = (failures[p.id][message] ?? 0) + n;
                samples[p.id][call].push({
                    p50: percentileMs(report, 50),
                    p99: percentileMs(report, 99),
                    rps: report.rps,
                    envoyUs: us(cpuMs(pids.envoy) - before.envoy),
                    frontDoorUs: us(cpuMs(pids.frontDoor) - before.frontDoor),
                    sidecarUs: us(cpuMs([p.processes.sidecar]) - before.sidecar),
                    ghzUs: us(ghzMs),
                    ghzCores: ghzMs / wallMs,
                });
            }
        }
    }
    const med = (id: string, call: string, key: keyof Sample) => o.stats(samples[id][call].map((s) => s[key])).median;
    lines.push(
        `### Micro: ghz on the sidecar's Info (unary) and Series (stream) calls`,
        "",
        `ghz ${ghzVersion(binary)} over one connection at concurrency ${o.concurrency}: ` +
            `${o.unaryCalls.toLocaleString("en")} Info calls and ${o.streamCalls.toLocaleString("en")} Series calls (one group, ` +
            `${stack.dataset.instancesPerGroup} series × ${hours} h) per run, ${o.reps} runs per path, interleaved. ` +
            "CPU per call from /proc over each run; ghz's own CPU shows it is not the bottleneck (cores: its CPU time over the run's wall time, of 2).",
        "",
        "| path | call | p50 ms | p99 ms | calls/s | calls/s / native-mtls | failed calls | Envoy µs CPU/call | front door µs CPU/call | sidecar µs CPU/call | ghz µs CPU/call | ghz cores |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    );
    for (const call of Object.keys(runs)) {
        for (const p of stack.paths) {
            const s = samples[p.id][call];
            const cell = (key: keyof Sample, digits: number) => o.fmt(o.stats(s.map((x) => x[key])), digits);
            lines.push(
                `| ${p.id} | ${call === "info" ? "Info" : "Series"} | ${cell("p50", 2)} | ${cell("p99", 2)} | ${cell("rps", 0)} | ${(med(p.id, call, "rps") / med("native-mtls", call, "rps")).toFixed(2)} | ${failed[p.id][call]} of ${s.length * runs[call as keyof typeof runs].total} | ${
                    p.processes.envoy === undefined ? "—" : cell("envoyUs", 0)
                } | ${p.processes.frontDoor === undefined ? "—" : cell("frontDoorUs", 0)} | ${cell("sidecarUs", 0)} | ${cell("ghzUs", 0)} | ${med(p.id, call, "ghzCores").toFixed(2)} |`,
            );
        }
    }
    lines.push("", "Medians (min–max) over the runs.");
    const failedPaths = stack.paths.filter((p) => Object.keys(failures[p.id]).length > 0);
    if (failedPaths.length > 0) {
        lines.push(
            "Failed calls, as ghz (grpc-go, the querier's gRPC library) reported them; neither the recipe's Envoy nor a client straight to nginx",
            "moves to a new connection before nginx's GOAWAY after 1,000 streams, so the streams that GOAWAY catches fail:",
            "",
        );
        for (const p of failedPaths) {
            for (const [message, n] of Object.entries(failures[p.id])) lines.push(`- ${p.id}: ${n} × \`${message}\``);
        }
    }
    lines.push("");
    return {
        unaryProxyCpuUs: med("envoy-thanos", "info", "envoyUs") + med("envoy-thanos", "info", "frontDoorUs"),
        unaryRpsOverNativeMtls: med("envoy-thanos", "info", "rps") / med("native-mtls", "info", "rps"),
    };
}

export interface SteadyResult {
    retriesPer100k: number;
}

/**
 * A steady unary run through the program's Envoy as configured (rotating its connection to nginx after
 * envoy.maxRequestsPerConnection streams) and through the same Envoy with rotation effectively off, so that nginx's
 * keepalive_requests (1000) ends each connection with a GOAWAY.
 */
export async function steady(stack: Stack, lines: string[], o: DataPathOptions): Promise<SteadyResult> {
    const binary = ghzBinary();
    const defaultMax = stack.topology.model.envoy.maxRequestsPerConnection;
    const before = await stack.variant({ envoy: { maxRequestsPerConnection: 4294967295 } });
    const variants = [
        {
            label: `envoy.maxRequestsPerConnection ${defaultMax} (the default)`,
            grpc: stack.paths.find((p) => p.id === "envoy-thanos")!.grpc,
            topology: stack.topology,
        },
        { label: "no rotation (as before): nginx's GOAWAY after 1000 streams ends each connection", ...before },
    ];
    lines.push(
        `### Steady unary run: ${o.steadyCalls.toLocaleString("en")} Info calls at concurrency ${o.concurrency} through Envoy → nginx`,
        "",
        "Counted from Envoy's statistics for its upstream cluster, per 100,000 streams.",
        "",
        "| Envoy | calls/s | p50 ms | p99 ms | failed calls | upstream connections | TLS handshakes | rotated by Envoy | ended by nginx's GOAWAY | refused streams retried |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    );
    let retriesPer100k = NaN;
    for (const v of variants) {
        const cluster = `cluster.thanos_${stack.topology.model.clusters[0].name}`;
        const c0 = await envoyCounters(v.topology.envoy.adminPort);
        const { report } = await ghz(binary, v.grpc, "info", {}, o.steadyCalls, o.concurrency);
        const c1 = await envoyCounters(v.topology.envoy.adminPort);
        const streams = (c1[`${cluster}.upstream_rq_total`] ?? 0) - (c0[`${cluster}.upstream_rq_total`] ?? 0);
        const per100k = (name: string) => ((((c1[`${cluster}.${name}`] ?? 0) - (c0[`${cluster}.${name}`] ?? 0)) * 100_000) / streams).toFixed(1);
        if (v.topology === stack.topology) retriesPer100k = Number(per100k("upstream_rq_retry"));
        lines.push(
            `| ${v.label} | ${report.rps.toFixed(0)} | ${percentileMs(report, 50).toFixed(2)} | ${percentileMs(report, 99).toFixed(2)} | ${errors(report)} | ${per100k(
                "upstream_cx_total",
            )} | ${per100k("ssl.handshake")} | ${per100k("upstream_cx_max_requests")} | ${per100k("upstream_cx_close_notify")} | ${per100k("upstream_rq_retry")} |`,
        );
    }
    lines.push("");
    return { retriesPer100k };
}

/** A change to the program's Envoy whose cost per unary call the profile measures. */
interface EnvoyVariant {
    label: string;
    config?: Record<string, unknown>;
    mutate?: (documents: Record<string, any>) => void;
}

const listenerRoutes = (documents: Record<string, any>) =>
    documents[FILES.listeners].resources.flatMap((l: any) => l.filter_chains[0].filters[0].typed_config.route_config.virtual_hosts[0].routes);

const ENVOY_VARIANTS: EnvoyVariant[] = [
    { label: "as the program configures it" },
    { label: "two worker threads (`resources.limits.cpu: 2`, so `--concurrency 2`)", config: { envoy: { resources: { limits: { cpu: "2" } } } } },
    { label: "access log on (`envoy.accessLog: true`)", config: { envoy: { accessLog: true } } },
    {
        label: "HTTP/2 windows at their maximum (16 MiB per stream, 256 MiB per connection)",
        config: { envoy: { http2Windows: { streamBytes: 16 * 1024 * 1024, connectionBytes: 256 * 1024 * 1024 } } },
    },
    {
        label: "connection buffer limits at 32 KiB, listener and cluster (Envoy's default: 1 MiB)",
        mutate: (documents) => {
            for (const l of documents[FILES.listeners].resources) l.per_connection_buffer_limit_bytes = 32 * 1024;
            for (const c of documents[FILES.clusters].resources) c.per_connection_buffer_limit_bytes = 32 * 1024;
        },
    },
    {
        label: "no retry policy on the route",
        mutate: (documents) => {
            for (const route of listenerRoutes(documents)) delete route.route.retry_policy;
        },
    },
    {
        label: "no statistics (`stats_matcher: reject_all`)",
        mutate: (documents) => {
            documents[FILES.bootstrap].stats_config = { stats_matcher: { reject_all: true } };
        },
    },
];

/** Where the program's Envoy spends its CPU per unary call: the same ghz run against Envoys that differ in one setting. */
export async function envoyProfile(stack: Stack, lines: string[], o: DataPathOptions): Promise<void> {
    const binary = ghzBinary();
    const variants: (EnvoyVariant & Variant)[] = [];
    for (const v of ENVOY_VARIANTS) variants.push({ ...v, ...(await stack.variant(v.config ?? {}, v.mutate)) });
    type Sample = { envoyUs: number; frontDoorUs: number; rps: number; p50: number; seriesCpuMs: number; seriesMb: number };
    const samples: Sample[][] = variants.map(() => []);
    const series = seriesOfOneGroup(stack);
    for (const v of variants) await ghz(binary, v.grpc, "info", {}, 50, o.concurrency);
    for (let rep = 0; rep < o.reps; rep++) {
        for (const i of rotated(
            variants.map((_, i) => i),
            rep,
        )) {
            const v = variants[i];
            const pids = [v.processes.envoy!, ...v.processes.frontDoor!()];
            const before = { envoy: cpuMs([v.processes.envoy!]), frontDoor: cpuMs(pids.slice(1)) };
            const { report } = await ghz(binary, v.grpc, "info", {}, o.unaryCalls, o.concurrency);
            const afterInfo = { envoy: cpuMs([v.processes.envoy!]), frontDoor: cpuMs(pids.slice(1)) };
            const rx = async () => (await envoyCounters(v.topology.envoy.adminPort))[`cluster.thanos_${CLUSTER.name}.upstream_cx_rx_bytes_total`] ?? 0;
            const rx0 = await rx();
            await ghz(binary, v.grpc, "series", series, o.streamCalls, o.concurrency);
            const mb = ((await rx()) - rx0) / 1e6;
            samples[i].push({
                envoyUs: ((afterInfo.envoy - before.envoy) * 1000) / report.count,
                frontDoorUs: ((afterInfo.frontDoor - before.frontDoor) * 1000) / report.count,
                rps: report.rps,
                p50: percentileMs(report, 50),
                seriesCpuMs: cpuMs(pids) - afterInfo.envoy - afterInfo.frontDoor,
                seriesMb: mb,
            });
        }
    }
    lines.push(
        `### Envoy's cost per call and per MB, one setting changed at a time`,
        "",
        `The micro table's runs (${o.unaryCalls.toLocaleString("en")} Info calls, then ${o.streamCalls.toLocaleString("en")} Series calls, at concurrency ` +
            `${o.concurrency}; ${o.reps} runs each, interleaved) against separate Envoy → nginx pairs on the same sidecar that differ from the ` +
            "program's Envoy in one setting.",
        "",
        "| Envoy | Info: Envoy µs CPU/call | Info: front door µs CPU/call | Info calls/s | Info p50 ms | Series: Envoy + front door CPU ms/MB |",
        "| --- | --- | --- | --- | --- | --- |",
    );
    // Without statistics Envoy counts no bytes; the same Series calls move the same data through every variant.
    const mbPerRun = o.stats(samples.flat().flatMap((s) => (s.seriesMb > 0 ? [s.seriesMb] : []))).median;
    for (const [i, v] of variants.entries()) {
        const cell = (values: number[], digits: number) => o.fmt(o.stats(values), digits);
        const pick = (key: keyof Sample) => samples[i].map((s) => s[key]);
        const perMb = samples[i].map((s) => s.seriesCpuMs / mbPerRun);
        lines.push(
            `| ${v.label} | ${cell(pick("envoyUs"), 0)} | ${cell(pick("frontDoorUs"), 0)} | ${cell(pick("rps"), 0)} | ${cell(pick("p50"), 2)} | ${cell(perMb, 2)} |`,
        );
    }
    lines.push("", `Per MB: the ${mbPerRun.toFixed(1)} MB Envoy received from nginx per Series run.`, "");
}
