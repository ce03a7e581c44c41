import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import { FatalWaitError, freePort, ProcessGroup, requireTool, Started, tempDir, waitFor } from "./processes";

/**
 * A network namespace of the test's own (`ip netns`), for a process that must see a cluster's network rather
 * than the machine's: its own `/etc/resolv.conf` (`ip netns exec` bind-mounts `/etc/netns/<name>/resolv.conf`
 * over it) and local addresses that exist nowhere else (a Service's ClusterIP). Nothing of the machine's own
 * network is changed.
 *
 * A namespace has its own loopback, so ports cross the boundary through a Unix socket, which both sides see
 * in the file system: socat on the namespace's side, a relay in the test's process on the machine's side.
 *
 *     const ns = await NetworkNamespace.create();
 *     ns.writeEtc("resolv.conf", "nameserver 127.0.0.1\n");
 *     await ns.forwardToHost("127.0.0.1", 6443, apiserverPort);   // inside → the machine's loopback
 *     const port = await ns.publish(9090);                          // the machine's loopback → inside
 *     group.start(...ns.command("thanos", ["query", ...]), { logFile });
 *     await ns.delete();                                            // stops what it started, removes the namespace
 */

let created = 0;

/** `ip netns` and root, which creating a namespace needs. Outside CI either missing skips with the reason; under CI=true it fails. */
export function requireNetns(): string | { skip: string } {
    const tool = requireTool("ip", "apt-get install iproute2");
    if (typeof tool === "object" || process.getuid?.() === 0) return tool;
    const message = "creating a network namespace (ip netns add) needs root; run the end-to-end tests as root";
    if (process.env.CI === "true") throw new Error(`${message} (CI never skips end-to-end tests)`);
    return { skip: message };
}

function ip(args: string[]): string {
    return execFileSync("ip", args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

/** Pipes two sockets into each other; either side's end or error ends both. */
function splice(a: net.Socket, b: net.Socket): void {
    // Without TCP_NODELAY, Nagle's algorithm and the peer's delayed ACK hold small gRPC frames for up to 40 ms per hop.
    a.setNoDelay(true);
    b.setNoDelay(true);
    a.pipe(b).pipe(a);
    for (const [s, other] of [
        [a, b],
        [b, a],
    ]) {
        s.on("error", () => other.destroy());
        s.on("close", () => other.destroy());
    }
}

/** A forwarded port; `stop()` ends its listener and every connection through it. */
export interface Forward {
    stop(): Promise<void>;
}

export class NetworkNamespace {
    private readonly group = new ProcessGroup();
    /** The test-side relays, each with its open connections. */
    private readonly relays = new Map<net.Server, Set<net.Socket>>();
    private readonly socketDir = tempDir("netns");
    private files = 0;

    private constructor(readonly name: string) {}

    /** `ip netns add` with the loopback up. The name carries the test process's id, so runs never collide. */
    static async create(): Promise<NetworkNamespace> {
        const ns = new NetworkNamespace(`envoy-thanos-${process.pid}-${++created}`);
        ip(["netns", "add", ns.name]);
        try {
            ip(["-n", ns.name, "link", "set", "lo", "up"]);
        } catch (err) {
            await ns.delete();
            throw err;
        }
        return ns;
    }

    /** `/etc/netns/<name>`: its files replace `/etc`'s for processes started through `command()`. */
    get etcDir(): string {
        return path.join("/etc/netns", this.name);
    }

    writeEtc(file: string, content: string): void {
        fs.mkdirSync(this.etcDir, { recursive: true });
        fs.writeFileSync(path.join(this.etcDir, file), content);
    }

    /** The command line that runs `command args` inside the namespace (`ip netns exec` execs it: same process id). */
    command(command: string, args: string[]): [string, string[]] {
        return ["ip", ["netns", "exec", this.name, command, ...args]];
    }

    /** Makes `address` a local address inside the namespace (on its loopback, /32). */
    addAddress(address: string): void {
        const present = ip(["-n", this.name, "-o", "addr", "show", "dev", "lo"]).includes(` ${address}/`);
        if (!present) ip(["-n", this.name, "addr", "add", `${address}/32`, "dev", "lo"]);
    }

    /** Connections to `address:port` inside the namespace reach 127.0.0.1:`hostPort` outside it. */
    async forwardToHost(address: string, port: number, hostPort: number): Promise<Forward> {
        const socket = this.socketPath();
        const relay = await this.relay((client) => splice(client, net.connect(hostPort, "127.0.0.1")), { path: socket });
        const socat = this.start("socat", [`TCP-LISTEN:${port},bind=${address},reuseaddr,fork,nodelay`, `UNIX-CONNECT:${socket}`]);
        await waitFor(`socat listening on ${address}:${port} in ${this.name}`, 10_000, async () => {
            if (socat.child.exitCode !== null) throw new FatalWaitError(`socat exited: ${socat.log()}`);
            return this.listening(address, port) ? true : undefined;
        });
        return { stop: () => this.stopForward(relay, socat) };
    }

    /**
     * A port of the namespace's loopback (or of `address` as the namespace reaches it, e.g. a pod's IP), reachable
     * from the test at 127.0.0.1:<returned port> (`hostPort` when given).
     */
    async publish(port: number, hostPort?: number, address = "127.0.0.1"): Promise<number> {
        const socket = this.socketPath();
        const socat = this.start("socat", [`UNIX-LISTEN:${socket},fork`, `TCP:${address}:${port},nodelay`]);
        await waitFor(`socat listening on ${socket}`, 10_000, async () => {
            if (socat.child.exitCode !== null) throw new FatalWaitError(`socat exited: ${socat.log()}`);
            return fs.existsSync(socket) ? true : undefined;
        });
        const machinePort = hostPort ?? (await freePort());
        await this.relay((client) => splice(client, net.connect(socket)), { port: machinePort, host: "127.0.0.1" });
        return machinePort;
    }

    /**
     * Stops every process started through this object, then any other process still inside the namespace
     * (only the test's own processes can be there), deletes the namespace and its `/etc/netns` files.
     */
    async delete(): Promise<void> {
        await Promise.all([...this.relays.keys()].map((r) => this.closeRelay(r)));
        await this.group.stopAll();
        try {
            for (const pid of ip(["netns", "pids", this.name]).split(/\s+/).filter(Boolean)) {
                try {
                    process.kill(Number(pid), "SIGKILL");
                } catch {
                    // already gone
                }
            }
            ip(["netns", "delete", this.name]);
        } catch {
            // never created, or already deleted
        }
        fs.rmSync(this.etcDir, { recursive: true, force: true });
        try {
            fs.rmdirSync(path.dirname(this.etcDir)); // /etc/netns, when no other namespace has files there
        } catch {
            // not empty, or absent
        }
        fs.rmSync(this.socketDir, { recursive: true, force: true });
    }

    /** Starts `command` inside the namespace, logging to the socket directory; stopped by delete(). */
    start(command: string, args: string[], logFile = path.join(this.socketDir, `${command}-${++this.files}.log`)): Started {
        return this.group.start(...this.command(command, args), { logFile });
    }

    private socketPath(): string {
        return path.join(this.socketDir, `${++this.files}.sock`);
    }

    private listening(address: string, port: number): boolean {
        const out = execFileSync("ss", ["-N", this.name, "-Hltn", `sport = :${port}`], { encoding: "utf8" });
        return out.includes(`${address}:${port}`);
    }

    private async relay(onConnection: (client: net.Socket) => void, listen: net.ListenOptions): Promise<net.Server> {
        const open = new Set<net.Socket>();
        const server = net.createServer((client) => {
            open.add(client);
            client.on("close", () => open.delete(client));
            onConnection(client);
        });
        await new Promise<void>((resolve, reject) => server.once("error", reject).listen(listen, resolve));
        this.relays.set(server, open);
        return server;
    }

    private async closeRelay(relay: net.Server): Promise<void> {
        for (const s of this.relays.get(relay) ?? []) s.destroy();
        this.relays.delete(relay);
        await new Promise<void>((resolve) => relay.close(() => resolve()));
    }

    private async stopForward(relay: net.Server, socat: Started): Promise<void> {
        await socat.stop();
        await this.closeRelay(relay);
    }
}
