import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";

/**
 * CPU and bytes of the proxies, each counted two ways so that the bench can show they agree:
 * - CPU from /proc/<pid>/stat (utime + stime, reported in 10 ms clock ticks) and from cgroup v1 `cpuacct.usage`
 *   (nanoseconds, every thread of every process in the group, threads that already exited included);
 * - bytes from the sidecar's own TCP sockets (`bytes_acked`: the gRPC bytes it wrote and the peer took, without
 *   retransmissions) and from Envoy's statistics (`upstream_cx_rx_bytes_total`: the TLS bytes it received).
 * Both CPU counters come from the scheduler's own run time; /proc only reports it truncated to whole ticks.
 */

/** utime + stime of processes, in ms (clock ticks of 10 ms); a process that is gone counts 0. */
export function procTicksMs(pids: number[]): number {
    let ticks = 0;
    for (const pid of pids) {
        try {
            const fields = fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
            ticks += Number(fields[11]) + Number(fields[12]);
        } catch {
            // exited
        }
    }
    return ticks * 10;
}

/** CPU of children this process has waited for (ghz after it exits), in ms. */
export function reapedChildrenCpuMs(): number {
    const fields = fs.readFileSync("/proc/self/stat", "utf8").split(") ")[1].split(" ");
    return (Number(fields[13]) + Number(fields[14])) * 10;
}

/** On-CPU nanoseconds of a process's main thread and of its other threads, from /proc/<pid>/task/<tid>/schedstat. */
export function threadCpuNs(pid: number): { main: number; others: number } {
    let main = 0;
    let others = 0;
    let tids: string[];
    try {
        tids = fs.readdirSync(`/proc/${pid}/task`);
    } catch {
        return { main, others };
    }
    for (const tid of tids) {
        try {
            const ns = Number(fs.readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "utf8").split(" ")[0]);
            if (Number(tid) === pid) main += ns;
            else others += ns;
        } catch {
            // the thread exited
        }
    }
    return { main, others };
}

const CPUACCT_ROOT = "/sys/fs/cgroup/cpuacct";

/**
 * One cgroup v1 cpuacct group per measured process (and what it forks: nginx's workers), created under a parent of
 * this run's own and removed by `remove()`. Moving a process into a cpuacct group changes only what is counted, not
 * how it is scheduled (the cpu controller is a separate hierarchy on this machine).
 */
export class CpuacctGroups {
    private readonly parent: string;
    /** Group name → the cpuacct group each of its processes came from, to return them on removal. */
    private readonly origins = new Map<string, Map<number, string>>();

    private constructor(parent: string) {
        this.parent = parent;
    }

    /** Why cpuacct cannot be used here, or undefined when it can. */
    static unavailable(): string | undefined {
        if (!fs.existsSync(path.join(CPUACCT_ROOT, "cpuacct.usage"))) return `no cgroup v1 cpuacct hierarchy at ${CPUACCT_ROOT}`;
        try {
            fs.accessSync(CPUACCT_ROOT, fs.constants.W_OK);
        } catch {
            return `${CPUACCT_ROOT} is not writable (the bench needs root for it)`;
        }
        return undefined;
    }

    static create(): CpuacctGroups {
        const why = CpuacctGroups.unavailable();
        if (why !== undefined) throw new Error(`cpuacct: ${why}`);
        const parent = path.join(CPUACCT_ROOT, `envoy-thanos-bench-${process.pid}`);
        fs.mkdirSync(parent);
        return new CpuacctGroups(parent);
    }

    /** Puts `pids` (whole processes: every thread) into group `name`, creating it; a pid already there stays. */
    join(name: string, pids: number[]): void {
        const dir = path.join(this.parent, name);
        if (!this.origins.has(name)) {
            fs.mkdirSync(dir);
            this.origins.set(name, new Map());
        }
        const origins = this.origins.get(name)!;
        for (const pid of pids) {
            if (origins.has(pid)) continue;
            origins.set(pid, cpuacctGroupOf(pid));
            fs.writeFileSync(path.join(dir, "cgroup.procs"), String(pid));
        }
    }

    /** Nanoseconds of CPU used by the group's processes since it was created. */
    usageNs(name: string): number {
        return Number(fs.readFileSync(path.join(this.parent, name, "cpuacct.usage"), "utf8").trim());
    }

    /** Returns every process still in a group to where it came from and removes the groups and their parent. */
    remove(): void {
        for (const [name, origins] of this.origins) {
            const dir = path.join(this.parent, name);
            const left = fs.readFileSync(path.join(dir, "cgroup.procs"), "utf8").split("\n").filter(Boolean).map(Number);
            for (const pid of left) {
                const origin = origins.get(pid) ?? "/";
                try {
                    fs.writeFileSync(path.join(CPUACCT_ROOT, origin, "cgroup.procs"), String(pid));
                } catch {
                    // it exited meanwhile
                }
            }
            fs.rmdirSync(dir);
        }
        this.origins.clear();
        fs.rmdirSync(this.parent);
    }
}

/** The cpuacct group path of a process, relative to the hierarchy's root. */
function cpuacctGroupOf(pid: number): string {
    const line = fs
        .readFileSync(`/proc/${pid}/cgroup`, "utf8")
        .split("\n")
        .find((l) => l.split(":")[1]?.split(",").includes("cpuacct"));
    return line?.split(":")[2] ?? "/";
}

/**
 * Bytes acknowledged by the peer of each established TCP connection whose local port is `port` (a server's sockets:
 * what it wrote), by connection (local and peer address); from the kernel's tcp_info through `ss`.
 */
export function tcpBytesAcked(port: number): Map<string, number> {
    const result = spawnSync("ss", ["-tinH", "state", "established", `( sport = :${port} )`], { encoding: "utf8", timeout: 10_000 });
    if (result.status !== 0) throw new Error(`ss failed: ${result.stderr}`);
    const out = new Map<string, number>();
    let connection: string | undefined;
    for (const line of result.stdout.split("\n")) {
        // A connection's line (receive and send queues, local and peer address), then its tcp_info line.
        const addresses = /^\d+\s+\d+\s+(\S+)\s+(\S+)/.exec(line);
        if (addresses) connection = `${addresses[1]} ${addresses[2]}`;
        const acked = /\bbytes_acked:(\d+)/.exec(line)?.[1];
        if (connection !== undefined && acked !== undefined) out.set(connection, Number(acked));
    }
    return out;
}

/**
 * What was written between two readings of `tcpBytesAcked`: growth of the connections open at both, all of a new
 * one's bytes. A connection that closed in between is counted in `closed`: what it wrote since the first reading is
 * lost, so the bytes are a lower bound then.
 */
export function bytesWritten(before: Map<string, number>, after: Map<string, number>): { bytes: number; closed: number } {
    let bytes = 0;
    for (const [connection, acked] of after) bytes += acked - (before.get(connection) ?? 0);
    const closed = [...before.keys()].filter((connection) => !after.has(connection)).length;
    return { bytes, closed };
}
