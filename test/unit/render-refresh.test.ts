import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, it } from "node:test";
import { refreshes, renderRefreshRefusal } from "../../tools/render-refresh";

/** `npm run up|preview -- --refresh` on a render-mode stack: one line from the wrapper, and the engine never starts. */

const ROOT = path.resolve(__dirname, "../..");

describe("refresh of a render-mode stack", () => {
    it("recognises every way of asking for a refresh, and nothing else", () => {
        for (const args of [
            ["refresh"],
            ["up", "--refresh"],
            ["up", "-s", "dev", "-r"],
            ["preview", "--refresh=true"],
            ["update", "--refresh=1"],
            ["destroy", "-r"],
        ]) {
            assert.equal(refreshes(args), true, args.join(" "));
        }
        for (const args of [["up"], ["up", "--refresh=false"], ["preview", "-s", "r"], ["stack", "output", "-r"], []]) {
            assert.equal(refreshes(args), false, args.join(" "));
        }
    });

    it("refuses it only where the stack renders, naming renderDirectory and what to run instead", () => {
        assert.match(
            renderRefreshRefusal("dev", "rendered", ["up", "--refresh"]) ?? "",
            /^envoy-thanos: stack dev renders its manifests to rendered\/ \(renderDirectory\) and reaches no cluster, .*; run it without --refresh/,
        );
        assert.match(renderRefreshRefusal("dev", "rendered", ["refresh"]) ?? "", /; run npm run up -- -s dev instead, which rewrites them$/);
        assert.equal(renderRefreshRefusal("staging", undefined, ["up", "--refresh"]), undefined);
        assert.equal(renderRefreshRefusal("dev", "rendered", ["up"]), undefined);
    });

    describe("through tools/pulumi.sh, with a stand-in pulumi that records its calls", () => {
        const bin = fs.mkdtempSync(path.join(os.tmpdir(), "envoy-thanos-fake-pulumi-"));
        const calls = path.join(bin, "calls");
        fs.writeFileSync(path.join(bin, "pulumi"), `#!/usr/bin/env bash\necho "$*" >> ${JSON.stringify(calls)}\n`, { mode: 0o755 });
        const wrapper = (...args: string[]) => {
            fs.rmSync(calls, { force: true });
            const env: NodeJS.ProcessEnv = { ...process.env, PATH: `${bin}:${process.env.PATH}` };
            delete env.PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION;
            const run = spawnSync("bash", [path.join(ROOT, "tools/pulumi.sh"), ...args], { env, encoding: "utf8" });
            return { status: run.status, stderr: run.stderr, calls: fs.existsSync(calls) ? fs.readFileSync(calls, "utf8").trim().split("\n") : [] };
        };

        for (const args of [
            ["up", "-s", "dev", "--refresh"],
            ["preview", "-s", "dev", "-r"],
            ["up", "--stack=dev", "--refresh=true", "--yes"],
            ["refresh", "-s", "dev"],
        ]) {
            it(`stops \`${args.join(" ")}\` on the dev stack with one line, before the engine`, () => {
                const run = wrapper(...args);
                assert.equal(run.status, 1);
                assert.deepEqual(run.stderr.trim().split("\n").length, 1, run.stderr);
                assert.match(run.stderr, /stack dev renders its manifests to rendered\/ \(renderDirectory\) and reaches no cluster/);
                assert.deepEqual(run.calls, []);
            });
        }

        it("runs a preview of the dev stack without refresh, and a refresh of a stack that reaches clusters", () => {
            const plain = wrapper("preview", "-s", "dev", "--refresh=false");
            assert.equal(plain.status, 0, plain.stderr);
            assert.deepEqual(plain.calls, ["stack select --create dev", "preview -s dev --refresh=false"]);
            const staging = wrapper("preview", "-s", "staging", "--refresh");
            assert.equal(staging.status, 0, staging.stderr);
            assert.deepEqual(staging.calls, ["stack select --create staging", "preview -s staging --refresh"]);
        });
    });
});
