import { CertificateExpiry, ClusterStatus, HOPS } from "./probe";

/** What `npm run status` prints: one row per cluster with a mark per hop, then the failing hops in words. */

export interface StatusReport {
    ok: boolean;
    checkedAt: string;
    clientCertificate: CertificateExpiry;
    ca: CertificateExpiry;
    clusters: ClusterStatus[];
}

/** Runs `work` on every item with at most `limit` at once; `onDone` sees each result as it arrives. Keeps input order. */
export async function mapBounded<T, R>(items: T[], limit: number, work: (item: T) => Promise<R>, onDone: (result: R, done: number) => void): Promise<R[]> {
    const results: R[] = new Array<R>(items.length);
    let next = 0;
    let done = 0;
    const worker = async () => {
        while (next < items.length) {
            const index = next++;
            results[index] = await work(items[index]);
            onDone(results[index], ++done);
        }
    };
    await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
    return results;
}

function mark(cluster: ClusterStatus, hop: (typeof HOPS)[number]): string {
    const seen = cluster.hops.find((h) => h.hop === hop);
    if (seen === undefined) return "-";
    return seen.ok ? "ok" : "FAIL";
}

function table(rows: string[][]): string {
    const widths = rows[0].map((_, column) => Math.max(...rows.map((row) => row[column].length)));
    return rows
        .map((row) =>
            row
                .map((cell, column) => cell.padEnd(widths[column]))
                .join("  ")
                .trimEnd(),
        )
        .join("\n");
}

function expiryLine(what: string, cert: CertificateExpiry): string {
    const when = cert.daysToExpiry < 0 ? `EXPIRED ${-cert.daysToExpiry} days ago` : `expires in ${cert.daysToExpiry} days`;
    return `${what}: ${cert.subject}, ${when} (${cert.notAfter})`;
}

export function formatTable(report: StatusReport): string {
    const header = ["CLUSTER", "ADDRESS", ...HOPS, "SERVER CERT", "LATENCY", "RESULT"];
    const rows = report.clusters.map((c) => [
        c.name,
        c.address,
        ...HOPS.map((hop) => mark(c, hop)),
        c.server === undefined ? "-" : `${c.server.daysToExpiry}d`,
        c.latencyMs === undefined ? "-" : `${c.latencyMs} ms`,
        c.ok ? (c.hops.at(-1)?.detail ?? "ok") : `${c.failure ?? "failed"}`,
    ]);
    const failed = report.clusters.filter((c) => !c.ok);
    return [
        expiryLine("client certificate", report.clientCertificate),
        expiryLine("CA", report.ca),
        "",
        table([header, ...rows]),
        "",
        failed.length === 0 ? `all ${report.clusters.length} clusters reachable` : `${failed.length} of ${report.clusters.length} clusters failing`,
    ].join("\n");
}
