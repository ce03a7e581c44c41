import * as fs from "node:fs";
import * as path from "node:path";
import { rawConfigFromStackFiles } from "../components/config/sources";

/**
 * `node --import tsx tools/render-refresh.ts <stack> <pulumi arguments...>`: exits 1 with one line when the arguments
 * ask the engine to refresh a render-mode stack, whose objects live in files and in no cluster: the engine would read
 * each one back from a cluster that is not there and fail once per object. Exits 0 otherwise, and when the stack file
 * cannot tell (no such file yet, or no renderDirectory in it, which an ESC environment may still set): the engine decides.
 */

/** cobra's spellings of true, which `--refresh=<value>` takes. */
const TRUE = new Set(["1", "t", "T", "true", "TRUE", "True"]);

/** Whether `pulumi <args>` refreshes: the `refresh` command, or `up`/`preview`/`destroy` with `-r`, `--refresh` or `--refresh=true`. */
export function refreshes(args: readonly string[]): boolean {
    const [command, ...flags] = args;
    if (command === "refresh") return true;
    if (!["up", "update", "preview", "destroy"].includes(command ?? "")) return false;
    return flags.some((flag) => flag === "-r" || flag === "--refresh" || (flag.startsWith("--refresh=") && TRUE.has(flag.slice("--refresh=".length))));
}

/** The line that stops a refresh of a render-mode stack, or undefined when there is nothing to stop. */
export function renderRefreshRefusal(stack: string, renderDirectory: unknown, args: readonly string[]): string | undefined {
    if (typeof renderDirectory !== "string" || !refreshes(args)) return undefined;
    const instead = args[0] === "refresh" ? `run npm run up -- -s ${stack} instead, which rewrites them` : "run it without --refresh (every up rewrites them)";
    return (
        `envoy-thanos: stack ${stack} renders its manifests to ${renderDirectory}/ (renderDirectory) and reaches no cluster, ` +
        `so a refresh has nothing to read back and would fail once per object; ${instead}`
    );
}

function main([stack, ...args]: string[]): void {
    const projectDir = path.resolve(__dirname, "..");
    const stackFile = path.join(projectDir, `Pulumi.${stack}.yaml`);
    if (stack === undefined || !fs.existsSync(stackFile)) return;
    const { raw } = rawConfigFromStackFiles(projectDir, stack);
    const refusal = renderRefreshRefusal(stack, raw.renderDirectory, args);
    if (refusal !== undefined) {
        process.stderr.write(`${refusal}\n`);
        process.exitCode = 1;
    }
}

if (require.main === module) {
    main(process.argv.slice(2));
}
