import * as fs from "node:fs";
import * as http from "node:http";
import * as path from "node:path";
import * as YAML from "yaml";
import { NetworkNamespace } from "./netns";
import { freePort, ProcessGroup, Started, waitFor } from "./processes";

/**
 * Real Prometheus (Debian's) and real Thanos (built from its Go module) on loopback, plus a slow HTTP
 * proxy that stands for an overloaded Prometheus when a test needs a Series stream to last long.
 */

export function getJson(port: number, pathname: string, timeoutMs = 60_000): Promise<any> {
    return new Promise((resolve, reject) => {
        const req = http.get({ host: "127.0.0.1", port, path: pathname, timeout: timeoutMs }, (res) => {
            let body = "";
            res.setEncoding("utf8");
            res.on("data", (d) => (body += d));
            res.on("end", () => {
                try {
                    resolve(JSON.parse(body));
                } catch {
                    reject(new Error(`HTTP ${res.statusCode} from :${port}${pathname}: ${body.slice(0, 500)}`));
                }
            });
        });
        req.on("timeout", () => req.destroy(new Error(`timeout after ${timeoutMs} ms on :${port}${pathname}`)));
        req.on("error", reject);
    });
}

export class Prometheus {
    private process?: Started;

    constructor(
        readonly cluster: string,
        readonly dir: string,
        readonly port: number,
        private readonly group: ProcessGroup,
    ) {}

    get dataDir(): string {
        return path.join(this.dir, "data");
    }

    async start(): Promise<void> {
        fs.mkdirSync(this.dataDir, { recursive: true });
        const config = {
            global: { scrape_interval: "2s", evaluation_interval: "2s", external_labels: { cluster: this.cluster } },
            scrape_configs: [{ job_name: "prometheus", static_configs: [{ targets: [`127.0.0.1:${this.port}`] }] }],
        };
        const configFile = path.join(this.dir, "prometheus.yml");
        fs.writeFileSync(configFile, YAML.stringify(config));
        this.process = this.group.start(
            "prometheus",
            [
                `--config.file=${configFile}`,
                `--storage.tsdb.path=${this.dataDir}`,
                // The sidecar requires equal block durations (no compaction under it).
                "--storage.tsdb.min-block-duration=2h",
                "--storage.tsdb.max-block-duration=2h",
                `--web.listen-address=127.0.0.1:${this.port}`,
            ],
            { logFile: path.join(this.dir, "prometheus.log") },
        );
        // Two scrapes, so that every self-metric has a sample before the tests query a recent instant.
        await waitFor(
            `Prometheus ${this.cluster} to have scraped itself twice`,
            30_000,
            async () => {
                const res = await getJson(this.port, `/api/v1/query?query=${encodeURIComponent("count_over_time(up[1m])")}`);
                return Number(res.data?.result?.[0]?.value?.[1] ?? 0) >= 2 ? true : undefined;
            },
            250,
        );
    }

    query(pathname: string): Promise<any> {
        return getJson(this.port, pathname);
    }

    get pid(): number | undefined {
        return this.process?.child.pid;
    }

    stop(): Promise<void> {
        return this.process?.stop() ?? Promise.resolve();
    }
}

export class Sidecar {
    private process?: Started;

    constructor(
        readonly cluster: string,
        readonly dir: string,
        readonly grpcPort: number,
        readonly httpPort: number,
        private readonly prometheusUrl: string,
        private readonly tsdbPath: string,
        private readonly group: ProcessGroup,
    ) {}

    /** `args` are appended to the sidecar's flags (e.g. its gRPC server TLS). */
    async start(args: string[] = []): Promise<void> {
        this.process = this.group.start(
            "thanos",
            [
                "sidecar",
                `--prometheus.url=${this.prometheusUrl}`,
                `--tsdb.path=${this.tsdbPath}`,
                `--grpc-address=127.0.0.1:${this.grpcPort}`,
                `--http-address=127.0.0.1:${this.httpPort}`,
                "--prometheus.get_config_interval=2s",
                ...args,
            ],
            { logFile: path.join(this.dir, `sidecar-${Date.now()}.log`) },
        );
        await waitFor(`sidecar ${this.cluster} ready`, 30_000, async () => ((await readyStatus(this.httpPort)) === 200 ? true : undefined), 250);
    }

    get pid(): number | undefined {
        return this.process?.child.pid;
    }

    stop(): Promise<void> {
        return this.process?.stop() ?? Promise.resolve();
    }
}

export class Querier {
    private process?: Started;
    /** Where the test reaches the HTTP API: `httpPort`, or its published port when the querier runs in a namespace. */
    private apiPort?: number;

    /** With `netns`, the querier runs inside that network namespace (its resolv.conf, its addresses). */
    constructor(
        readonly dir: string,
        readonly httpPort: number,
        readonly grpcPort: number,
        private readonly group: ProcessGroup,
        private readonly netns?: NetworkNamespace,
    ) {}

    /** `endpoints` become `--endpoint` flags; `sdFile` is passed as `--endpoint.sd-config-file`; `args` are appended. */
    async start(options: { endpoints?: string[]; sdFile?: string; args?: string[] }): Promise<void> {
        const args = ["query", `--http-address=127.0.0.1:${this.httpPort}`, `--grpc-address=127.0.0.1:${this.grpcPort}`, "--query.replica-label=replica"];
        for (const endpoint of options.endpoints ?? []) args.push(`--endpoint=${endpoint}`);
        if (options.sdFile !== undefined) args.push(`--endpoint.sd-config-file=${options.sdFile}`, "--endpoint.sd-config-reload-interval=2s");
        args.push(...(options.args ?? []));
        const [command, argv] = this.netns ? this.netns.command("thanos", args) : ["thanos", args];
        this.process = this.group.start(command, argv, { logFile: path.join(this.dir, "query.log") });
        this.apiPort ??= this.netns ? await this.netns.publish(this.httpPort) : this.httpPort;
        const apiPort = this.apiPort;
        await waitFor("thanos query ready", 30_000, async () => ((await readyStatus(apiPort)) === 200 ? true : undefined), 250);
    }

    get pid(): number | undefined {
        return this.process?.child.pid;
    }

    log(): string {
        return this.process?.log() ?? "";
    }

    /** The stores the querier knows, with their label sets and last error. */
    async stores(): Promise<{ name: string; lastError: string | null; labelSets: Record<string, string>[] }[]> {
        const res = await getJson(this.apiPort!, "/api/v1/stores");
        return Object.values<any[]>(res.data ?? {}).flat();
    }

    query(pathname: string, timeoutMs?: number): Promise<any> {
        return getJson(this.apiPort!, pathname, timeoutMs);
    }

    stop(): Promise<void> {
        return this.process?.stop() ?? Promise.resolve();
    }
}

/** HTTP status of a Thanos component's `/-/ready` (0 while it does not listen yet). */
function readyStatus(port: number): Promise<number> {
    return new Promise((resolve) => {
        const req = http.get({ host: "127.0.0.1", port, path: "/-/ready", timeout: 1000 }, (r) => {
            r.resume();
            resolve(r.statusCode ?? 0);
        });
        // `timeout` only reports; without destroy() a connection that never answers would hang the caller's bounded wait.
        req.on("timeout", () => req.destroy());
        req.on("error", () => resolve(0));
    });
}

/**
 * An HTTP proxy in front of Prometheus that holds back remote-read responses (what the sidecar's Series
 * call reads) for `delayMs`, as a slow or overloaded Prometheus would. Everything else passes at once.
 */
export class SlowRemoteRead {
    private server?: http.Server;
    delayMs = 0;

    constructor(
        readonly port: number,
        private readonly targetPort: number,
    ) {}

    async start(): Promise<void> {
        this.server = http.createServer((req, res) => {
            const forward = () => {
                const upstream = http.request({ host: "127.0.0.1", port: this.targetPort, path: req.url, method: req.method, headers: req.headers }, (up) => {
                    res.writeHead(up.statusCode ?? 502, up.headers);
                    up.pipe(res);
                });
                upstream.on("error", () => res.destroy());
                req.pipe(upstream);
            };
            const slow = req.url?.startsWith("/api/v1/read") && this.delayMs > 0;
            if (slow) setTimeout(forward, this.delayMs);
            else forward();
        });
        await new Promise<void>((resolve) => this.server!.listen(this.port, "127.0.0.1", resolve));
    }

    async stop(): Promise<void> {
        this.server?.closeAllConnections();
        await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    }
}

/** One observed cluster's monitoring: Prometheus, the slow remote-read proxy in front of it, and its Thanos sidecar. */
export interface ObservedMonitoring {
    prometheus: Prometheus;
    slow: SlowRemoteRead;
    sidecar: Sidecar;
}

/** Starts the monitoring of each named cluster under `dir`; `stopObservedMonitoring` ends what the group does not. */
export async function startObservedMonitoring(names: string[], dir: string, group: ProcessGroup): Promise<Record<string, ObservedMonitoring>> {
    const observed: Record<string, ObservedMonitoring> = {};
    for (const name of names) {
        const prometheus = new Prometheus(name, path.join(dir, name), await freePort(), group);
        const slow = new SlowRemoteRead(await freePort(), prometheus.port);
        const sidecar = new Sidecar(name, path.join(dir, name), await freePort(), await freePort(), `http://127.0.0.1:${slow.port}`, prometheus.dataDir, group);
        observed[name] = { prometheus, slow, sidecar };
    }
    await Promise.all(Object.values(observed).map((o) => o.prometheus.start()));
    for (const o of Object.values(observed)) {
        await o.slow.start();
        await o.sidecar.start();
    }
    return observed;
}

export async function stopObservedMonitoring(observed: Record<string, ObservedMonitoring>): Promise<void> {
    await Promise.all(Object.values(observed).map((o) => o.slow.stop()));
}

/** Every store the querier knows, healthy, as label sets: waits until there are `count`. */
export function healthyStores(querier: Querier, count: number, timeoutMs = 60_000): Promise<Record<string, string>[]> {
    return waitFor(
        `${count} healthy stores`,
        timeoutMs,
        async () => {
            const healthy = (await querier.stores()).filter((s) => s.lastError === null).flatMap((s) => s.labelSets);
            return healthy.length === count ? healthy : undefined;
        },
        500,
    );
}
