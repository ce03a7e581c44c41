import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, it } from "node:test";
import { promisify } from "node:util";

/** The end-to-end tests' freePort, asked from two processes at once, as tools/test.sh runs two test files at once. */

const PROCESSES = "../e2e/support/processes";
const PORTS_EACH = 300;

async function portsFromAProcess(tmp: string): Promise<number[]> {
    const script = `const { freePort } = require("${PROCESSES}");
        (async () => {
            const ports = [];
            for (let i = 0; i < ${PORTS_EACH}; i++) ports.push(await freePort());
            console.log(JSON.stringify(ports));
        })();`;
    const { stdout } = await promisify(execFile)(process.execPath, ["--import", "tsx", "--eval", script], {
        cwd: __dirname,
        env: { ...process.env, TMPDIR: tmp },
        timeout: 60_000,
    });
    return JSON.parse(stdout) as number[];
}

describe("freePort", () => {
    it("gives two processes of one run different ports, below the kernel's ephemeral range, and forgets them when they exit", async () => {
        const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "envoy-thanos-free-port-"));
        try {
            const [a, b] = await Promise.all([portsFromAProcess(tmp), portsFromAProcess(tmp)]);
            const ephemeralStart = Number(fs.readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/)[0]);
            for (const ports of [a, b]) {
                assert.equal(new Set(ports).size, PORTS_EACH);
                assert.ok(
                    ports.every((p) => p > 20000 && p < ephemeralStart),
                    `ports outside 20001..${ephemeralStart - 1}: ${ports.join(" ")}`,
                );
            }
            const shared = a.filter((p) => b.includes(p));
            assert.deepEqual(shared, [], "both processes were given these ports");
            assert.deepEqual(fs.readdirSync(path.join(tmp, "envoy-thanos-ports")), [], "claims left after the processes exited");
        } finally {
            fs.rmSync(tmp, { recursive: true, force: true });
        }
    });
});
