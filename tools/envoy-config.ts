import * as fs from "node:fs";
import * as path from "node:path";
import { ConfigError } from "../components/config/errors";
import { buildModel } from "../components/config/model";
import { rawConfigFromStackFiles } from "../components/config/sources";
import { FILES, renderEnvoyFiles } from "../components/observer/bootstrap";

/**
 * `npm run envoy-config -- <stack> [--out-dir DIR]`: the Envoy bootstrap a stack deploys, from its stack file,
 * with no Pulumi engine and no cluster. Prints the bootstrap; with --out-dir also writes the LDS, CDS and SDS files beside it.
 */
function main(argv: string[]): number {
    const args = [...argv];
    const outIndex = args.indexOf("--out-dir");
    const outDir = outIndex >= 0 ? args.splice(outIndex, 2)[1] : undefined;
    if (args.length !== 1 || (outIndex >= 0 && outDir === undefined)) {
        process.stderr.write("usage: npm run envoy-config -- <stack> [--out-dir DIR]\n");
        return 2;
    }
    const projectDir = path.resolve(__dirname, "..");
    try {
        const { raw } = rawConfigFromStackFiles(projectDir, args[0]);
        // Encrypted values (kubeconfigs, provided PEM) cannot be read here and do not shape the bootstrap.
        const model = buildModel(raw, { checkSecretMaterial: false, now: new Date() });
        if (model.observer.mode === "native") {
            process.stderr.write(`stack ${args[0]} is in observer.mode: native and deploys no Envoy; its querier config is the endpointSdFile output\n`);
            return 1;
        }
        const files = renderEnvoyFiles({ envoy: model.envoy, clusters: model.clusters });
        if (outDir !== undefined) {
            fs.mkdirSync(outDir, { recursive: true });
            for (const [name, text] of Object.entries(files)) {
                fs.writeFileSync(path.join(outDir, name), text);
            }
        }
        process.stdout.write(files[FILES.bootstrap]);
        return 0;
    } catch (err) {
        process.stderr.write(`${err instanceof ConfigError || err instanceof Error ? err.message : String(err)}\n`);
        return 1;
    }
}

process.exitCode = main(process.argv.slice(2));
