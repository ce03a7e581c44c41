import * as fs from "node:fs";
import * as path from "node:path";
import * as YAML from "yaml";
import { buildModel } from "../components/config/model";
import { TLS_KEYS } from "../components/observer/bootstrap";
import { NATIVE_MOUNTS } from "../components/observer/native";
import { endpointSdFile } from "../components/outputs";
import { writeSecretVolume } from "../test/e2e/support/envoy";
import { freePort, ProcessGroup, tempDir } from "../test/e2e/support/processes";
import { Querier, startObservedMonitoring, stopObservedMonitoring } from "../test/e2e/support/thanos";
import { Topology } from "../test/e2e/support/topology";

/**
 * Native mode against the Envoy path, with real queriers and real PromQL: three Thanos queriers over the same two
 * observed clusters (Prometheus + sidecar behind the program's nginx front door) — plain h2c straight to the
 * sidecars (the floor), native mTLS to the front doors, and through the program's Envoy — queried in interleaved
 * repetitions. Also what each mode adds to the observer: Envoy's memory and CPU, and each querier's.
 */

const QUERIES: Record<string, (now: number) => string> = {
    "instant `up`": (now) => `/api/v1/query?query=up&time=${now}`,
    "instant, every head series count": (now) => `/api/v1/query?query=${encodeURIComponent("prometheus_tsdb_head_series")}&time=${now}`,
    "range rate() over 2 min": (now) =>
        `/api/v1/query_range?query=${encodeURIComponent("sum by (cluster) (rate(prometheus_http_requests_total[30s]))")}&start=${now - 120}&end=${now}&step=5`,
    "series metadata": (now) => `/api/v1/series?match[]=${encodeURIComponent('{__name__=~"prometheus_tsdb_.*"}')}&start=${now - 120}&end=${now}`,
};

interface Stats {
    median: number;
    min: number;
    max: number;
}

export interface ModeBenchOptions {
    reps: number;
    /** Queries of each kind per repetition and mode. */
    perQuery: number;
    stats: (values: number[]) => Stats;
    fmt: (s: Stats, digits?: number) => string;
}

/** utime + stime of a process, in ms (clock ticks of 10 ms). */
function cpuMs(pid: number): number {
    const fields = fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
    return (Number(fields[11]) + Number(fields[12])) * 10;
}

function rssMiB(pid: number): number {
    return Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? NaN) / 1024;
}

export async function querierModes(lines: string[], options: ModeBenchOptions): Promise<void> {
    const group = new ProcessGroup();
    const dir = tempDir("bench-modes");
    const names = ["cl1", "cl2"];
    const observed = await startObservedMonitoring(names, dir, group);
    let topology: Topology | undefined;
    try {
        topology = await new Topology({
            clusters: names.map((name) => ({ name, host: `${name}m.example.com` })),
            sidecarAddress: (name) => `127.0.0.1:${observed[name].sidecar.grpcPort}`,
        }).start();
        const native = buildModel(
            {
                renderDirectory: dir,
                observer: { mode: "native", namespace: "monitoring" },
                clusters: topology.model.clusters.map((c) => ({ name: c.name, host: c.host, address: `${c.address.host}:${c.address.port}` })),
            },
            { checkSecretMaterial: false, now: new Date() },
        );
        const tlsDir = path.join(dir, "querier-tls");
        writeSecretVolume(tlsDir, {
            [TLS_KEYS.certificate]: topology.client.certificate,
            [TLS_KEYS.privateKey]: topology.client.privateKey,
            [TLS_KEYS.ca]: topology.ca.ca.certificate,
        });
        const sd = YAML.parse(endpointSdFile(native));
        for (const e of sd.endpoints) {
            for (const key of Object.keys(e.client_config.tls_config)) {
                e.client_config.tls_config[key] = path.join(tlsDir, path.relative(NATIVE_MOUNTS.tlsDirectory, e.client_config.tls_config[key]));
            }
        }
        const sdFile = path.join(dir, "native-endpoints.yaml");
        fs.writeFileSync(sdFile, YAML.stringify(sd));

        const queriers: Record<string, Querier> = {};
        const start = async (name: string, how: { endpoints?: string[]; sdFile?: string }) => {
            queriers[name] = new Querier(path.join(dir, `query-${name}`), await freePort(), await freePort(), group);
            fs.mkdirSync(queriers[name].dir, { recursive: true });
            await queriers[name].start(how);
        };
        await start("direct", { endpoints: names.map((n) => `127.0.0.1:${observed[n].sidecar.grpcPort}`) });
        await start("native", { sdFile });
        await start("envoy", { endpoints: names.map((n) => `127.0.0.1:${topology!.side(n).listenerPort}`) });
        for (const q of Object.values(queriers)) {
            for (let i = 0; i < 120; i++) {
                if ((await q.stores()).filter((s) => s.lastError === null).length === names.length) break;
                await new Promise((r) => setTimeout(r, 500));
            }
        }

        const wall: Record<string, Record<string, number[]>> = {};
        const cpu: Record<string, { querier: number; envoy: number; queries: number }> = {};
        for (const mode of Object.keys(queriers)) {
            wall[mode] = Object.fromEntries(Object.keys(QUERIES).map((q) => [q, []]));
            cpu[mode] = { querier: 0, envoy: 0, queries: 0 };
        }
        const envoyPid = topology.envoy.pid!;
        let failed = 0;
        // Interleaved: each repetition runs every mode once, so drift on the shared machine affects all alike.
        for (let rep = 0; rep < options.reps; rep++) {
            for (const [mode, q] of Object.entries(queriers)) {
                const before = { querier: cpuMs(q.pid!), envoy: cpuMs(envoyPid) };
                for (const [kind, query] of Object.entries(QUERIES)) {
                    for (let i = 0; i < options.perQuery; i++) {
                        const t0 = performance.now();
                        const res = await q.query(query(Math.floor(Date.now() / 1000) - 1));
                        const ms = performance.now() - t0;
                        if (res.status !== "success" || (res.warnings?.length ?? 0) > 0) failed++;
                        else wall[mode][kind].push(ms);
                    }
                }
                cpu[mode].querier += cpuMs(q.pid!) - before.querier;
                cpu[mode].envoy += cpuMs(envoyPid) - before.envoy;
                cpu[mode].queries += Object.keys(QUERIES).length * options.perQuery;
            }
        }

        const label: Record<string, string> = {
            direct: "direct: querier → sidecar (plain h2c, the floor)",
            native: "native: querier (mTLS) → nginx → sidecar",
            envoy: "envoy: querier → Envoy (mTLS) → nginx → sidecar",
        };
        lines.push(
            `### Querier modes: real PromQL through real queriers (${options.reps} repetitions × ${options.perQuery} of each query, 2 clusters)`,
            "",
            `| query | ${Object.keys(queriers)
                .map((m) => `${m} ms`)
                .join(" | ")} | native / direct | envoy / direct | envoy / native |`,
            `| --- | ${Object.keys(queriers)
                .map(() => "---")
                .join(" | ")} | --- | --- | --- |`,
        );
        for (const kind of Object.keys(QUERIES)) {
            const s = Object.fromEntries(Object.keys(queriers).map((m) => [m, options.stats(wall[m][kind])]));
            const ratio = (a: string, b: string) => (s[a].median / s[b].median).toFixed(2);
            lines.push(
                `| ${kind} | ${Object.keys(queriers)
                    .map((m) => options.fmt(s[m]))
                    .join(" | ")} | ${ratio("native", "direct")} | ${ratio("envoy", "direct")} | ${ratio("envoy", "native")} |`,
            );
        }
        lines.push(
            "",
            `Wall time per query, median (min–max) over all repetitions; ${failed} queries failed or were partial.`,
            "",
            "| mode | querier CPU ms per query | Envoy CPU ms per query | extra on the observer |",
            "| --- | --- | --- | --- |",
        );
        for (const mode of Object.keys(queriers)) {
            const envoyCost = mode === "envoy" ? (cpu[mode].envoy / cpu[mode].queries).toFixed(2) : "—";
            const extra =
                mode === "envoy"
                    ? `Envoy pods: ${rssMiB(envoyPid).toFixed(1)} MiB resident each (2 replicas by default)`
                    : mode === "native"
                      ? "a Secret and a ConfigMap; the client key in the querier pod"
                      : "nothing, and no TLS";
            lines.push(`| ${label[mode]} | ${(cpu[mode].querier / cpu[mode].queries).toFixed(2)} | ${envoyCost} | ${extra} |`);
        }
        lines.push(
            "",
            `Querier resident memory at the end: ${Object.entries(queriers)
                .map(([m, q]) => `${m} ${rssMiB(q.pid!).toFixed(1)} MiB`)
                .join(", ")}. CPU from /proc, in 10 ms ticks, summed over the repetitions.`,
            "",
        );
    } finally {
        await topology?.stop();
        await group.stopAll();
        await stopObservedMonitoring(observed);
    }
}
