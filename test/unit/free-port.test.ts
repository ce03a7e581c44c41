import assert from "node:assert/strict";
import { ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, it } from "node:test";

/** The end-to-end tests' freePort, asked from two processes at once, as tools/test.sh runs two test files at once. */

const PORTS_EACH = 300;

/** A process of the run that takes PORTS_EACH ports, prints them, and holds them until its stdin closes. */
function portTaker(tmp: string): { child: ChildProcess; ports: Promise<number[]> } {
    const script = `const { freePort } = require("../e2e/support/processes");
        (async () => {
            const ports = [];
            for (let i = 0; i < ${PORTS_EACH}; i++) ports.push(await freePort());
            console.log(JSON.stringify(ports));
            process.stdin.resume();
        })();`;
    const child = spawn(process.execPath, ["--import", "tsx", "--eval", script], {
        cwd: __dirname,
        env: { ...process.env, TMPDIR: tmp },
        stdio: ["pipe", "pipe", "inherit"],
        timeout: 60_000,
    });
    const ports = new Promise<number[]>((resolve, reject) => {
        let out = "";
        child.stdout!.on("data", (chunk: Buffer) => {
            out += chunk.toString();
            if (out.endsWith("\n")) resolve(JSON.parse(out) as number[]);
        });
        child.on("exit", (code) => reject(new Error(`the port taker exited with ${code} before printing its ports`)));
    });
    return { child, ports };
}

/** Two port takers at once; both have exited when it returns. */
async function twoTakers(tmp: string): Promise<void> {
    const takers = [portTaker(tmp), portTaker(tmp)];
    try {
        // Both hold their ports while the other takes its own: a process's claims end with it.
        const [a, b] = await Promise.all(takers.map((t) => t.ports));
        const ephemeralStart = Number(fs.readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/)[0]);
        for (const ports of [a, b]) {
            assert.equal(new Set(ports).size, PORTS_EACH);
            assert.ok(
                ports.every((p) => p > 20000 && p < ephemeralStart),
                `ports outside 20001..${ephemeralStart - 1}: ${ports.join(" ")}`,
            );
        }
        assert.deepEqual(
            a.filter((p) => b.includes(p)),
            [],
            "both processes were given these ports",
        );
    } finally {
        for (const { child } of takers) {
            const exited = child.exitCode === null && child.signalCode === null ? once(child, "exit") : Promise.resolve();
            child.stdin!.end();
            await exited;
        }
    }
}

describe("freePort", () => {
    it("gives two live processes of one run different ports, below the kernel's ephemeral range, and forgets them when they exit", async () => {
        const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "envoy-thanos-free-port-"));
        try {
            await twoTakers(tmp);
            assert.deepEqual(fs.readdirSync(path.join(tmp, "envoy-thanos-ports")), [], "claims left after the processes exited");
        } finally {
            fs.rmSync(tmp, { recursive: true, force: true });
        }
    });
});
