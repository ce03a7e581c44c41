import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { requireTool, sleep, tempDir } from "../test/e2e/support/processes";
import { FunctionTable } from "./elf";
import { flameGraphSvg } from "./flamegraph";
import { queries } from "./queries";
import { BenchPath, proxyPids, Stack } from "./stack";
import { CATEGORIES, Category, parsePerfScript, profileOf, Symbolize } from "./stacks";

/**
 * Where the proxies' CPU goes on the real-query workload: `perf record` (cpu-clock sampling, call chains unwound from
 * DWARF, which needs no symbols) on the proxies of a path while its querier runs the query set, then each process's
 * samples split by category (bench/stacks.ts) and drawn as a flame graph (bench/flamegraph.ts).
 */

/** Samples per second of CPU: about 60 a query for Envoy and nginx together. */
const FREQUENCY = 4999;

const COLOURS: Record<Category, string> = {
    "TLS: AES-GCM code": "#e5534b",
    "TLS: the rest of OpenSSL": "#f47067",
    "HTTP/2 codec": "#f0883e",
    "buffer copies (memcpy / memmove)": "#e3b341",
    "kernel: read / receive": "#539bf5",
    "kernel: write / send": "#539bf5",
    "kernel: epoll": "#539bf5",
    "kernel: other": "#539bf5",
    "everything else": "#b4b9c0",
};
const LEGEND = [
    { label: "AES-GCM", colour: COLOURS["TLS: AES-GCM code"] },
    { label: "rest of OpenSSL", colour: COLOURS["TLS: the rest of OpenSSL"] },
    { label: "HTTP/2 codec", colour: COLOURS["HTTP/2 codec"] },
    { label: "memcpy / memmove", colour: COLOURS["buffer copies (memcpy / memmove)"] },
    { label: "kernel", colour: COLOURS["kernel: other"] },
    { label: "everything else", colour: COLOURS["everything else"] },
];

interface Role {
    /** Who the process is, for the table and the picture's title. */
    label: string;
    /** The picture's file: performance-flame-<file>.svg. */
    file: string;
    pids: () => number[];
}

/** The processes to profile on each path: the program's Envoy and nginx on one, Envoy Gateway's Envoy on the other. */
function roles(paths: BenchPath[]): { path: BenchPath; roles: Role[] }[] {
    const byId = (id: string) => paths.find((p) => p.id === id);
    const out: { path: BenchPath; roles: Role[] }[] = [];
    const nginx = byId("envoy-thanos");
    if (nginx) {
        out.push({
            path: nginx,
            roles: [
                { label: "the program's Envoy", file: "envoy", pids: () => proxyPids(nginx).envoy },
                { label: "nginx (master and worker)", file: "nginx", pids: () => proxyPids(nginx).frontDoor },
            ],
        });
    }
    const gateway = byId("envoy-thanos-envoy-gateway");
    if (gateway) out.push({ path: gateway, roles: [{ label: "Envoy Gateway's Envoy", file: "envoy-gateway", pids: () => proxyPids(gateway).frontDoor }] });
    return out;
}

/** Names a stripped ELF's frames by their function's start address (bench/elf.ts), one table per binary. */
function elfSymbolizer(): Symbolize {
    const tables = new Map<string, FunctionTable | undefined>();
    return (frame) => {
        if (!tables.has(frame.dso)) {
            let table: FunctionTable | undefined;
            try {
                table = FunctionTable.read(frame.dso);
            } catch {
                // Not a readable ELF with an unwind table (e.g. [vdso]): left unnamed.
            }
            tables.set(frame.dso, table);
        }
        const table = tables.get(frame.dso);
        const start = table?.functionAt(frame.address);
        if (table === undefined || start === undefined) return undefined;
        const aesGcm = table.isAesGcm(start);
        return { name: `${path.basename(frame.dso)} 0x${start.toString(16)}${aesGcm ? " (AES-GCM)" : ""}`, aesGcm };
    };
}

/** Runs `perf record` on `pids` while `work` runs; returns `perf script`'s text. */
async function recorded(pids: number[], work: () => Promise<void>): Promise<string> {
    const dir = tempDir("bench-perf");
    const data = path.join(dir, "perf.data");
    const log = path.join(dir, "perf.log");
    const out = fs.openSync(log, "w");
    const perf = spawn(
        "perf",
        // 1024 pages of ring buffer per CPU: each sample carries 16 KiB of stack.
        ["record", "-e", "cpu-clock", "-F", String(FREQUENCY), "--call-graph", "dwarf,16384", "--mmap-pages", "1024", "-p", pids.join(","), "-o", data],
        { stdio: ["ignore", out, out] },
    );
    fs.closeSync(out);
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
        perf.once("exit", (code, signal) => resolve({ code, signal })),
    );
    try {
        // perf writes its file's header once it has attached (seconds on a busy machine); the wait after is a margin.
        const started = () => fs.existsSync(data) && fs.statSync(data).size > 0;
        for (let i = 0; i < 300 && !started(); i++) await sleep(100);
        if (!started()) throw new Error(`perf record did not start in 30 s: ${fs.readFileSync(log, "utf8").slice(-1000)}`);
        await sleep(500);
        await work();
        perf.kill("SIGINT");
        const timer = setTimeout(() => perf.kill("SIGKILL"), 120_000);
        const { code, signal } = await exited;
        clearTimeout(timer);
        // perf record ends on SIGINT by raising it again once its file is written.
        if (code !== 0 && signal !== "SIGINT") throw new Error(`perf record exited ${code ?? signal}: ${fs.readFileSync(log, "utf8").slice(-1000)}`);
        const script = spawnSync("perf", ["script", "-i", data, "-F", "comm,pid,tid,ip,sym,dso"], {
            encoding: "utf8",
            maxBuffer: 2 ** 31,
            timeout: 900_000,
        });
        if (script.status !== 0) throw new Error(`perf script failed: ${(script.stderr ?? "").slice(-1000)}`);
        return script.stdout;
    } finally {
        if (perf.exitCode === null && perf.signalCode === null) {
            perf.kill("SIGKILL");
            await exited;
        }
        fs.rmSync(dir, { recursive: true, force: true });
    }
}

export interface ProfileOptions {
    /** Rounds of the query set while perf records. */
    rounds: number;
    /** Where the pictures go, and the path the results use to link them. */
    outDir: string;
    linkDir: string;
}

export async function profileProxies(stack: Stack, lines: string[], o: ProfileOptions): Promise<void> {
    const perf = requireTool("perf", "apt-get install linux-perf (bash tools/setup.sh installs it)");
    lines.push("### Where the proxies' CPU goes: a perf profile of the real queries", "");
    if (typeof perf !== "string") {
        lines.push(`Not profiled: ${perf.skip}.`, "");
        return;
    }
    const urls = Object.values(queries(stack));
    const symbolize = elfSymbolizer();
    const rows: string[] = [];
    const pictures: string[] = [];
    for (const { path: p, roles: measured } of roles(stack.paths)) {
        const pids = measured.map((r) => r.pids());
        const text = await recorded(pids.flat(), async () => {
            for (let round = 0; round < o.rounds; round++) for (const url of urls) await p.querier.query(url, 300_000);
        });
        const samples = parsePerfScript(text);
        for (const [i, role] of measured.entries()) {
            const profile = profileOf(samples, new Set(pids[i]), symbolize);
            const share = (c: Category) => (profile.samples === 0 ? "—" : `${((profile.byCategory[c] / profile.samples) * 100).toFixed(1)} %`);
            rows.push(`| ${role.label} (${p.id}) | ${profile.samples} | ${CATEGORIES.map(share).join(" | ")} |`);
            const file = `performance-flame-${role.file}.svg`;
            fs.writeFileSync(
                path.join(o.outDir, file),
                flameGraphSvg(profile.folded, {
                    title: `${role.label} on ${p.id}: ${o.rounds} rounds of the real queries, ${profile.samples} samples (cpu-clock, ${FREQUENCY} Hz)`,
                    colour: (name) => COLOURS[profile.frameCategories.get(name) ?? "everything else"],
                    legend: LEGEND,
                }),
            );
            pictures.push(`[${role.label}](${o.linkDir}/${file})`);
        }
    }
    lines.push(
        `\`perf record -e cpu-clock -F ${FREQUENCY} --call-graph dwarf\` on the proxies of each path while its querier ran the query set ${o.rounds} ` +
            "times; each sample counted where its code was when sampled (self time). Flame graphs: " +
            `${pictures.join(", ")}.`,
        "",
        `| process | samples | ${CATEGORIES.join(" | ")} |`,
        `| --- | --- | ${CATEGORIES.map(() => "---").join(" | ")} |`,
        ...rows,
        "",
        "Envoy's release binary has no symbol table: its frames are named by their function's start address and its AES-GCM " +
            "functions are found by their AES and carry-less multiply instructions; the rest of its BoringSSL (record layer, " +
            "handshake), its HTTP/2 codec, its buffers and tcmalloc are in *everything else*. nginx exports its public functions " +
            "(the exported `ngx_http_v2_*` are its codec; its static ones are in *everything else*) and OpenSSL is a shared " +
            "library, whose AES-GCM code is found the same way. Kernel time is put under the system call it came through.",
        "",
    );
}
