import * as fs from "node:fs";
import * as path from "node:path";
import * as YAML from "yaml";
import { FatalWaitError, freePort, ProcessGroup, Started, waitFor } from "./processes";

/**
 * A real Prometheus on loopback that scrapes the given targets every second and evaluates the given rules,
 * so a test sees what an operator's Prometheus would: alerts in /api/v1/alerts, query results. (The
 * Prometheus of support/thanos.ts is the other kind: an observed cluster's, under a Thanos sidecar.)
 */

export interface ScrapeJob {
    job: string;
    metricsPath: string;
    target: string;
    /** Target labels, standing in for the ones Prometheus Operator adds (e.g. `namespace`). */
    labels: Record<string, string>;
}

export interface Alert {
    labels: Record<string, string>;
    state: "pending" | "firing";
}

export class ScrapingPrometheus {
    private process?: Started;
    private port = 0;

    constructor(
        private readonly dir: string,
        private readonly group: ProcessGroup,
    ) {}

    async start(jobs: ScrapeJob[], rules: object): Promise<void> {
        fs.mkdirSync(this.dir, { recursive: true });
        fs.writeFileSync(path.join(this.dir, "rules.yaml"), YAML.stringify(rules));
        const config = {
            global: { scrape_interval: "1s", evaluation_interval: "1s" },
            rule_files: [path.join(this.dir, "rules.yaml")],
            scrape_configs: jobs.map((j) => ({ job_name: j.job, metrics_path: j.metricsPath, static_configs: [{ targets: [j.target], labels: j.labels }] })),
        };
        fs.writeFileSync(path.join(this.dir, "prometheus.yml"), YAML.stringify(config));
        this.port = await freePort();
        this.process = this.group.start(
            "prometheus",
            [
                `--config.file=${path.join(this.dir, "prometheus.yml")}`,
                `--storage.tsdb.path=${path.join(this.dir, "data")}`,
                `--web.listen-address=127.0.0.1:${this.port}`,
            ],
            { logFile: path.join(this.dir, "prometheus.log") },
        );
        const child = this.process.child;
        await waitFor("Prometheus ready", 30_000, async () => {
            if (child.exitCode !== null) throw new Error(`prometheus exited ${child.exitCode}: ${this.process?.log().slice(-2000)}`);
            const res = await fetch(`http://127.0.0.1:${this.port}/-/ready`);
            return res.status === 200 ? true : undefined;
        });
    }

    private async api<T>(pathAndQuery: string): Promise<T> {
        const res = await fetch(`http://127.0.0.1:${this.port}${pathAndQuery}`, { signal: AbortSignal.timeout(10_000) });
        const body = (await res.json()) as { status: string; data: T; errorType?: string; error?: string };
        // An expression Prometheus cannot parse will not parse later either: end any wait at once.
        if (body.errorType === "bad_data") throw new FatalWaitError(`Prometheus rejects ${decodeURIComponent(pathAndQuery)}: ${body.error}`);
        if (body.status !== "success") throw new Error(`Prometheus ${pathAndQuery}: ${body.error ?? res.status}`);
        return body.data;
    }

    /** An instant query; Prometheus' own parser rejects an invalid expression with an error. */
    query(expr: string): Promise<{ resultType: string; result: { metric: Record<string, string>; value: [number, string] }[] }> {
        return this.api(`/api/v1/query?query=${encodeURIComponent(expr)}`);
    }

    async alerts(): Promise<Alert[]> {
        return (await this.api<{ alerts: Alert[] }>("/api/v1/alerts")).alerts;
    }

    log(): string {
        return this.process?.log() ?? "";
    }
}
