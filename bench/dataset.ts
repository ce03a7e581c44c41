import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";

/**
 * The benchmark's synthetic dataset, generated at bench time: `groups × instancesPerGroup` series of the gauge
 * `bench_series{group, instance}`, one sample every `stepSeconds` over `hours` ending at `end`, written as
 * OpenMetrics text and turned into TSDB blocks by Prometheus' own `promtool tsdb create-blocks-from openmetrics`.
 */

export interface DatasetSize {
    groups: number;
    instancesPerGroup: number;
    hours: number;
    stepSeconds: number;
}

export interface Dataset extends DatasetSize {
    series: number;
    samples: number;
    /** Unix seconds of the last sample; queries are evaluated here so that every repetition sees the same data. */
    end: number;
    /** Bytes of OpenMetrics text promtool read. */
    openMetricsBytes: number;
    /** Seconds spent writing the text and building the blocks. */
    buildSeconds: number;
}

export const METRIC = "bench_series";

/** Writes the blocks into `dataDir` (a Prometheus `--storage.tsdb.path` before it starts). */
export async function createDataset(size: DatasetSize, workDir: string, dataDir: string): Promise<Dataset> {
    const t0 = performance.now();
    const end = Math.floor(Date.now() / 1000 / size.stepSeconds) * size.stepSeconds;
    const steps = Math.round((size.hours * 3600) / size.stepSeconds);
    const start = end - (steps - 1) * size.stepSeconds;
    const file = path.join(workDir, "dataset.om");
    const out = fs.createWriteStream(file, { highWaterMark: 1 << 20 });
    const write = (text: string) => (out.write(text) ? Promise.resolve() : new Promise<void>((resolve) => out.once("drain", () => resolve())));
    await write(`# HELP ${METRIC} A synthetic gauge for the benchmark.\n# TYPE ${METRIC} gauge\n`);
    for (let g = 0; g < size.groups; g++) {
        for (let i = 0; i < size.instancesPerGroup; i++) {
            const labels = `${METRIC}{group="g${g}",instance="i${i}"}`;
            const lines: string[] = [];
            // A slowly varying value per series: realistic chunk compression, neither constant nor random.
            for (let s = 0; s < steps; s++) lines.push(`${labels} ${((g * 7 + i) % 100) + (s % 60)} ${start + s * size.stepSeconds}`);
            await write(`${lines.join("\n")}\n`);
        }
    }
    await write("# EOF\n");
    await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
    fs.mkdirSync(dataDir, { recursive: true });
    const result = spawnSync("promtool", ["tsdb", "create-blocks-from", "openmetrics", file, dataDir], { encoding: "utf8", timeout: 600_000 });
    if (result.status !== 0) throw new Error(`promtool could not build the dataset's blocks: ${`${result.stdout}${result.stderr}`.slice(-2000)}`);
    const openMetricsBytes = fs.statSync(file).size;
    fs.rmSync(file);
    const series = size.groups * size.instancesPerGroup;
    return { ...size, series, samples: series * steps, end, openMetricsBytes, buildSeconds: (performance.now() - t0) / 1000 };
}
