import * as path from "node:path";

/**
 * The real node's configuration files as plain data (test/e2e/support/real-node.ts writes them): containerd's, the
 * pod network's (CNI) and the kubelet's.
 */

export const CNI_BIN_DIR = "/usr/lib/cni";
/** The pods' subnet on the node's bridge; the bridge's own address is the pods' gateway. */
export const POD_SUBNET = "10.88.0.0/24";
/**
 * The node's own address (on its namespace's loopback; the namespace has no default route to take one from). Pods
 * reach it through their gateway, so a port the test forwards there is how a pod dials something on the machine.
 */
export const NODE_ADDRESS = "10.200.0.1";
export const PAUSE_IMAGE = "registry.k8s.io/pause:3.10.1";
/**
 * How often the kubelet re-syncs pods, and with them ConfigMap and Secret volumes (default 1 minute): lowered so
 * that a day-2 change reaches the running Envoy within seconds.
 */
export const SYNC_FREQUENCY = "5s";
/** containerd's configuration (format version 2, containerd 1.6): its own directories, runc with cgroupfs, CNI from Debian. */
export function containerdConfig(dir: string): Record<string, unknown> {
    return {
        version: 2,
        root: path.join(dir, "root"),
        state: path.join(dir, "state"),
        // Snapshotters and services this node never uses (some need kernel features or paths outside `dir`).
        disabled_plugins: [
            "io.containerd.snapshotter.v1.aufs",
            "io.containerd.snapshotter.v1.btrfs",
            "io.containerd.snapshotter.v1.devmapper",
            "io.containerd.snapshotter.v1.zfs",
            "io.containerd.internal.v1.opt",
            "io.containerd.tracing.processor.v1.otlp",
        ],
        grpc: { address: path.join(dir, "containerd.sock") },
        ttrpc: { address: path.join(dir, "containerd.ttrpc.sock") },
        plugins: {
            "io.containerd.grpc.v1.cri": {
                sandbox_image: PAUSE_IMAGE,
                // Root here lacks CAP_SYS_RESOURCE, so no process may lower its OOM score below containerd's (the
                // kubelet asks -998 for a pod sandbox): containers keep containerd's score instead.
                restrict_oom_score_adj: true,
                containerd: {
                    snapshotter: "overlayfs",
                    default_runtime_name: "runc",
                    runtimes: { runc: { runtime_type: "io.containerd.runc.v2", options: { SystemdCgroup: false, Root: path.join(dir, "runc") } } },
                },
                cni: { bin_dir: CNI_BIN_DIR, conf_dir: path.join(dir, "net.d") },
            },
        },
    };
}

/** The pod network: one bridge in the node's namespace, pod addresses from POD_SUBNET, no NAT (nothing leaves). */
export function cniConfig(): object {
    return {
        cniVersion: "1.0.0",
        name: "real-node",
        plugins: [
            {
                type: "bridge",
                bridge: "cni0",
                isGateway: true,
                ipMasq: false,
                hairpinMode: true,
                ipam: { type: "host-local", ranges: [[{ subnet: POD_SUBNET }]], routes: [{ dst: "0.0.0.0/0" }] },
            },
        ],
    };
}

/** The kubelet's configuration; `failCgroupV1: false` because this machine has cgroup v1 only. */
export function kubeletConfig(options: { runtimeSocket: string; cgroupRoot: string; resolvConf: string; podLogsDir: string }): object {
    return {
        apiVersion: "kubelet.config.k8s.io/v1beta1",
        kind: "KubeletConfiguration",
        failCgroupV1: false,
        failSwapOn: false,
        cgroupDriver: "cgroupfs",
        cgroupRoot: options.cgroupRoot,
        containerRuntimeEndpoint: `unix://${options.runtimeSocket}`,
        syncFrequency: SYNC_FREQUENCY,
        // Its API (logs, exec) only on the namespace's loopback, nobody anonymous.
        address: "127.0.0.1",
        readOnlyPort: 0,
        authentication: { anonymous: { enabled: false }, webhook: { enabled: false } },
        authorization: { mode: "AlwaysAllow" },
        resolvConf: options.resolvConf,
        podLogsDir: options.podLogsDir,
        // The images cannot be pulled again: never garbage-collect them, never evict for a full disk.
        imageGCHighThresholdPercent: 100,
        imageGCLowThresholdPercent: 99,
        evictionHard: { "memory.available": "1Mi", "nodefs.available": "1%", "imagefs.available": "1%" },
    };
}
