import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import * as YAML from "yaml";
import { tempDir } from "./support/processes";
import { pulumiBinary, PulumiProject, requirePulumi } from "./support/pulumi";

/**
 * The first-run experience, with the real engine: the dev stack exactly as committed (generate mode, the default)
 * issues its certificates with the real tls and random plugins, renders, re-previews with no change and destroys
 * cleanly; and the README's own commands, run as the README writes them in a fresh copy of the repository, render
 * the dev stack and print the next steps. No plugin beyond the offline toolchain is used.
 */

const ROOT = path.resolve(__dirname, "../..");
const skip = requirePulumi();
const DEV_PASSPHRASE = "envoy-thanos-dev";

type Manifest = { kind: string; metadata: { name: string }; data?: Record<string, string>; stringData?: Record<string, string> };

/** Rendered manifests per sub-directory of `dir` (observer, then one per observed cluster). */
function renderedManifests(dir: string): Record<string, Manifest[]> {
    const out: Record<string, Manifest[]> = {};
    for (const sub of fs.existsSync(dir) ? fs.readdirSync(dir) : []) {
        const manifests: Manifest[] = [];
        const walk = (d: string) => {
            for (const e of fs.readdirSync(d, { withFileTypes: true })) {
                if (e.isDirectory()) walk(path.join(d, e.name));
                else if (e.name.endsWith(".yaml")) {
                    manifests.push(...YAML.parseAllDocuments(fs.readFileSync(path.join(d, e.name), "utf8")).map((doc) => doc.toJS() as Manifest));
                }
            }
        };
        walk(path.join(dir, sub));
        out[sub] = manifests;
    }
    return out;
}

function secretValue(manifest: Manifest, key: string): string {
    return manifest.stringData?.[key] ?? Buffer.from(manifest.data![key], "base64").toString();
}

function renderedSecret(dir: string, sub: string, name: string): Manifest {
    const secret = renderedManifests(dir)[sub]?.find((m) => m.kind === "Secret" && m.metadata.name === name);
    assert.ok(secret, `rendered/${sub} has Secret ${name}`);
    return secret;
}

function renderedKinds(dir: string): Record<string, string[]> {
    return Object.fromEntries(Object.entries(renderedManifests(dir)).map(([sub, ms]) => [sub, ms.map((m) => `${m.kind}/${m.metadata.name}`).sort()]));
}

describe("the dev stack exactly as committed, under the real engine", { skip }, () => {
    const project = skip ? undefined! : new PulumiProject({ PULUMI_CONFIG_PASSPHRASE: DEV_PASSPHRASE });
    let engineOutput = "";

    before(() => {
        fs.copyFileSync(path.join(ROOT, "Pulumi.dev.yaml"), path.join(project.dir, "Pulumi.dev.yaml"));
    });

    after(async () => {
        await project?.run(["destroy", "-s", "dev", "--yes", "--skip-preview"]);
    });

    it("renders the observer and both observed clusters with `pulumi up`", async () => {
        await project.ok(["stack", "select", "--create", "dev"]);
        const up = await project.ok(["up", "-s", "dev", "--yes", "--skip-preview", "--diff"]);
        engineOutput = up.stdout + up.stderr;
        const kinds = renderedKinds(path.join(project.dir, "rendered"));
        assert.deepEqual(Object.keys(kinds).sort(), ["cl1", "cl2", "observer"]);
        for (const c of ["cl1", "cl2"]) {
            assert.ok(kinds[c].includes(`Secret/envoy-thanos-${c}-server-tls`), kinds[c].join(", "));
        }
        // The dev stack shows both front doors: cl1 still on ingress-nginx, cl2 on the Gateway API.
        assert.ok(kinds.cl1.includes("Ingress/envoy-thanos-cl1"), kinds.cl1.join(", "));
        for (const kind of ["Gateway", "GRPCRoute", "BackendTrafficPolicy", "ClientTrafficPolicy"]) {
            assert.ok(kinds.cl2.includes(`${kind}/envoy-thanos-cl2`), kinds.cl2.join(", "));
        }
        assert.ok(!kinds.cl2.some((k) => k.startsWith("Ingress/")), kinds.cl2.join(", "));
        assert.ok(kinds.observer.includes("Deployment/envoy-thanos"), kinds.observer.join(", "));
        // The rendered server certificates were issued by the stack's own CA, for their hosts, by the real provider.
        const ca = new crypto.X509Certificate((await project.ok(["stack", "output", "-s", "dev", "caCertificate"])).stdout.trim());
        for (const [c, host] of [
            ["cl1", "cl1m.example.com"],
            ["cl2", "cl2m.example.com"],
        ]) {
            const served = new crypto.X509Certificate(
                secretValue(renderedSecret(path.join(project.dir, "rendered"), c, `envoy-thanos-${c}-server-tls`), "tls.crt"),
            );
            assert.ok(served.checkIssued(ca) && served.verify(ca.publicKey), `${c}'s server certificate is signed by the stack's CA`);
            assert.equal(served.checkHost(host), host);
        }
    });

    it("never shows an issued private key: not in the state, the outputs or the engine's log", async () => {
        const rendered = path.join(project.dir, "rendered");
        const keys = [renderedSecret(rendered, "cl1", "envoy-thanos-cl1-server-tls"), renderedSecret(rendered, "cl2", "envoy-thanos-cl2-server-tls")]
            .map((secret) => secretValue(secret, "tls.key"))
            .concat(
                renderedManifests(rendered)
                    .observer.filter((m) => m.kind === "Secret")
                    .flatMap((m) =>
                        Object.keys(m.stringData ?? m.data ?? {})
                            .filter((k) => k.endsWith(".key"))
                            .map((k) => secretValue(m, k)),
                    ),
            );
        assert.equal(keys.length, 3, "two server keys and Envoy's client key were rendered");
        const keyLines = keys.map((pem) => pem.split("\n")[1]);
        const state = await project.exportState("dev");
        const outputs = (await project.ok(["stack", "output", "-s", "dev", "--json"])).stdout;
        for (const [where, text] of Object.entries({ state, outputs, "the engine's output of `up --diff`": engineOutput })) {
            for (const line of keyLines) assert.ok(!text.includes(line), `a line of a private key is in ${where} in plaintext`);
        }
        assert.match(state, /"4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270"/, "the state holds secret values");
    });

    it("previews no change on a second run", async () => {
        await project.ok(["preview", "-s", "dev", "--expect-no-changes"]);
    });

    it("destroys cleanly, rendered files included, keeping only the namespace it retains on purpose", async () => {
        await project.ok(["destroy", "-s", "dev", "--yes", "--skip-preview"]);
        const left = renderedKinds(path.join(project.dir, "rendered"));
        assert.deepEqual(Object.values(left).flat(), ["Namespace/envoy"], JSON.stringify(left));
    });
});

/** The commands of the README's "Set up, test, run" block, exactly as written (comments stripped). */
function readmeCommands(): string[] {
    const readme = fs.readFileSync(path.join(ROOT, "README.md"), "utf8");
    const section = readme.split(/^## /m).find((s) => s.startsWith("Set up, test, run"));
    assert.ok(section, "README has a 'Set up, test, run' section");
    const block = /```bash\n([\s\S]*?)```/.exec(section)?.[1];
    assert.ok(block, "that section starts with a bash block");
    return block
        .split("\n")
        .map((line) => line.replace(/\s+#.*$/, "").trim())
        .filter((line) => line !== "");
}

function runShell(command: string, cwd: string, env: NodeJS.ProcessEnv, timeoutMs: number): Promise<{ code: number; output: string }> {
    return new Promise((resolve) => {
        const child = spawn("bash", ["-c", command], { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
        let output = "";
        child.stdout.setEncoding("utf8").on("data", (d) => (output += d));
        child.stderr.setEncoding("utf8").on("data", (d) => (output += d));
        const timer = setTimeout(() => child.kill("SIGTERM"), timeoutMs);
        child.on("close", (code) => {
            clearTimeout(timer);
            resolve({ code: code ?? -1, output });
        });
    });
}

describe("the README's commands, as a newcomer types them, in a fresh copy", { skip }, () => {
    const copy = skip ? undefined! : tempDir("fresh-copy");
    const pulumiHome = skip ? undefined! : tempDir("pulumi-home");
    // Nothing Pulumi-specific from the developer's shell: no passphrase, no backend, no plugin settings.
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("PULUMI_")));
    env.PULUMI_HOME = pulumiHome;
    let commands: string[];

    before(() => {
        commands = readmeCommands();
        // Every file a commit would hold (tracked, or new and not ignored), as a clone would have it.
        const tracked = execFileSync("git", ["ls-files", "-z", "--cached", "--others", "--exclude-standard"], { cwd: ROOT, encoding: "utf8" })
            .split("\0")
            .filter(Boolean);
        for (const file of tracked) {
            if (!fs.existsSync(path.join(ROOT, file))) continue;
            fs.mkdirSync(path.dirname(path.join(copy, file)), { recursive: true });
            fs.cpSync(path.join(ROOT, file), path.join(copy, file));
        }
        // The virtualenv (Envoy, checkov) is shared: setup only adds to it. node_modules are not: setup's `npm ci`
        // would empty a linked one, so the copy installs its own, as a fresh clone does.
        fs.symlinkSync(path.join(ROOT, ".venv"), path.join(copy, ".venv"));
    });

    after(async () => {
        await runShell("npm run destroy -- -s dev --yes --skip-preview", copy, env, 120_000);
        fs.rmSync(copy, { recursive: true, force: true });
        fs.rmSync(pulumiHome, { recursive: true, force: true });
    });

    it("sets up, then renders the dev stack with the main command and says what to do next", async () => {
        const setup = commands.find((c) => c.includes("tools/setup.sh"));
        const main = commands.find((c) => c.startsWith("npm run up"));
        assert.ok(setup && main, `README block: ${commands.join(" | ")}`);
        const committedDevStack = fs.readFileSync(path.join(copy, "Pulumi.dev.yaml"), "utf8");

        const setupRun = await runShell(setup, copy, env, 600_000);
        assert.equal(setupRun.code, 0, setupRun.output.slice(-3000));

        const up = await runShell(main, copy, env, 600_000);
        assert.equal(up.code, 0, up.output.slice(-4000));
        assert.deepEqual(Object.keys(renderedKinds(path.join(copy, "rendered"))).sort(), ["cl1", "cl2", "observer"]);
        assert.match(up.output, /Manifests rendered under rendered\//);
        assert.match(
            up.output,
            /Querier flags[^\n]*\n {2}--endpoint=dnssrv\+_envoy-cl1\._tcp\.envoy-cl1\.envoy\.svc\.cluster\.local\n {2}--endpoint=dnssrv\+_envoy-cl2\./,
        );
        assert.match(up.output, /Next steps:\n/);
        assert.doesNotMatch(up.output, /^error:/m);
        // The offline toolchain's provider version is said once, by the wrapper, instead of once per provider object.
        assert.doesNotMatch(up.output, /expected to have version/);
        const offline = pulumiBinary()!.startsWith(path.join(process.env.ENVOY_THANOS_CACHE ?? path.join(os.homedir(), ".cache/envoy-thanos"), "pulumi"));
        const skewNotes = up.output.match(/offline toolchain: its Kubernetes provider is v[\d.]+, older than the @pulumi\/kubernetes [\d.]+ SDK/g) ?? [];
        assert.equal(skewNotes.length, offline ? 1 : 0);
        // So is the skew of the tls and random providers, which the dev stack (generate mode) runs.
        const pluginNotes =
            up.output.match(/offline toolchain: its tls and random providers are v\S+ and v\S+, built from the upstream source vendored in third_party\//g) ??
            [];
        assert.equal(pluginNotes.length, offline ? 1 : 0);
        assert.doesNotMatch(up.output, /using pulumi-resource-(tls|random) from \$PATH/);
        assert.equal(fs.readFileSync(path.join(copy, "Pulumi.dev.yaml"), "utf8"), committedDevStack, "the run leaves the committed stack file as it was");
    });
});
