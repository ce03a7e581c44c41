import * as fs from "node:fs";
import * as path from "node:path";
import * as YAML from "yaml";
import { defaults } from "../components/config/defaults";
import { rawConfigFromStackFiles } from "../components/config/sources";
import { providerPluginsFor } from "../components/pki/plugins";

/**
 * `node --import tsx tools/stack-plugins.ts <stack>`: prints `<name> <version>` for each resource plugin beyond
 * kubernetes that the stack needs, read from its stack file. Prints nothing when the stack file cannot tell
 * (no such file yet, or a TLS mode that comes from an ESC environment): the engine then decides.
 */
function main(stack: string): void {
    const projectDir = path.resolve(__dirname, "..");
    const stackFile = path.join(projectDir, `Pulumi.${stack}.yaml`);
    if (!fs.existsSync(stackFile)) return;
    const { raw } = rawConfigFromStackFiles(projectDir, stack);
    const tls = raw.tls as { mode?: unknown } | undefined;
    const importsEnvironment = (YAML.parse(fs.readFileSync(stackFile, "utf8")) ?? {}).environment !== undefined;
    if (tls?.mode === undefined && importsEnvironment) return;
    const mode = tls?.mode ?? defaults.tls.mode;
    if (mode !== "generate" && mode !== "provided" && mode !== "files") return;
    for (const plugin of providerPluginsFor(mode)) {
        const manifest = path.join(projectDir, "node_modules", "@pulumi", plugin, "package.json");
        const version = fs.existsSync(manifest) ? (JSON.parse(fs.readFileSync(manifest, "utf8")) as { version: string }).version : "";
        process.stdout.write(`${plugin} ${version}\n`);
    }
}

main(process.argv[2] ?? "");
