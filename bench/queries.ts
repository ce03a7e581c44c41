import { bytesWritten, CpuacctGroups, procTicksMs, tcpBytesAcked, threadCpuNs } from "./accounting";
import { METRIC } from "./dataset";
import { DataPathOptions, rotated } from "./schedule";
import { BenchPath, envoyCounters, proxyPids, Stack, unmeasuredFrontDoors } from "./stack";

/**
 * Real PromQL through a real querier per path, each query measured on its own: wall time, and the proxies' CPU and
 * bytes each counted two ways (bench/accounting.ts), so that the CPU-per-MB figure can be checked against itself.
 */

const enc = encodeURIComponent;
const MIB = 1024 * 1024;

export function queries(stack: Stack): Record<string, string> {
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

/** What one query cost on one path. */
interface QuerySample {
    wallMs: number;
    /** Nanoseconds (cpuacct, or the threads' schedstat where cpuacct is unavailable). */
    envoyNs: number;
    frontDoorNs: number;
    /** Envoy's main thread (admin, statistics flushes, configuration) and its other threads (workers), from schedstat. */
    envoyMainNs: number;
    envoyOthersNs: number;
    /** /proc ticks, in ms. */
    envoyTicksMs: number;
    frontDoorTicksMs: number;
    /** The other programs on the path, /proc ticks in ms. */
    querierMs: number;
    sidecarMs: number;
    prometheusMs: number;
    /** Bytes the sidecar wrote (its sockets) and the TLS bytes Envoy received from the front door (its statistics). */
    sidecarBytes: number;
    envoyRxBytes: number;
    /** Connections of the sidecar that closed during the query: its bytes are a lower bound then. */
    sidecarConnectionsClosed: number;
}

type Counters = Omit<QuerySample, "wallMs" | "sidecarBytes" | "sidecarConnectionsClosed">;

/** Nanoseconds of CPU of `pids`, by cpuacct group `name` where the stack has cpuacct, else by the threads' schedstat. */
function cpuNs(stack: Stack, name: string, pids: number[]): number {
    if (pids.length === 0) return 0;
    if (stack.cpuacct instanceof CpuacctGroups) {
        stack.cpuacct.join(name, pids);
        return stack.cpuacct.usageNs(name);
    }
    return pids.reduce((s, pid) => {
        const t = threadCpuNs(pid);
        return s + t.main + t.others;
    }, 0);
}

/** The bytes of a path: the sidecar's sockets, and Envoy's received TLS bytes from its upstream cluster. */
async function bytesCounters(p: BenchPath): Promise<{ sidecar: Map<string, number>; envoyRxBytes: number }> {
    const rxName = p.envoyStats && `cluster.${p.envoyStats.cluster}.upstream_cx_rx_bytes_total`;
    const envoyRxBytes = p.envoyStats ? ((await envoyCounters(p.envoyStats.adminPort, `^${rxName!.replace(/\./g, "\\.")}$`))[rxName!] ?? 0) : 0;
    return { sidecar: tcpBytesAcked(p.processes.sidecarPort), envoyRxBytes };
}

function cpuCounters(stack: Stack, p: BenchPath): Omit<Counters, "envoyRxBytes"> {
    const pids = proxyPids(p);
    const threads = pids.envoy.length > 0 ? threadCpuNs(pids.envoy[0]) : { main: 0, others: 0 };
    return {
        envoyNs: cpuNs(stack, `envoy-${pids.envoy[0]}`, pids.envoy),
        frontDoorNs: cpuNs(stack, `front-door-${pids.frontDoor[0]}`, pids.frontDoor),
        envoyMainNs: threads.main,
        envoyOthersNs: threads.others,
        envoyTicksMs: procTicksMs(pids.envoy),
        frontDoorTicksMs: procTicksMs(pids.frontDoor),
        querierMs: procTicksMs([p.querier.pid!]),
        sidecarMs: procTicksMs([p.processes.sidecar]),
        prometheusMs: procTicksMs([stack.prometheus.pid!]),
    };
}

/**
 * One query, its counters read around it so that neither the admin request for Envoy's statistics nor `ss` falls
 * inside the CPU interval: bytes first and CPU last before it, CPU first and bytes last after it.
 */
async function measuredQuery(stack: Stack, p: BenchPath, url: string): Promise<{ ok: boolean; sample: QuerySample }> {
    const bytes0 = await bytesCounters(p);
    const cpu0 = cpuCounters(stack, p);
    const t0 = performance.now();
    const res = await p.querier.query(url, 300_000);
    const wallMs = performance.now() - t0;
    const cpu1 = cpuCounters(stack, p);
    const bytes1 = await bytesCounters(p);
    const before = { ...cpu0, envoyRxBytes: bytes0.envoyRxBytes } as Record<string, number>;
    const after = { ...cpu1, envoyRxBytes: bytes1.envoyRxBytes } as Record<string, number>;
    const sample = Object.fromEntries(Object.keys(after).map((k) => [k, after[k] - before[k]])) as unknown as Counters;
    const sidecar = bytesWritten(bytes0.sidecar, bytes1.sidecar);
    return {
        ok: res.status === "success" && (res.warnings?.length ?? 0) === 0,
        sample: { ...sample, wallMs, sidecarBytes: sidecar.bytes, sidecarConnectionsClosed: sidecar.closed },
    };
}

/** Least squares `y = fixed + perUnit × x`. */
export function linearFit(xs: number[], ys: number[]): { fixed: number; perUnit: number } {
    const n = xs.length;
    const mx = xs.reduce((s, x) => s + x, 0) / n;
    const my = ys.reduce((s, y) => s + y, 0) / n;
    const sxy = xs.reduce((s, x, i) => s + (x - mx) * (ys[i] - my), 0);
    const sxx = xs.reduce((s, x) => s + (x - mx) ** 2, 0);
    const perUnit = sxx === 0 ? NaN : sxy / sxx;
    return { fixed: my - perUnit * mx, perUnit };
}

export interface RealQueryResult {
    /** envoy-thanos over native mTLS, wall time summed over one of each query (medians). */
    chainOverNativeMtls: number;
    /** Worst per-query envoy-thanos / native-mtls ratio of medians. */
    worstQueryOverNativeMtls: number;
    /** Envoy + front door CPU (ns method) per MB the sidecar wrote, over every timed query, by path id. */
    proxyCpuMsPerMb: Record<string, number>;
}

const sum = (values: number[]) => values.reduce((s, v) => s + v, 0);

export async function realQueries(stack: Stack, lines: string[], o: DataPathOptions): Promise<RealQueryResult> {
    const kinds = queries(stack);
    const samples: Record<string, Record<string, QuerySample[]>> = {};
    let failed = 0;
    for (const p of stack.paths) samples[p.id] = Object.fromEntries(Object.keys(kinds).map((k) => [k, []]));
    // One untimed round first: the queriers' and sidecars' caches and connections warm, for every path alike.
    for (const p of stack.paths) for (const url of Object.values(kinds)) await p.querier.query(url, 300_000);
    for (let rep = 0; rep < o.reps; rep++) {
        for (const p of rotated(stack.paths, rep)) {
            for (const [kind, url] of Object.entries(kinds)) {
                for (let i = 0; i < o.perQuery; i++) {
                    const { ok, sample } = await measuredQuery(stack, p, url);
                    if (ok) samples[p.id][kind].push(sample);
                    else failed++;
                }
            }
        }
    }
    const all = (id: string) => Object.values(samples[id]).flat();
    const median = (id: string, kind: string, key: keyof QuerySample = "wallMs") => o.stats(samples[id][kind].map((s) => s[key])).median;
    const ids = stack.paths.map((p) => p.id);
    const sumOfMedians = (id: string) => Object.keys(kinds).reduce((s, k) => s + median(id, k), 0);
    const chainOverNativeMtls = sumOfMedians("envoy-thanos") / sumOfMedians("native-mtls");
    const worstQueryOverNativeMtls = Math.max(...Object.keys(kinds).map((k) => median("envoy-thanos", k) / median("native-mtls", k)));
    const proxied = stack.paths.filter((p) => p.processes.envoy !== undefined || p.processes.frontDoor !== undefined);
    const proxiesNs = (s: QuerySample) => s.envoyNs + s.frontDoorNs;
    const proxiesTicks = (s: QuerySample) => s.envoyTicksMs + s.frontDoorTicksMs;
    /** ms of CPU per MB over a set of queries: the sum of the CPU over the sum of the bytes. */
    const perMb = (set: QuerySample[], cpuMs: (s: QuerySample) => number, bytes: (s: QuerySample) => number) =>
        sum(set.map(cpuMs)) / (sum(set.map(bytes)) / 1e6);
    const agreed = (set: QuerySample[]) =>
        perMb(
            set,
            (s) => proxiesNs(s) / 1e6,
            (s) => s.sidecarBytes,
        );
    const byTicks = (set: QuerySample[]) => perMb(set, proxiesTicks, (s) => s.envoyRxBytes);
    const proxyCpuMsPerMb = Object.fromEntries(proxied.map((p) => [p.id, agreed(all(p.id).filter((s) => s.sidecarConnectionsClosed === 0))]));
    const nsLabel = stack.cpuacct instanceof CpuacctGroups ? "cpuacct" : "schedstat";
    const d = stack.dataset;

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
              "which is this run's noise, not a gain; ") +
            `Envoy and nginx together spend ${proxyCpuMsPerMb["envoy-thanos"].toFixed(2)} ms of CPU per MB the sidecar wrote (${nsLabel}, every query of the set).`,
        "",
        `Dataset: ${d.series.toLocaleString("en")} series (${d.groups} groups × ${d.instancesPerGroup} instances of \`${METRIC}\`), one sample every ` +
            `${d.stepSeconds} s over ${d.hours} h: ${d.samples.toLocaleString("en")} samples, generated at bench time as ` +
            `${(d.openMetricsBytes / MIB).toFixed(0)} MiB of OpenMetrics and built into blocks by \`promtool tsdb create-blocks-from openmetrics\` ` +
            `in ${d.buildSeconds.toFixed(0)} s, served by one Prometheus through real Thanos sidecars. ${o.reps} repetitions × ${o.perQuery} of each query ` +
            `per path, interleaved, after one untimed round; ${failed} queries failed or were partial.`,
        "",
        `| query | ${ids.map((id) => `${id} ms`).join(" | ")} | envoy-thanos / native-mtls | envoy-thanos / direct | recipe / native-mtls |`,
        `| --- | ${ids.map(() => "---").join(" | ")} | --- | --- | --- |`,
    );
    for (const kind of Object.keys(kinds)) {
        const ratio = (a: string, b: string) => (median(a, kind) / median(b, kind)).toFixed(2);
        lines.push(
            `| ${kind} (${(median("envoy-thanos", kind, "sidecarBytes") / 1e6).toFixed(2)} MB) | ${ids
                .map((id) => o.fmt(o.stats(samples[id][kind].map((s) => s.wallMs)), 1))
                .join(" | ")} | ${ratio("envoy-thanos", "native-mtls")} | ${ratio("envoy-thanos", "direct")} | ${ratio("recipe", "native-mtls")} |`,
        );
    }
    lines.push(
        `| **sum of the medians** | ${ids.map((id) => `**${sumOfMedians(id).toFixed(1)}**`).join(" | ")} | **${chainOverNativeMtls.toFixed(2)}** | ${(
            sumOfMedians("envoy-thanos") / sumOfMedians("direct")
        ).toFixed(2)} | ${(sumOfMedians("recipe") / sumOfMedians("native-mtls")).toFixed(2)} |`,
        "",
        "Wall time per query in ms, median (min–max); MB in the first column: what the sidecar wrote per query (median, envoy-thanos path).",
        "",
    );
    // A query during which one of the sidecar's connections closed has lost bytes: left out of the per-MB figures.
    const counted = Object.fromEntries(
        Object.entries(samples).map(([id, byKind]) => [
            id,
            Object.fromEntries(Object.entries(byKind).map(([k, set]) => [k, set.filter((s) => s.sidecarConnectionsClosed === 0)])),
        ]),
    );
    const left = sum(Object.values(samples).flatMap((byKind) => Object.values(byKind).map((set) => set.filter((s) => s.sidecarConnectionsClosed > 0).length)));
    lines.push(`${left} queries saw one of the sidecar's connections close and are left out of the CPU-per-MB tables (their byte count is incomplete).`, "");
    cpuPerQueryTable(lines, o, proxied, kinds, counted, nsLabel);
    cpuPerPathTable(lines, stack.paths, counted, { agreed, byTicks, nsLabel });
    return { chainOverNativeMtls, worstQueryOverNativeMtls, proxyCpuMsPerMb };
}

/** Per query: the proxies' CPU and bytes, each counted two ways, and the CPU per MB both ways. */
function cpuPerQueryTable(
    lines: string[],
    o: DataPathOptions,
    proxied: BenchPath[],
    kinds: Record<string, string>,
    samples: Record<string, Record<string, QuerySample[]>>,
    nsLabel: string,
): void {
    const cell = (values: number[], digits: number) => o.fmt(o.stats(values), digits);
    lines.push(
        "#### The proxies' CPU per MB, query by query, counted two ways",
        "",
        `Each query measured on its own. CPU: ${nsLabel} (nanoseconds, every thread of every proxy process) and /proc ticks (10 ms); ` +
            "bytes: what the sidecar wrote (its sockets' acknowledged bytes) and the TLS bytes Envoy received from the front door (its " +
            "`upstream_cx_rx_bytes_total`). Median (min–max) over the queries of each kind.",
        "",
        `| path | query | MB the sidecar wrote | MB Envoy received | Envoy CPU ms (${nsLabel}) | front door CPU ms (${nsLabel}) | proxies CPU ms (/proc ticks) | ms / MB: ${nsLabel} ÷ sidecar bytes | ms / MB: ticks ÷ Envoy's bytes |`,
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    );
    for (const p of proxied) {
        const hasEnvoy = p.processes.envoy !== undefined;
        for (const kind of Object.keys(kinds)) {
            const set = samples[p.id][kind];
            const pick = (f: (s: QuerySample) => number) => set.map(f);
            lines.push(
                `| ${p.id} | ${kind.split(":")[0]} | ${cell(
                    pick((s) => s.sidecarBytes / 1e6),
                    2,
                )} | ${
                    hasEnvoy
                        ? cell(
                              pick((s) => s.envoyRxBytes / 1e6),
                              2,
                          )
                        : "—"
                } | ${
                    hasEnvoy
                        ? cell(
                              pick((s) => s.envoyNs / 1e6),
                              2,
                          )
                        : "—"
                } | ${cell(
                    pick((s) => s.frontDoorNs / 1e6),
                    2,
                )} | ${cell(
                    pick((s) => s.envoyTicksMs + s.frontDoorTicksMs),
                    0,
                )} | ${cell(
                    pick((s) => (s.envoyNs + s.frontDoorNs) / 1e6 / (s.sidecarBytes / 1e6)),
                    2,
                )} | ${
                    hasEnvoy
                        ? cell(
                              pick((s) => (s.envoyTicksMs + s.frontDoorTicksMs) / (s.envoyRxBytes / 1e6)),
                              2,
                          )
                        : "—"
                } |`,
            );
        }
    }
    lines.push("");
}

/** Per path over every query: both figures, their fixed and per-byte parts, and what else runs on the path. */
function cpuPerPathTable(
    lines: string[],
    paths: BenchPath[],
    samples: Record<string, Record<string, QuerySample[]>>,
    f: { agreed: (set: QuerySample[]) => number; byTicks: (set: QuerySample[]) => number; nsLabel: string },
): void {
    lines.push(
        "#### The proxies' CPU per path, over every query",
        "",
        `| path | Envoy CPU ms / query | front door CPU ms / query | proxies ms / MB: ${f.nsLabel} ÷ sidecar bytes | proxies ms / MB: ticks ÷ Envoy's bytes | ` +
            "mean of the per-query ms / MB | fixed ms per query + ms per MB (least squares) | Envoy's main thread, share of its CPU | querier CPU ms / query | " +
            "sidecar + Prometheus CPU ms / query | proxies' share of the query's CPU |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    );
    for (const p of paths) {
        const set = Object.values(samples[p.id]).flat();
        const n = set.length;
        const total = (f2: (s: QuerySample) => number) => sum(set.map(f2));
        const proxiesMs = total((s) => s.envoyNs + s.frontDoorNs) / 1e6;
        const everything = proxiesMs + total((s) => s.querierMs + s.sidecarMs + s.prometheusMs);
        const hasEnvoy = p.processes.envoy !== undefined;
        const hasProxy = hasEnvoy || p.processes.frontDoor !== undefined;
        const fit = hasProxy
            ? linearFit(
                  set.map((s) => s.sidecarBytes / 1e6),
                  set.map((s) => (s.envoyNs + s.frontDoorNs) / 1e6),
              )
            : undefined;
        const meanOfRatios = total((s) => (s.envoyNs + s.frontDoorNs) / 1e6 / (s.sidecarBytes / 1e6)) / n;
        const mainShare = total((s) => s.envoyMainNs) / total((s) => s.envoyMainNs + s.envoyOthersNs);
        const dash = "—";
        lines.push(
            `| ${p.id}: ${p.label} | ${hasEnvoy ? (total((s) => s.envoyNs) / 1e6 / n).toFixed(2) : dash} | ${
                p.processes.frontDoor === undefined ? dash : (total((s) => s.frontDoorNs) / 1e6 / n).toFixed(2)
            } | ${hasProxy ? f.agreed(set).toFixed(2) : dash} | ${hasEnvoy ? f.byTicks(set).toFixed(2) : dash} | ${hasProxy ? meanOfRatios.toFixed(2) : dash} | ${
                fit ? `${fit.fixed.toFixed(2)} + ${fit.perUnit.toFixed(2)} / MB` : dash
            } | ${hasEnvoy ? `${(mainShare * 100).toFixed(1)} %` : dash} | ${(total((s) => s.querierMs) / n).toFixed(1)} | ${(
                total((s) => s.sidecarMs + s.prometheusMs) / n
            ).toFixed(1)} | ${hasProxy ? `${((proxiesMs / everything) * 100).toFixed(1)} %` : dash} |`,
        );
    }
    lines.push("", "Medians are not used here: each figure is a sum over the timed queries.", "");
}
