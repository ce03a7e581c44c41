import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, describe, it } from "node:test";

/**
 * tools/go-build.sh, the part every tools/<tool>/build.sh shares: the cache layout, --print-path, the lock that lets
 * one of several concurrent builders build, the install in one rename, and the replace/exclude directives a wrapper
 * module must repeat. The builds run a stand-in tool whose "build" writes a script, with a stand-in `go`.
 */

const ROOT = path.resolve(__dirname, "../..");
const HELPER = path.join(ROOT, "tools/go-build.sh");
const work = fs.mkdtempSync(path.join(os.tmpdir(), "go-build-"));
after(() => fs.rmSync(work, { recursive: true, force: true }));

// A stand-in `go` for `command -v go` and `go version`; the stand-in build does not run it otherwise.
const fakeBin = path.join(work, "bin");
fs.mkdirSync(fakeBin);
fs.writeFileSync(path.join(fakeBin, "go"), "#!/bin/sh\necho go version stand-in\n", { mode: 0o755 });

// tools/fake/build.sh as a build script would be written; FAKE_FAIL makes its build fail after it has begun.
const script = path.join(work, "fake", "build.sh");
fs.mkdirSync(path.dirname(script));
fs.writeFileSync(
    script,
    `set -euo pipefail
. ${JSON.stringify(HELPER)}
go_build_begin fake v1.2.3 "$@"
sleep 1
[ -z "\${FAKE_FAIL:-}" ] || go_build_fail "the build failed"
printf '#!/bin/sh\\necho fake from %s\\n' "$PWD" > "$scratch/fake"
go_build_install "fake v1.2.3"
`,
);

function env(cache: string, extra: Record<string, string> = {}) {
    return { ...process.env, PATH: `${fakeBin}:${process.env.PATH}`, ENVOY_THANOS_CACHE: cache, ...extra };
}

function build(cache: string, args: string[] = [], extra: Record<string, string> = {}) {
    return spawnSync("bash", [script, ...args], { encoding: "utf8", env: env(cache, extra) });
}

function buildAsync(cache: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
        const child = spawn("bash", [script], { env: env(cache) });
        let stdout = "";
        let stderr = "";
        child.stdout.on("data", (d) => (stdout += d));
        child.stderr.on("data", (d) => (stderr += d));
        child.on("close", (code) => resolve({ code, stdout, stderr }));
    });
}

const lastLine = (s: string) => s.trimEnd().split("\n").pop();
const newCache = (name: string) => fs.mkdtempSync(path.join(work, `${name}-`));

describe("tools/go-build.sh", () => {
    it("builds once into <cache>/<tool>/<key>/<tool>, from the script's directory, and then only prints the path", () => {
        const cache = newCache("once");
        const out = path.join(cache, "fake/v1.2.3/fake");
        const first = build(cache);
        assert.equal(first.status, 0, first.stderr);
        assert.equal(lastLine(first.stdout), out);
        assert.match(first.stderr, /^fake\/build\.sh: building fake v1\.2\.3 into .* \(go version stand-in\)$/m);
        assert.match(first.stderr, /^fake\/build\.sh: fake v1\.2\.3; built in \d+s$/m);
        assert.equal(spawnSync(out, { encoding: "utf8" }).stdout, `fake from ${path.dirname(script)}\n`);
        assert.deepEqual(fs.readdirSync(path.dirname(out)).sort(), [".lock", "fake"], "no build directory is left behind");

        const again = build(cache);
        assert.equal(again.status, 0);
        assert.equal(again.stdout, `${out}\n`);
        assert.equal(again.stderr, "");
    });

    it("--print-path prints the path and builds nothing; any other argument is refused", () => {
        const cache = newCache("print");
        const print = build(cache, ["--print-path"]);
        assert.equal(print.status, 0);
        assert.equal(print.stdout, `${path.join(cache, "fake/v1.2.3/fake")}\n`);
        assert.deepEqual(fs.readdirSync(cache), []);

        const wrong = build(cache, ["--print-dir"]);
        assert.equal(wrong.status, 2);
        assert.equal(wrong.stderr, "usage: fake/build.sh [--print-path]\n");
        assert.deepEqual(fs.readdirSync(cache), []);
    });

    it("of two concurrent builders, one builds and the other waits and reuses its result", async () => {
        const cache = newCache("concurrent");
        const runs = await Promise.all([buildAsync(cache), buildAsync(cache)]);
        for (const run of runs) {
            assert.equal(run.code, 0, run.stderr);
            assert.equal(lastLine(run.stdout), path.join(cache, "fake/v1.2.3/fake"));
        }
        assert.equal(runs.filter((run) => /built in/.test(run.stderr)).length, 1, runs.map((run) => run.stderr).join("---\n"));
    });

    it("a failed build leaves neither a result nor its build directory", () => {
        const cache = newCache("failed");
        const failed = build(cache, [], { FAKE_FAIL: "1" });
        assert.equal(failed.status, 1);
        assert.match(failed.stderr, /^fake\/build\.sh: the build failed$/m);
        assert.deepEqual(fs.readdirSync(path.join(cache, "fake/v1.2.3")), [".lock"]);
    });

    it("removes what a killed build left behind before it builds", () => {
        const cache = newCache("killed");
        const stale = path.join(cache, "fake/v1.2.3/.build.killed");
        fs.mkdirSync(stale, { recursive: true });
        fs.writeFileSync(path.join(stale, "half-written"), "");
        const run = build(cache);
        assert.equal(run.status, 0, run.stderr);
        assert.deepEqual(fs.readdirSync(path.dirname(stale)).sort(), [".lock", "fake"]);
    });

    it("reads the directives a wrapper module must repeat: non-local replaces and excludes, not its own", () => {
        const gomod = path.join(work, "directives.mod");
        fs.writeFileSync(
            gomod,
            `module example.com/wrapper

go 1.22

require example.com/tool v1.0.0

replace example.com/b => example.com/c v1.0.0 // a comment

replace (
\t// a comment line
\texample.com/d v1.2.0 => example.com/e v1.3.0
\texample.com/local => ./local
\texample.com/fork => example.com/fork v0.4.0
)

exclude (
\texample.com/f v0.1.0
)
`,
        );
        const run = spawnSync("bash", ["-c", `. "$1"; go_build_directives "$2" example.com/fork`, "-", HELPER, gomod], { encoding: "utf8" });
        assert.equal(run.status, 0, run.stderr);
        assert.equal(
            run.stdout,
            ["exclude example.com/f v0.1.0", "replace example.com/b => example.com/c v1.0.0", "replace example.com/d v1.2.0 => example.com/e v1.3.0", ""].join(
                "\n",
            ),
        );
    });

    it("is what every tools/<tool>/build.sh uses for the version, the cache, the lock and the directive check", () => {
        const scripts = fs
            .readdirSync(path.join(ROOT, "tools"))
            .map((dir) => path.join(ROOT, "tools", dir, "build.sh"))
            .filter((file) => fs.existsSync(file));
        assert.ok(scripts.length >= 8, scripts.join(", "));
        for (const file of scripts) {
            const text = fs.readFileSync(file, "utf8");
            const name = path.relative(ROOT, file);
            assert.match(text, /^\. "\$here\/\.\.\/go-build\.sh"$/m, `${name} sources tools/go-build.sh`);
            for (const own of [/\bflock\b/, /awk -v m=/, /"GoMod"/]) {
                assert.doesNotMatch(text, own, `${name} leaves ${own} to tools/go-build.sh`);
            }
        }
    });
});
