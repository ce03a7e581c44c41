import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import * as YAML from "yaml";
import { tempDir } from "./processes";

/**
 * The real Pulumi engine on this project: a temporary project directory whose sources are the
 * repository's own (symlinked), a local file backend, and stack files written by the test.
 */

const ROOT = path.resolve(__dirname, "../../..");

export interface RunResult {
    code: number;
    stdout: string;
    stderr: string;
}

export interface PreviewStep {
    op: string;
    urn: string;
    type: string;
    name: string;
}

export class PulumiProject {
    readonly dir = tempDir("pulumi-project");
    readonly stateDir = tempDir("pulumi-state");

    /** `extraEnv`: e.g. KUBECONFIG for stacks that reach real API servers. */
    constructor(private readonly extraEnv: NodeJS.ProcessEnv = {}) {
        for (const entry of ["index.ts", "components", "package.json", "tsconfig.json", "node_modules"]) {
            fs.symlinkSync(path.join(ROOT, entry), path.join(this.dir, entry));
        }
        fs.copyFileSync(path.join(ROOT, "Pulumi.yaml"), path.join(this.dir, "Pulumi.yaml"));
    }

    /** The environment the engine runs with here (backend, passphrase): also for tools that call it, such as `npm run status -s`. */
    env(): NodeJS.ProcessEnv {
        return {
            ...process.env,
            PULUMI_BACKEND_URL: `file://${this.stateDir}`,
            PULUMI_CONFIG_PASSPHRASE: "envoy-thanos-tests",
            PULUMI_SKIP_UPDATE_CHECK: "true",
            PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
            PULUMI_HOME: path.join(this.stateDir, ".pulumi-home"),
            ...this.extraEnv,
        };
    }

    /** Writes `Pulumi.<stack>.yaml` with the given `envoy-thanos:*` values. */
    writeStack(stack: string, config: Record<string, unknown>): void {
        const doc = { config: Object.fromEntries(Object.entries(config).map(([k, v]) => [`envoy-thanos:${k}`, v])) };
        fs.writeFileSync(path.join(this.dir, `Pulumi.${stack}.yaml`), YAML.stringify(doc));
    }

    /** Everything the engine printed in this project, run by run (but `decryptedState`'s), for checks that no secret reaches the log. */
    readonly transcript: string[] = [];

    /** Asynchronous, so that a test's own loops (e.g. a stand-in controller) keep running meanwhile. */
    async run(args: string[], timeoutMs = 300_000): Promise<RunResult> {
        const result = await this.exec(args, timeoutMs);
        this.transcript.push(`$ pulumi ${args.join(" ")}\n${result.stdout}\n${result.stderr}`);
        return result;
    }

    private exec(args: string[], timeoutMs: number): Promise<RunResult> {
        return new Promise((resolve) => {
            const child = spawn(pulumiBinary()!, [...args, "--non-interactive", "--cwd", this.dir], { env: this.env(), stdio: ["ignore", "pipe", "pipe"] });
            let stdout = "";
            let stderr = "";
            child.stdout.setEncoding("utf8").on("data", (d) => (stdout += d));
            child.stderr.setEncoding("utf8").on("data", (d) => (stderr += d));
            const timer = setTimeout(() => child.kill("SIGTERM"), timeoutMs);
            child.on("close", (code) => {
                clearTimeout(timer);
                resolve({ code: code ?? -1, stdout, stderr });
            });
        });
    }

    /** Runs and fails with the engine's own output when the command fails (or is stopped after `timeoutMs`). */
    async ok(args: string[], timeoutMs?: number): Promise<RunResult> {
        return okOf(args, await this.run(args, timeoutMs));
    }

    /** The steps `pulumi preview --json` plans, resources only (not the stack itself). */
    async previewSteps(stack: string): Promise<PreviewStep[]> {
        const result = await this.ok(["preview", "-s", stack, "--json"]);
        const plan = JSON.parse(result.stdout) as { steps?: { op: string; urn: string }[] };
        return (plan.steps ?? [])
            .map((s) => {
                const parts = s.urn.split("::");
                const type = parts[2].split("$").pop()!;
                return { op: s.op, urn: s.urn, type, name: parts[3] };
            })
            .filter((s) => s.type !== "pulumi:pulumi:Stack");
    }

    async exportState(stack: string): Promise<string> {
        return (await this.ok(["stack", "export", "-s", stack])).stdout;
    }

    /** The state with every secret in plaintext (`stack export --show-secrets`), to know what to look for; kept out of `transcript`. */
    async decryptedState(stack: string): Promise<string> {
        const args = ["stack", "export", "-s", stack, "--show-secrets"];
        return okOf(args, await this.exec(args, 60_000)).stdout;
    }

    /** Replaces the stack's state with `state` (text as `exportState` returns it). */
    async importState(stack: string, state: string): Promise<void> {
        const file = path.join(tempDir("pulumi-state-import"), "state.json");
        fs.writeFileSync(file, state);
        await this.ok(["stack", "import", "-s", stack, "--file", file]);
    }
}

function okOf(args: string[], result: RunResult): RunResult {
    if (result.code !== 0) {
        throw new Error(`pulumi ${args.join(" ")} exited ${result.code}:\n${result.stdout.slice(-4000)}\n${result.stderr.slice(-4000)}`);
    }
    return result;
}

/**
 * The first `pulumi` on PATH that is a real CLI. `npm test` puts node_modules/.bin first, where the npm
 * `pulumi` package only downloads the CLI at run time.
 */
export function pulumiBinary(): string | undefined {
    for (const dir of (process.env.PATH ?? "").split(path.delimiter)) {
        const candidate = path.join(dir, "pulumi");
        if (!dir.endsWith(path.join("node_modules", ".bin")) && fs.existsSync(candidate)) return candidate;
    }
    return undefined;
}

export function requirePulumi(): string | false {
    if (pulumiBinary() !== undefined) return false;
    const message = "pulumi not found; run bash tools/setup.sh (builds the engine from Go modules) or install the Pulumi CLI";
    if (process.env.CI === "true") throw new Error(`${message} (CI never skips end-to-end tests)`);
    return message;
}
