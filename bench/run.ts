import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { buildModel } from "../components/config/model";
import { Envoy } from "../test/e2e/support/envoy";
import { freePort, ProcessGroup, tempDir } from "../test/e2e/support/processes";
import { pulumiBinary, PulumiProject } from "../test/e2e/support/pulumi";
import { clustersConfig, runProgram } from "../test/unit/harness";
import { micro, MicroResult, steady, SteadyResult } from "./datapath";
import { envoyProfile } from "./pair-variants";
import { FloorResult, tlsFloor } from "./floor";
import { profileProxies } from "./profile";
import { realQueries, RealQueryResult } from "./queries";
import { withLatestResults } from "./results-page";
import { Stack, startStack } from "./stack";

/**
 * `npm run bench [-- --smoke]`: what the proxies cost on real queries and per call, how far each path is from the
 * machine's TLS limit, how Envoy and the program scale; side by side in one run. Writes bench/results.md and, on a
 * full run, the "Latest results" of docs/performance.md. Absolute numbers only compare within one run (2 cores, shared).
 */

const smoke = process.argv.includes("--smoke");
/** `--only queries,micro`: run some sections (queries, profile, micro, steady, envoy-profile, floor, envoy, program, engine), written to bench/results-<sections>.md. */
const onlyIndex = process.argv.indexOf("--only");
const only = onlyIndex >= 0 ? (process.argv[onlyIndex + 1] ?? "").split(",") : undefined;
const REPS = smoke ? 1 : 5;
const ENVOY_SIZES = smoke ? [1, 10] : [1, 10, 100, 300];
const PROGRAM_SIZES = smoke ? [1, 10, 30] : [1, 10, 30, 100, 300];
/** The issue's workload: 20,000 series over 2 h at 30 s, 4.8 M samples; a smoke run keeps the shape, not the size. */
const DATASET = smoke ? { groups: 10, instancesPerGroup: 50, hours: 2, stepSeconds: 30 } : { groups: 100, instancesPerGroup: 200, hours: 2, stepSeconds: 30 };
const DATA_PATH = {
    reps: smoke ? 1 : 5,
    perQuery: smoke ? 1 : 2,
    unaryCalls: smoke ? 500 : 10_000,
    streamCalls: smoke ? 50 : 500,
    concurrency: 8,
    steadyCalls: smoke ? 3_000 : 100_000,
};
const FLOOR_MIB = smoke ? 64 : 1024;

interface Stats {
    median: number;
    min: number;
    max: number;
}

function stats(values: number[]): Stats {
    const sorted = [...values].sort((a, b) => a - b);
    const mid = Math.floor(sorted.length / 2);
    const median = sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
    return { median, min: sorted[0], max: sorted[sorted.length - 1] };
}

const fmt = (s: Stats, digits = 2) => `${s.median.toFixed(digits)} (${s.min.toFixed(digits)}–${s.max.toFixed(digits)})`;

/** What the sections measured that the closing note holds against the issue's targets. */
const reached: { queries?: RealQueryResult; micro?: MicroResult; steady?: SteadyResult; floor?: FloorResult } = {};

/** The data-path sections share one stack (dataset, sidecars, front door, Envoys, queriers), started by the first of them. */
let stack: Promise<Stack> | undefined;
const dataPathOptions = { ...DATA_PATH, stats, fmt };
const sharedStack = () => (stack ??= startStack(DATASET));

async function floor(lines: string[]): Promise<void> {
    const runs: FloorResult[] = [];
    for (let rep = 0; rep < REPS; rep++) runs.push(await tlsFloor(FLOOR_MIB));
    const mib = stats(runs.map((r) => r.mibPerSecond));
    const cpu = stats(runs.map((r) => r.cpuMsPerMb));
    reached.floor = { mibPerSecond: mib.median, cpuMsPerMb: cpu.median };
    lines.push(
        `### The floor: raw TLS 1.3 over loopback (${FLOOR_MIB} MiB on one connection, ${REPS} runs)`,
        "",
        "| MiB/s | CPU ms per MB, both ends |",
        "| --- | --- |",
        `| ${fmt(mib, 0)} | ${fmt(cpu, 2)} |`,
        "",
        "No gRPC and no proxy: OpenSSL (through Node's tls) in a sender and a receiver process. Every path above moves its",
        "data through at least one such TLS connection (two through Envoy and nginx), so this bounds any path's throughput.",
        "",
    );
}

/** The targets of issues 19 and 27 against this run's values (ratios from one run: benchmarks, not tests). */
function targets(lines: string[]): void {
    const q = reached.queries;
    const rows: [string, string, string, number | undefined, (v: number) => boolean, (v: number) => string][] = [
        [
            "19",
            "real queries: envoy-thanos wall / native mTLS, sum of one of each query",
            "≤ 1.05",
            q?.chainOverNativeMtls,
            (v) => v <= 1.05,
            (v) => v.toFixed(2),
        ],
        [
            "27",
            "real queries: envoy-thanos wall / native mTLS, the worst query of the set",
            "≤ 1.02",
            q?.worstQueryOverNativeMtls,
            (v) => v <= 1.02,
            (v) => v.toFixed(2),
        ],
        [
            "27",
            "real queries: Envoy + nginx CPU per MB the sidecar wrote",
            "≤ 2.5 ms",
            q?.proxyCpuMsPerMb["envoy-thanos"],
            (v) => v <= 2.5,
            (v) => `${v.toFixed(2)} ms`,
        ],
        [
            "27",
            "real queries: Envoy + Envoy Gateway's Envoy CPU per MB the sidecar wrote",
            "≤ 3 ms",
            q?.proxyCpuMsPerMb["envoy-thanos-envoy-gateway"],
            (v) => v <= 3,
            (v) => `${v.toFixed(2)} ms`,
        ],
        ["19", "unary Info: Envoy + nginx CPU per call", "≤ 120 µs", reached.micro?.unaryProxyCpuUs, (v) => v <= 120, (v) => `${v.toFixed(0)} µs`],
        ["27", "unary Info: envoy-thanos calls/s / native mTLS", "≥ 0.5", reached.micro?.unaryRpsOverNativeMtls, (v) => v >= 0.5, (v) => v.toFixed(2)],
        ["19", "steady unary run: refused streams retried per 100k", "0", reached.steady?.retriesPer100k, (v) => v === 0, (v) => v.toFixed(1)],
    ];
    if (rows.every((r) => r[3] === undefined)) return;
    lines.push("### Targets of issues 19 and 27 against this run", "", "| issue | target | goal | measured | met |", "| --- | --- | --- | --- | --- |");
    for (const [issue, name, goal, value, ok, show] of rows) {
        if (value !== undefined) lines.push(`| ${issue} | ${name} | ${goal} | ${show(value)} | ${ok(value) ? "yes" : "**no**"} |`);
    }
    lines.push("", "CPU per MB: the proxies' cpuacct nanoseconds over the bytes the sidecar wrote, every timed query of the set.", "");
}

function rssKiB(pid: number): number {
    const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
    return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN);
}

async function envoyFootprint(lines: string[]): Promise<void> {
    lines.push(
        `### Envoy footprint by number of observed clusters (${REPS} starts each)`,
        "",
        "Listeners and clusters from the watched LDS/CDS files (the deployed layout), and the same resources inlined as",
        "static resources in one bootstrap (the layout before Envoy reloaded them in place), started alternately.",
        "",
        "| clusters | start to /ready, ms (LDS/CDS files) | resident memory, MiB (LDS/CDS files) | start to /ready, ms (static) | resident memory, MiB (static) |",
        "| --- | --- | --- | --- | --- |",
    );
    const ca = (await import("../tools/pki/openssl-ca")).OpensslCa.create(undefined, "bench");
    const client = ca.client();
    for (const n of ENVOY_SIZES) {
        const measured = { watched: { startMs: [] as number[], rss: [] as number[] }, inline: { startMs: [] as number[], rss: [] as number[] } };
        for (let rep = 0; rep < REPS; rep++) {
            for (const layout of ["watched", "inline"] as const) {
                const group = new ProcessGroup();
                const [adminPort, metricsPort] = [await freePort(), await freePort()];
                const model = buildModel(
                    {
                        renderDirectory: "unused",
                        basePort: 30000,
                        envoy: { adminPort, metricsPort },
                        // Nothing listens there: the footprint of configuration, not of traffic.
                        clusters: Array.from({ length: n }, (_, i) => ({ name: `c${i + 1}`, host: `c${i + 1}.example.com`, address: "127.0.0.1:9" })),
                    },
                    { checkSecretMaterial: false, now: new Date() },
                );
                const envoy = new Envoy(
                    {
                        envoy: model.envoy,
                        clusters: model.clusters,
                        workDir: tempDir("bench-envoy"),
                        tls: { certificate: client.certificate, privateKey: client.privateKey, ca: ca.ca.certificate },
                    },
                    group,
                );
                const t0 = performance.now();
                await envoy.start({ inlineResources: layout === "inline" });
                measured[layout].startMs.push(performance.now() - t0);
                measured[layout].rss.push(rssKiB(envoy.pid!) / 1024);
                await group.stopAll();
            }
        }
        const { watched, inline } = measured;
        lines.push(
            `| ${n} | ${fmt(stats(watched.startMs), 0)} | ${fmt(stats(watched.rss), 1)} | ${fmt(stats(inline.startMs), 0)} | ${fmt(stats(inline.rss), 1)} |`,
        );
    }
    lines.push("");
}

async function programScale(lines: string[]): Promise<void> {
    lines.push(
        `### Program evaluation under the Pulumi mock runtime (${REPS} runs each)`,
        "",
        "| clusters | resources | resources per cluster (beyond the shared ones) | evaluation ms |",
        "| --- | --- | --- | --- |",
    );
    const medians: Record<number, number> = {};
    const counts: Record<number, number> = {};
    for (const n of PROGRAM_SIZES) {
        const times: number[] = [];
        for (let rep = 0; rep < REPS; rep++) {
            const t0 = performance.now();
            // Live mode (contexts, no render directory), as a real stack evaluates.
            const config = {
                observer: { context: "observer" },
                clusters: (clustersConfig(n).clusters as { name: string }[]).map((c) => ({ ...c, context: c.name })),
            };
            const result = await runProgram(config);
            times.push(performance.now() - t0);
            if (result.error) throw result.error;
            counts[n] = result.resources.length;
        }
        medians[n] = stats(times).median;
        const perCluster = n > 1 ? ((counts[n] - counts[PROGRAM_SIZES[0]]) / (n - PROGRAM_SIZES[0])).toFixed(1) : "—";
        lines.push(`| ${n} | ${counts[n]} | ${perCluster} | ${fmt(stats(times), 0)} |`);
    }
    const last = PROGRAM_SIZES[PROGRAM_SIZES.length - 1];
    lines.push(
        "",
        `t(${last}) / t(30) = ${(medians[last] / medians[30]).toFixed(2)} for ${(last / 30).toFixed(0)}× the clusters (linear growth gives about ${(last / 30).toFixed(0)}).`,
        "",
    );
}

/** `pulumi preview` with the real engine in render mode (provided certificates: see the engine tests for why). */
async function engineScale(lines: string[]): Promise<void> {
    if (pulumiBinary() === undefined) {
        lines.push("No Pulumi CLI on PATH: the real-engine preview timings were not measured (run bash tools/setup.sh).", "");
        return;
    }
    const sizes = smoke ? [1] : [1, 10, 30, 100];
    lines.push(`#### \`pulumi preview\` with the real engine, render mode (${REPS} runs each)`, "", "| clusters | preview ms |", "| --- | --- |");
    const { OpensslCa } = await import("../tools/pki/openssl-ca");
    const ca = OpensslCa.create(undefined, "bench-engine");
    const hosts = Array.from({ length: Math.max(...sizes) }, (_, i) => `c${i + 1}.example.com`);
    const shared = ca.issue("shared", {
        commonName: "shared",
        organization: "bench",
        dnsNames: hosts,
        allowedUses: ["digital_signature", "server_auth", "client_auth"],
        isCa: false,
    });
    const project = new PulumiProject();
    for (const n of sizes) {
        const stack = `bench-${n}`;
        project.writeStack(stack, {
            renderDirectory: tempDir("bench-render"),
            clusters: hosts.slice(0, n).map((host, i) => ({ name: `c${i + 1}`, host })),
            tls: { mode: "provided", caBundle: ca.ca.certificate, shared: { certificate: shared.certificate, privateKey: shared.privateKey } },
        });
        await project.ok(["stack", "init", stack]);
        const times: number[] = [];
        for (let rep = 0; rep < REPS; rep++) {
            const t0 = performance.now();
            await project.ok(["preview", "-s", stack]);
            times.push(performance.now() - t0);
        }
        lines.push(`| ${n} | ${fmt(stats(times), 0)} |`);
    }
    lines.push("", "Most of a small preview is the engine, language host and provider starting.", "");
}

/** docs/performance.md's "Latest results": this run's text. */
function updatePerformancePage(text: string): void {
    const file = path.join(__dirname, "../docs/performance.md");
    fs.writeFileSync(file, withLatestResults(fs.readFileSync(file, "utf8"), text));
}

async function main(): Promise<void> {
    const lines = [
        `## Benchmark results${smoke ? " (smoke run)" : ""}`,
        "",
        `Run ${new Date().toISOString()} on ${os.cpus().length} cores (load average ${os.loadavg()[0].toFixed(1)} at the start); numbers compare only within this run.`,
        "",
    ];
    const sections: Record<string, (lines: string[]) => Promise<void>> = {
        queries: async (l) => {
            reached.queries = await realQueries(await sharedStack(), l, dataPathOptions);
        },
        micro: async (l) => {
            reached.micro = await micro(await sharedStack(), l, dataPathOptions);
        },
        steady: async (l) => {
            reached.steady = await steady(await sharedStack(), l, dataPathOptions);
        },
        profile: async (l) => {
            // A run at full size draws the documentation's pictures (linked the same from bench/ and docs/); a smoke run's go to a temporary directory.
            const outDir = smoke ? tempDir("bench-flame") : path.join(__dirname, "../docs");
            await profileProxies(await sharedStack(), l, { rounds: smoke ? 3 : 20, outDir, linkDir: smoke ? outDir : "../docs" });
        },
        "envoy-profile": async (l) => envoyProfile(await sharedStack(), l, dataPathOptions),
        floor,
        envoy: envoyFootprint,
        program: programScale,
        engine: engineScale,
    };
    const chosen = only ?? Object.keys(sections);
    for (const name of chosen) {
        if (sections[name] === undefined) throw new Error(`--only: no section ${name}; choose from ${Object.keys(sections).join(", ")}`);
    }
    try {
        for (const name of chosen) await sections[name](lines);
    } finally {
        await (await stack)?.stop();
    }
    targets(lines);
    const text = lines.join("\n");
    const out = path.join(__dirname, only !== undefined ? `results-${only.join("-")}.md` : smoke ? "results-smoke.md" : "results.md");
    fs.writeFileSync(out, `${text}\n`);
    if (only === undefined && !smoke) updatePerformancePage(text);
    process.stdout.write(`${text}\nwritten to ${path.relative(process.cwd(), out)}\n`);
}

main().then(
    () => process.exit(0),
    (err) => {
        console.error(err);
        process.exit(1);
    },
);
