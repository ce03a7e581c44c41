import * as fs from "node:fs";
import * as path from "node:path";
import * as grpc from "@grpc/grpc-js";
import * as YAML from "yaml";
import { buildModel } from "../components/config/model";
import { Envoy, httpGet, validate } from "../test/e2e/support/envoy";
import { Backend, expectedSha256, QuerierClient } from "../test/e2e/support/grpc";
import { freePort, ProcessGroup, tempDir, waitFor } from "../test/e2e/support/processes";
import { pulumiBinary, PulumiProject } from "../test/e2e/support/pulumi";
import { Topology } from "../test/e2e/support/topology";
import { clustersConfig, runProgram } from "../test/unit/harness";
import { querierModes } from "./querier-modes";

/**
 * `npm run bench [-- --smoke]`: what the proxy costs, how Envoy and the program scale, side by side in
 * one run. Writes bench/results.md. Absolute numbers only compare within one run (2 cores, shared).
 */

const smoke = process.argv.includes("--smoke");
/** `--only envoy,program`: run some sections (data-path, querier-modes, envoy, program, engine), written to bench/results-<sections>.md. */
const onlyIndex = process.argv.indexOf("--only");
const only = onlyIndex >= 0 ? (process.argv[onlyIndex + 1] ?? "").split(",") : undefined;
const REPS = smoke ? 1 : 5;
const UNARY_CALLS = smoke ? 100 : 1000;
const CONCURRENCY = 8;
const STREAM_MIB = smoke ? 4 : 32;
const ENVOY_SIZES = smoke ? [1, 10] : [1, 10, 100, 300];
const PROGRAM_SIZES = smoke ? [1, 10, 30] : [1, 10, 30, 100, 300];

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

function percentile(values: number[], p: number): number {
    const sorted = [...values].sort((a, b) => a - b);
    return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

const fmt = (s: Stats, digits = 2) => `${s.median.toFixed(digits)} (${s.min.toFixed(digits)}–${s.max.toFixed(digits)})`;

/** Unary latency at fixed concurrency (failed calls counted, not timed), then one large stream. */
async function measurePath(client: QuerierClient): Promise<{ p50: number; p99: number; mibPerSec: number; failed: number }> {
    const latencies: number[] = [];
    let failed = 0;
    let next = 0;
    const worker = async () => {
        while (next < UNARY_CALLS) {
            next++;
            const t0 = performance.now();
            const ok = await client.storeInfo(10_000).then(
                () => true,
                () => false,
            );
            if (ok) latencies.push(performance.now() - t0);
            else failed++;
        }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    const t0 = performance.now();
    const result = await client.series({ frames: STREAM_MIB, frameBytes: 1024 * 1024 }, 300_000);
    const seconds = (performance.now() - t0) / 1000;
    if (result.sha256 !== expectedSha256(STREAM_MIB, 1024 * 1024)) throw new Error("stream corrupted");
    return { p50: percentile(latencies, 50), p99: percentile(latencies, 99), mibPerSec: STREAM_MIB / seconds, failed };
}

/** The manual recipe's Envoy, ported to load on current Envoy: typed_config on the router, ports and paths for loopback. */
async function startRecipeEnvoy(topology: Topology, group: ProcessGroup): Promise<{ port: number; adminPort: number }> {
    const dir = tempDir("bench-recipe");
    const recipe = YAML.parse(fs.readFileSync(path.join(__dirname, "../test/fixtures/manual-recipe-envoy.yaml"), "utf8"));
    const side = topology.side("cl1");
    const port = await freePort();
    const adminPort = await freePort();
    fs.writeFileSync(path.join(dir, "fullchain.pem"), topology.client.certificate);
    fs.writeFileSync(path.join(dir, "privkey.pem"), topology.client.privateKey);
    recipe.admin = { address: { socket_address: { address: "127.0.0.1", port_value: adminPort } } };
    recipe.static_resources.listeners = recipe.static_resources.listeners.filter((l: any) => l.name === "sidecar_cl1");
    recipe.static_resources.clusters = recipe.static_resources.clusters.filter((c: any) => c.name === "sidecar_cl1");
    const listener = recipe.static_resources.listeners[0];
    listener.address.socket_address = { address: "127.0.0.1", port_value: port };
    const hcm = listener.filter_chains[0].filters[0].typed_config;
    hcm.http_filters[0].typed_config = { "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router" };
    const cluster = recipe.static_resources.clusters[0];
    cluster.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address = { address: "127.0.0.1", port_value: side.nginx.port };
    const tls = cluster.transport_socket.typed_config.common_tls_context.tls_certificates[0];
    tls.certificate_chain.filename = path.join(dir, "fullchain.pem");
    tls.private_key.filename = path.join(dir, "privkey.pem");
    const file = path.join(dir, "envoy.yaml");
    fs.writeFileSync(file, YAML.stringify(recipe));
    const check = validate(file);
    if (!check.ok) throw new Error(`the ported recipe does not load: ${check.output.slice(-500)}`);
    group.start("envoy", ["-c", file, "--disable-hot-restart", "--log-level", "warn"], { logFile: path.join(dir, "envoy.log") });
    await waitFor("recipe Envoy", 20_000, async () => ((await httpGet(adminPort, "/ready").catch(() => ({ status: 0 }))).status === 200 ? true : undefined));
    return { port, adminPort };
}

async function dataPath(lines: string[]): Promise<void> {
    const group = new ProcessGroup();
    const topology = await new Topology({ clusters: [{ name: "cl1", host: "cl1m.example.com" }] }).start();
    const direct = new Backend("direct");
    try {
        const directPort = await freePort();
        const server = topology.side("cl1").server;
        await direct.start(
            directPort,
            grpc.ServerCredentials.createSsl(
                Buffer.from(topology.ca.ca.certificate),
                [{ cert_chain: Buffer.from(server.certificate), private_key: Buffer.from(server.privateKey) }],
                true,
            ),
        );
        const recipe = await startRecipeEnvoy(topology, group);
        const clients = {
            direct: new QuerierClient(`127.0.0.1:${directPort}`, {
                credentials: grpc.credentials.createSsl(
                    Buffer.from(topology.ca.ca.certificate),
                    Buffer.from(topology.client.privateKey),
                    Buffer.from(topology.client.certificate),
                ),
                serverName: "cl1m.example.com",
            }),
            program: new QuerierClient(`127.0.0.1:${topology.side("cl1").listenerPort}`),
            recipe: new QuerierClient(`127.0.0.1:${recipe.port}`),
        };
        const results: Record<string, { p50: number[]; p99: number[]; mib: number[]; failed: number }> = {};
        for (const name of Object.keys(clients)) results[name] = { p50: [], p99: [], mib: [], failed: 0 };
        // Interleaved repetitions, so drift on the shared machine affects every path alike.
        for (let rep = 0; rep < REPS; rep++) {
            for (const [name, client] of Object.entries(clients)) {
                const r = await measurePath(client);
                results[name].p50.push(r.p50);
                results[name].p99.push(r.p99);
                results[name].mib.push(r.mibPerSec);
                results[name].failed += r.failed;
            }
        }
        const base = { p50: stats(results.direct.p50).median, p99: stats(results.direct.p99).median, mib: stats(results.direct.mib).median };
        lines.push(
            `### Data path (loopback, mTLS, ${REPS} repetitions, ${UNARY_CALLS} unary calls at concurrency ${CONCURRENCY}, a ${STREAM_MIB} MiB stream)`,
            "",
            "| path | unary p50 ms | unary p99 ms | stream MiB/s | p50 / direct | p99 / direct | throughput / direct | failed unary calls |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |",
        );
        const label: Record<string, string> = {
            direct: "direct: client → backend (mTLS)",
            program: "envoy-thanos: client → Envoy → nginx → backend",
            recipe: "manual recipe's Envoy → nginx → backend",
        };
        for (const [name, r] of Object.entries(results)) {
            const p50 = stats(r.p50);
            const p99 = stats(r.p99);
            const mib = stats(r.mib);
            lines.push(
                `| ${label[name]} | ${fmt(p50)} | ${fmt(p99)} | ${fmt(mib, 1)} | ${(p50.median / base.p50).toFixed(2)} | ${(p99.median / base.p99).toFixed(2)} | ${(mib.median / base.mib).toFixed(2)} | ${r.failed} of ${REPS * UNARY_CALLS} |`,
            );
        }
        lines.push("", "Medians, with min–max over the repetitions in parentheses.", "");
        if (!smoke) {
            // The recipe keeps Envoy's default 15 s route timeout: a Series stream that lasts 40 s is cut.
            const t0 = performance.now();
            const outcome = await clients.recipe.series({ frames: 9, intervalMs: 5000, frameBytes: 64 }, 60_000).then(
                (r) => `completed with ${r.frames} frames`,
                (err) => `failed after ${((performance.now() - t0) / 1000).toFixed(1)} s: ${String(err.details ?? err.message)}`,
            );
            const ours = await clients.program.series({ frames: 9, intervalMs: 5000, frameBytes: 64 }, 60_000).then(
                (r) => `completed with ${r.frames} frames in ${r.arrivals.at(-1)!.toFixed(1)} s`,
                (err) => `failed: ${String(err.message)}`,
            );
            lines.push(`A 40 s Series-like stream (a message every 5 s): manual recipe ${outcome}; envoy-thanos ${ours}.`, "");
        }
        for (const c of Object.values(clients)) c.close();
    } finally {
        await direct.stop();
        await group.stopAll();
        await topology.stop();
    }
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

async function main(): Promise<void> {
    const lines = [
        `## Benchmark results${smoke ? " (smoke run)" : ""}`,
        "",
        `Run ${new Date().toISOString()} on ${require("node:os").cpus().length} cores; numbers compare only within this run.`,
        "",
    ];
    const sections: Record<string, (lines: string[]) => Promise<void>> = {
        "data-path": dataPath,
        "querier-modes": (l) => querierModes(l, { reps: REPS, perQuery: smoke ? 2 : 20, stats, fmt }),
        envoy: envoyFootprint,
        program: programScale,
        engine: engineScale,
    };
    const chosen = only ?? Object.keys(sections);
    for (const name of chosen) {
        const section = sections[name];
        if (section === undefined) throw new Error(`--only: no section ${name}; choose from ${Object.keys(sections).join(", ")}`);
        await section(lines);
    }
    const text = lines.join("\n");
    const out = path.join(__dirname, only !== undefined ? `results-${only.join("-")}.md` : smoke ? "results-smoke.md" : "results.md");
    fs.writeFileSync(out, `${text}\n`);
    process.stdout.write(`${text}\nwritten to ${path.relative(process.cwd(), out)}\n`);
}

main().then(
    () => process.exit(0),
    (err) => {
        console.error(err);
        process.exit(1);
    },
);
