import { ChildProcess, execFileSync, spawn } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";

/**
 * Starting and stopping the real programs of the end-to-end tests: free loopback ports, log files,
 * bounded waits, and a group that stops everything it started (also when a test fails or the run aborts).
 */

const live = new Set<ChildProcess>();
process.on("exit", () => {
    for (const child of live) child.kill("SIGKILL");
});

/**
 * A loopback port no other server of the run will be given. Two things can take a port between this check and
 * the program's bind: another test file's process (the run has two at a time), and any outgoing connection, whose
 * local port the kernel picks from its ephemeral range. So ports come from below that range, and each is claimed
 * with a file created exclusively in a directory every process of the run shares (tools/test.sh gives the run one
 * TMPDIR); a process removes its claims when it exits.
 */
export async function freePort(): Promise<number> {
    fs.mkdirSync(claimDir, { recursive: true });
    for (let attempt = 0; attempt < 200; attempt++) {
        const port = crypto.randomInt(LOWEST_PORT, ephemeralStart());
        if (!claim(port)) continue;
        if (await bindable(port)) return port;
    }
    throw new Error(`no free loopback port between ${LOWEST_PORT} and ${ephemeralStart()} in 200 attempts (claims in ${claimDir})`);
}

/** Above the ports the tests write into configurations (10901, 10002, 20000 of envoy's validate mode). */
const LOWEST_PORT = 20001;
const claimDir = path.join(os.tmpdir(), "envoy-thanos-ports");
const claimed: string[] = [];
process.on("exit", () => {
    for (const file of claimed) fs.rmSync(file, { force: true });
});

function ephemeralStart(): number {
    const [low] = fs.readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/).map(Number);
    if (!(low > LOWEST_PORT + 1000)) throw new Error(`the kernel's ephemeral ports start at ${low}: freePort needs them above ${LOWEST_PORT + 1000}`);
    return low;
}

function claim(port: number): boolean {
    const file = path.join(claimDir, String(port));
    try {
        fs.writeFileSync(file, String(process.pid), { flag: "wx" });
    } catch (err) {
        if ((err as NodeJS.ErrnoException).code === "EEXIST") return false;
        throw err;
    }
    claimed.push(file);
    return true;
}

/** Whether a server can listen on the port now (something outside the run may hold it). */
function bindable(port: number): Promise<boolean> {
    return new Promise((resolve) => {
        const server = net.createServer();
        server.unref();
        server.on("error", () => resolve(false));
        server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
    });
}

/** The directory a build script of tools/ builds into, asked of the script itself (`--print-dir` builds nothing). */
export function buildDir(script: string): string {
    const out = execFileSync("bash", [path.resolve(__dirname, "../../..", script), "--print-dir"], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    return out.trim().split("\n").pop() ?? "";
}

export function tempDir(prefix: string): string {
    return fs.mkdtempSync(path.join(os.tmpdir(), `envoy-thanos-${prefix}-`));
}

export function sleep(ms: number): Promise<void> {
    return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Thrown inside a wait when waiting longer is pointless (a component died): ends the wait at once. */
export class FatalWaitError extends Error {}

/** Polls `check` until it returns a value (not undefined), `timeoutMs` passes, or it throws FatalWaitError. */
export async function waitFor<T>(what: string, timeoutMs: number, check: () => Promise<T | undefined>, intervalMs = 100): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    let last: unknown;
    while (Date.now() < deadline) {
        try {
            const value = await check();
            if (value !== undefined) return value;
        } catch (err) {
            if (err instanceof FatalWaitError) throw err;
            last = err;
        }
        await sleep(intervalMs);
    }
    throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ""}`);
}

export interface Started {
    child: ChildProcess;
    logFile: string;
    log(): string;
    stop(): Promise<void>;
}

export class ProcessGroup {
    private readonly started: Started[] = [];

    start(command: string, args: string[], options: { logFile: string; cwd?: string; env?: NodeJS.ProcessEnv }): Started {
        const out = fs.openSync(options.logFile, "a");
        const child = spawn(command, args, { cwd: options.cwd, env: options.env ?? process.env, stdio: ["ignore", out, out] });
        fs.closeSync(out);
        live.add(child);
        const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
        child.once("exit", () => live.delete(child));
        const started: Started = {
            child,
            logFile: options.logFile,
            log: () => (fs.existsSync(options.logFile) ? fs.readFileSync(options.logFile, "utf8") : ""),
            stop: async () => {
                if (child.exitCode !== null || child.signalCode !== null) return;
                child.kill("SIGTERM");
                const killed = await Promise.race([exited.then(() => true), sleep(5000).then(() => false)]);
                if (!killed) {
                    child.kill("SIGKILL");
                    await exited;
                }
            },
        };
        this.started.push(started);
        return started;
    }

    async stopAll(): Promise<void> {
        await Promise.all(this.started.map((s) => s.stop()));
    }
}

/** A tool the end-to-end tests need. Outside CI a missing tool skips with the install command; in CI it fails. */
export function requireTool(command: string, install: string): string | { skip: string } {
    try {
        execFileSync("sh", ["-c", `command -v ${command}`], { stdio: "pipe" });
        return command;
    } catch {
        const message = `${command} not found; install it with: ${install}`;
        if (process.env.CI === "true") {
            throw new Error(`${message} (CI never skips end-to-end tests)`);
        }
        return { skip: message };
    }
}
