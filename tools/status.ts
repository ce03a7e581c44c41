import { spawnSync } from "node:child_process";
import * as path from "node:path";
import { parseArgs } from "node:util";
import { certificateExpiry, probeCluster } from "./status/probe";
import { formatTable, mapBounded, StatusReport } from "./status/report";
import { credentialsFromDirectory, Credentials, fromStackOutputs, parseClusterArgument, StatusTarget, UsageError } from "./status/targets";

/**
 * `npm run status -- -s <stack>`: checks every observed cluster from this machine, hop by hop, as Envoy reaches
 * it. Certificates and clusters come from the stack's outputs (secrets decrypted in memory, never printed), or
 * from `--tls-dir` and `--cluster`. Exit code 0 when every cluster answers, 1 when one fails, 2 on bad usage.
 */

const USAGE = `usage: npm run status -- -s <stack> [--json] [--concurrency N] [--timeout-ms N]
       npm run status -- --tls-dir <dir with ca.crt, client.crt, client.key> --cluster <name>=<host>[@<address>] ... [--json]`;

function stackOutputs(stack: string): Record<string, unknown> {
    const root = path.join(__dirname, "..");
    // Through the project's wrapper, so the same engine, backend and dev passphrase as `npm run up` apply.
    const result = spawnSync("bash", [path.join(root, "tools", "pulumi.sh"), "stack", "output", "--json", "--show-secrets", "-s", stack], {
        cwd: root,
        encoding: "utf8",
        stdio: ["ignore", "pipe", "pipe"],
        maxBuffer: 64 * 1024 * 1024,
    });
    if (result.status !== 0) {
        // The engine's own error lines, without the wrapper's notices.
        const errors = result.stderr.split("\n").filter((line) => line.startsWith("error:"));
        throw new UsageError(`pulumi stack output -s ${stack} failed:\n${(errors.length > 0 ? errors.join("\n") : result.stderr).trim()}`);
    }
    return JSON.parse(result.stdout) as Record<string, unknown>;
}

async function main(): Promise<number> {
    const { values } = parseArgs({
        options: {
            stack: { type: "string", short: "s" },
            "tls-dir": { type: "string" },
            cluster: { type: "string", multiple: true },
            json: { type: "boolean", default: false },
            concurrency: { type: "string", default: "8" },
            "timeout-ms": { type: "string", default: "5000" },
            help: { type: "boolean", short: "h", default: false },
        },
    });
    if (values.help) {
        console.log(USAGE);
        return 0;
    }
    const concurrency = Number(values.concurrency);
    const timeoutMs = Number(values["timeout-ms"]);
    if (!Number.isInteger(concurrency) || concurrency < 1 || !Number.isInteger(timeoutMs) || timeoutMs < 1) {
        throw new UsageError("--concurrency and --timeout-ms take a positive whole number");
    }
    let targets: StatusTarget[];
    let credentials: Credentials;
    if (values.stack !== undefined) {
        if (values["tls-dir"] !== undefined || values.cluster !== undefined)
            throw new UsageError("-s reads clusters and certificates from the stack; drop --tls-dir and --cluster");
        ({ targets, credentials } = fromStackOutputs(stackOutputs(values.stack)));
    } else if (values["tls-dir"] !== undefined && values.cluster !== undefined) {
        credentials = credentialsFromDirectory(values["tls-dir"]);
        targets = values.cluster.map(parseClusterArgument);
    } else {
        throw new UsageError("give -s <stack>, or --tls-dir and at least one --cluster");
    }

    const now = new Date();
    const clusters = await mapBounded(
        targets,
        concurrency,
        (target) => probeCluster(target, credentials, { timeoutMs, now }),
        // Progress on stderr, so that stdout stays the table or the JSON.
        (status, done) => process.stderr.write(`[${done}/${targets.length}] ${status.name}: ${status.ok ? "ok" : status.failure}\n`),
    );
    const report: StatusReport = {
        ok: clusters.every((c) => c.ok),
        checkedAt: now.toISOString(),
        clientCertificate: certificateExpiry(credentials.certificate, now),
        ca: certificateExpiry(credentials.ca, now),
        clusters,
    };
    console.log(values.json ? JSON.stringify(report, null, 2) : formatTable(report));
    return report.ok ? 0 : 1;
}

main().then(
    (code) => (process.exitCode = code),
    (err: unknown) => {
        if (err instanceof UsageError || (err as { code?: string }).code?.startsWith("ERR_PARSE_ARGS")) {
            console.error(`status: ${(err as Error).message}\n${USAGE}`);
            process.exitCode = 2;
        } else {
            console.error(err);
            process.exitCode = 2;
        }
    },
);
