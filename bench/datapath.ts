import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { tempDir } from "../test/e2e/support/processes";
import { procTicksMs, reapedChildrenCpuMs } from "./accounting";
import { METRIC } from "./dataset";
import { DataPathOptions, rotated } from "./schedule";
import { envoyCounters, GrpcTarget, proxyPids, Stack } from "./stack";

/**
 * The data path under ghz over the same stack (bench/stack.ts) as the real queries (bench/queries.ts), repetitions
 * interleaved across paths: the sidecar's Info (unary) and Series (stream) calls (latency, calls per second, CPU per
 * call from /proc, ghz's own CPU). Then a steady run of unary calls through the program's Envoy, with and without its connection rotation, counted
 * from Envoy's statistics. The pairs that differ in one setting are bench/pair-variants.ts.
 */

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
export async function ghz(
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

export function percentileMs(report: GhzReport, p: number): number {
    return (report.latencyDistribution?.find((l) => l.percentage === p)?.latency ?? NaN) / 1e6;
}

function errors(report: GhzReport): number {
    return Object.values(report.errorDistribution ?? {}).reduce((s, n) => s + n, 0);
}

/** The micro Series call: every raw chunk of one group's series over the dataset's hours. */
export function seriesOfOneGroup(stack: Stack): object {
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
                const before = { envoy: procTicksMs(pids.envoy), frontDoor: procTicksMs(pids.frontDoor), sidecar: procTicksMs([p.processes.sidecar]) };
                const { report, cpuMs: ghzMs, wallMs } = await ghz(binary, p.grpc, call as keyof typeof CALLS, run.data, run.total, o.concurrency);
                const us = (ms: number) => (ms * 1000) / report.count;
                failed[p.id][call] += errors(report);
                for (const [message, n] of Object.entries(report.errorDistribution ?? {})) failures[p.id][message] = (failures[p.id][message] ?? 0) + n;
                samples[p.id][call].push({
                    p50: percentileMs(report, 50),
                    p99: percentileMs(report, 99),
                    rps: report.rps,
                    envoyUs: us(procTicksMs(pids.envoy) - before.envoy),
                    frontDoorUs: us(procTicksMs(pids.frontDoor) - before.frontDoor),
                    sidecarUs: us(procTicksMs([p.processes.sidecar]) - before.sidecar),
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
    await before.stop();
    lines.push("");
    return { retriesPer100k };
}
