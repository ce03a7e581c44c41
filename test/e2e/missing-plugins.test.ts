import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, describe, it } from "node:test";
import { tempDir } from "./support/processes";
import { pulumiBinary, requirePulumi } from "./support/pulumi";

/**
 * A machine whose engine has neither the tls and random plugins nor internet (an offline toolchain without them, as
 * before this project vendored their source): `npm run preview` of a generate-mode stack stops before the engine with
 * one paragraph that gives the install lines and the switch to certificates from files.
 */

const ROOT = path.resolve(__dirname, "../..");
const skip = requirePulumi();

describe("a generate-mode stack on an engine without the tls and random plugins", { skip }, () => {
    const cache = skip ? undefined! : tempDir("cache-without-plugins");
    after(() => cache && fs.rmSync(cache, { recursive: true, force: true }));

    it("stops before the engine with one paragraph: the install lines and the files alternative", () => {
        const toolchain = path.dirname(pulumiBinary()!);
        // A cache whose offline toolchain has the engine, the language host and the Kubernetes provider only.
        const bin = path.join(cache, "pulumi", "without-plugins", "bin");
        fs.mkdirSync(bin, { recursive: true });
        for (const tool of ["pulumi", "pulumi-language-nodejs", "pulumi-resource-kubernetes"]) {
            fs.symlinkSync(path.join(toolchain, tool), path.join(bin, tool));
        }
        fs.writeFileSync(path.join(cache, "pulumi", "current"), `${bin}\n`);
        const realCache = process.env.ENVOY_THANOS_CACHE ?? path.join(os.homedir(), ".cache/envoy-thanos");
        fs.symlinkSync(path.join(realCache, "node"), path.join(cache, "node"));
        const env = {
            ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("PULUMI_"))),
            PATH: (process.env.PATH ?? "")
                .split(path.delimiter)
                .filter((dir) => !fs.existsSync(path.join(dir, "pulumi-resource-tls")) && !fs.existsSync(path.join(dir, "pulumi")))
                .join(path.delimiter),
            ENVOY_THANOS_CACHE: cache,
            PULUMI_HOME: path.join(cache, "pulumi-home"),
            PULUMI_BACKEND_URL: `file://${tempDir("pulumi-state")}`,
        };
        const run = spawnSync("bash", [path.join(ROOT, "tools/pulumi.sh"), "preview", "-s", "dev"], { env, encoding: "utf8", timeout: 120_000 });
        const sdk = (name: string) => JSON.parse(fs.readFileSync(path.join(ROOT, "node_modules/@pulumi", name, "package.json"), "utf8")).version;
        assert.equal(run.status, 1, run.stdout + run.stderr);
        assert.match(run.stderr, /stack dev issues its certificates with the @pulumi\/tls and @pulumi\/random providers \(tls\.mode: generate\),/);
        assert.match(run.stderr, /but this engine has no tls\/random plugin and may not download one \(it is the offline toolchain/);
        assert.ok(
            run.stderr.includes(`    pulumi plugin install resource tls ${sdk("tls")}\n    pulumi plugin install resource random ${sdk("random")}\n`),
            run.stderr,
        );
        assert.match(run.stderr, /pulumi config set -s dev --path envoy-thanos:tls\.mode files/);
        // Stopped before the engine: no preview ran, so nothing of the engine's own appears.
        assert.doesNotMatch(run.stdout + run.stderr, /Previewing update|error: /);
    });
});
