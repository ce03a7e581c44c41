import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { waitFor } from "./processes";

/**
 * What a real node leaves on the machine outside its own directory, and how the test removes it: processes in its
 * cgroups, the containerd shims, mounts, cgroups, and the directories the kubelet makes at fixed paths.
 */

/**
 * Where the kubelet writes whatever its configuration says: device plugins' sockets, and the links to container logs
 * that log shippers read. Removed after the node when the node made them.
 */
/**
 * The kernel settings a kubelet sets on its machine at start (its `protectKernelDefaults` is false by default). They
 * are the machine's, not the namespace's, so the test reads them before the kubelet starts and writes them back.
 */
const KUBELET_KERNEL_SETTINGS = [
    "vm/overcommit_memory",
    "vm/panic_on_oom",
    "kernel/panic",
    "kernel/panic_on_oops",
    "kernel/keys/root_maxkeys",
    "kernel/keys/root_maxbytes",
];

export function readKernelSettings(): Map<string, string> {
    return new Map(KUBELET_KERNEL_SETTINGS.map((key) => [key, fs.readFileSync(`/proc/sys/${key}`, "utf8").trim()]));
}

export function restoreKernelSettings(saved: Map<string, string>): void {
    for (const [key, value] of saved) if (fs.readFileSync(`/proc/sys/${key}`, "utf8").trim() !== value) fs.writeFileSync(`/proc/sys/${key}`, value);
}

export const KUBELET_FIXED_DIRS = ["/var/lib/kubelet", "/var/log/containers", "/run/containerd"];

/** The mounted cgroup hierarchies of one type: "cgroup" (v1, one per controller set) or "cgroup2" (the hybrid unified one). */
export function cgroupHierarchies(type: "cgroup" | "cgroup2"): string[] {
    return fs
        .readFileSync("/proc/self/mounts", "utf8")
        .split("\n")
        .map((line) => line.split(" "))
        .filter((f) => f[2] === type)
        .map((f) => f[1]);
}

/** Every process in a cgroup-v1 tree (read in the pids hierarchy, where every process has a cgroup). */
export function cgroupProcesses(cgroupRoot: string): number[] {
    const pids: number[] = [];
    const walk = (dir: string) => {
        if (!fs.existsSync(dir)) return;
        for (const line of fs.readFileSync(path.join(dir, "cgroup.procs"), "utf8").split("\n")) if (line) pids.push(Number(line));
        for (const entry of fs.readdirSync(dir, { withFileTypes: true })) if (entry.isDirectory()) walk(path.join(dir, entry.name));
    };
    for (const hierarchy of cgroupHierarchies("cgroup").filter((h) => path.basename(h) === "pids")) walk(path.join(hierarchy, cgroupRoot));
    return pids;
}

/** SIGKILLs what is left in the node's cgroups (containers whose shim is gone) and waits until they are reaped. */
export async function killCgroupProcesses(cgroupRoot: string): Promise<void> {
    for (const pid of cgroupProcesses(cgroupRoot)) {
        try {
            process.kill(pid, "SIGKILL");
        } catch {
            // gone meanwhile
        }
    }
    await waitFor(`the processes in cgroup ${cgroupRoot} to exit`, 10_000, async () => (cgroupProcesses(cgroupRoot).length === 0 ? true : undefined)).catch(
        () => undefined,
    );
}

/** SIGKILLs the containerd shims serving `socket` (each names its containerd's address on its command line). */
export function killShimsOf(socket: string): void {
    for (const pid of fs.readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
        let cmdline: string[];
        try {
            cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
        } catch {
            continue; // gone meanwhile
        }
        if (path.basename(cmdline[0] ?? "").startsWith("containerd-shim") && cmdline.includes(socket)) {
            try {
                process.kill(Number(pid), "SIGKILL");
            } catch {
                // gone meanwhile
            }
        }
    }
}

/** Unmounts everything mounted at or below `dir`, deepest first (container root file systems, volumes, shm). */
export function unmountUnder(dir: string): void {
    const mounts = fs
        .readFileSync("/proc/self/mountinfo", "utf8")
        .split("\n")
        .map((line) => line.split(" ")[4])
        .filter((mountPoint): mountPoint is string => mountPoint !== undefined && (mountPoint === dir || mountPoint.startsWith(`${dir}/`)))
        .sort((a, b) => b.length - a.length);
    for (const mountPoint of mounts) {
        try {
            execFileSync("umount", ["--lazy", mountPoint], { stdio: "pipe" });
        } catch {
            // unmounted with its parent
        }
    }
}

/** Removes a cgroup-v1 directory and its children, deepest first (a cgroup directory is removed with rmdir). */
export function removeCgroupTree(dir: string): void {
    if (!fs.existsSync(dir)) return;
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
        if (entry.isDirectory()) removeCgroupTree(path.join(dir, entry.name));
    }
    try {
        fs.rmdirSync(dir);
    } catch {
        // a process still in it: it is reported by the test's own checks
    }
}
