import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import * as YAML from "yaml";
import { ControlPlane, kubeBinDir, KUBE_BUILD_COMMAND, writeKubeconfig } from "./kube";
import { NetworkNamespace, requireNetns } from "./netns";
import { buildDir, FatalWaitError, ProcessGroup, requireTool, Started, waitFor } from "./processes";
import { CNI_BIN_DIR, cniConfig, containerdConfig, kubeletConfig, NODE_ADDRESS } from "./node-config";
import {
    cgroupHierarchies,
    cgroupProcesses,
    KUBELET_FIXED_DIRS,
    killCgroupProcesses,
    killShimsOf,
    readKernelSettings,
    removeCgroupTree,
    restoreKernelSettings,
    unmountUnder,
} from "./node-host";
import { tomlText } from "./toml";

/**
 * One real Kubernetes node beside a test's control plane: containerd (with runc and the CNI bridge plugin, from
 * Debian) and the kubelet built from the pinned Kubernetes module, both inside a network namespace of the test's
 * own, so the pod network (a bridge and the pods' veths) exists nowhere else. The kubelet reaches the API server
 * through the namespace's 127.0.0.1:6443, forwarded to the API server on the machine's loopback.
 *
 *     const node = await RealNode.start(plane, dir, tools);   // Ready, with the two local images imported
 *     await node.ns.publish(port, undefined, podIP);          // a pod's port on the machine's loopback
 *     await node.stop();                                      // pods, processes, mounts, netns, cgroups: all gone
 *
 * Only what no package provides is made here: the two images (tools/real-node/images.sh), the node's client
 * certificate, and the containerd, CNI and kubelet configurations (node-config.ts).
 */

export const IMAGES_BUILD_COMMAND = "bash tools/real-node/images.sh";

/** Where tools/real-node/images.sh puts the images (asked of the script; makes nothing). */
export function imagesDir(): string {
    return buildDir("tools/real-node/images.sh");
}

export interface RealNodeTools {
    kubelet: string;
    images: string;
}

/** containerd, runc, the CNI plugins, the kubelet and the images; or `{ skip }` with the command that installs what is missing (CI throws). */
export function requireRealNode(): RealNodeTools | { skip: string } {
    for (const tool of [
        requireNetns(),
        requireTool("socat", "apt-get install socat"),
        requireTool("containerd", "apt-get install containerd"),
        requireTool("runc", "apt-get install runc"),
        requireTool("nsenter", "apt-get install util-linux"),
    ]) {
        if (typeof tool === "object") return tool;
    }
    const kubelet = path.join(kubeBinDir(), "kubelet");
    const images = imagesDir();
    const missing = [
        [
            fs.existsSync(path.join(CNI_BIN_DIR, "bridge")),
            `CNI plugins missing from ${CNI_BIN_DIR}; install them with: apt-get install containernetworking-plugins`,
        ],
        [fs.existsSync(kubelet), `kubelet missing (${kubelet}); build it with: ${KUBE_BUILD_COMMAND}`],
        [fs.existsSync(path.join(images, "envoy.oci.tar")), `node images missing (${images}); make them with: ${IMAGES_BUILD_COMMAND}`],
    ].find(([present]) => !present);
    if (!missing) return { kubelet, images };
    const message = missing[1] as string;
    if (process.env.CI === "true") throw new Error(`${message} (CI never skips end-to-end tests)`);
    return { skip: message };
}

export class RealNode {
    private readonly group = new ProcessGroup();
    private containerd?: Started;
    private kubelet?: Started;
    /** The node's cgroup root, in every cgroup hierarchy. */
    private cgroupRoot?: string;
    /** Directories at fixed paths the kubelet made (none existed before it started). */
    private readonly createdFixedDirs: string[] = [];
    /** The machine's kernel settings from before the kubelet changed them. */
    private kernelSettings?: Map<string, string>;

    private constructor(
        readonly plane: ControlPlane,
        readonly dir: string,
        readonly ns: NetworkNamespace,
        readonly name: string,
        private readonly tools: RealNodeTools,
    ) {}

    get runtimeSocket(): string {
        return path.join(this.dir, "containerd", "containerd.sock");
    }

    /** containerd, the kubelet and the Node object, Ready. The plane must authorise with `--authorization-mode=Node,RBAC`. */
    static async start(plane: ControlPlane, dir: string, tools: RealNodeTools, timeoutMs = 180_000): Promise<RealNode> {
        const ns = await NetworkNamespace.create();
        const node = new RealNode(plane, dir, ns, `real-node-${process.pid}`, tools);
        try {
            await node.startInner(Date.now() + timeoutMs);
        } catch (err) {
            const logs = `--- containerd ---\n${tail(node.containerd?.log())}\n--- kubelet ---\n${tail(node.kubelet?.log())}`;
            await node.stop();
            throw new Error(`the real node did not start: ${err instanceof Error ? err.message : String(err)}\n${logs}`, { cause: err });
        }
        return node;
    }

    private async startInner(deadline: number): Promise<void> {
        const left = () => Math.max(1_000, deadline - Date.now());
        fs.mkdirSync(this.dir, { recursive: true });
        await this.ns.forwardToHost("127.0.0.1", 6443, this.plane.ports.apiserver);
        this.ns.addAddress(NODE_ADDRESS);

        const containerdDir = path.join(this.dir, "containerd");
        fs.mkdirSync(path.join(containerdDir, "net.d"), { recursive: true });
        fs.writeFileSync(path.join(containerdDir, "net.d", "10-real-node.conflist"), JSON.stringify(cniConfig()));
        const containerdToml = path.join(containerdDir, "config.toml");
        fs.writeFileSync(containerdToml, tomlText(containerdConfig(containerdDir)));
        const containerd = (this.containerd = this.startInNamespace("containerd", ["--config", containerdToml], "containerd.log"));
        await waitFor("containerd serving", left(), async () => {
            if (containerd.child.exitCode !== null) throw new FatalWaitError(`containerd exited: ${tail(containerd.log())}`);
            return fs.existsSync(this.runtimeSocket) ? true : undefined;
        });
        for (const image of ["pause.oci.tar", "envoy.oci.tar"]) {
            this.ctr(["images", "import", "--no-unpack=false", path.join(this.tools.images, image)]);
        }

        // The kubelet wants its cgroup root to exist; under it go kubepods and every pod's and container's cgroup.
        const cgroupRoot = (this.cgroupRoot = `/${this.name}`);
        for (const hierarchy of cgroupHierarchies("cgroup")) fs.mkdirSync(path.join(hierarchy, cgroupRoot), { recursive: true });
        const kubeletDir = path.join(this.dir, "kubelet");
        fs.mkdirSync(kubeletDir, { recursive: true });
        const resolvConf = path.join(kubeletDir, "resolv.conf");
        fs.writeFileSync(resolvConf, "nameserver 127.0.0.1\n");
        const config = path.join(kubeletDir, "config.yaml");
        fs.writeFileSync(
            config,
            YAML.stringify(kubeletConfig({ runtimeSocket: this.runtimeSocket, cgroupRoot, resolvConf, podLogsDir: path.join(kubeletDir, "pod-logs") })),
        );
        for (const fixed of KUBELET_FIXED_DIRS) if (!fs.existsSync(fixed)) this.createdFixedDirs.push(fixed);
        const kubeconfig = writeKubeconfig(path.join(kubeletDir, "kubeconfig"), { [this.plane.name]: this.plane }, this.plane.name, () =>
            issueNodeCredentials(this.plane, this.name, path.join(kubeletDir, "pki")),
        );
        // The kubelet dials the API server as the namespace sees it.
        const local = YAML.parse(fs.readFileSync(kubeconfig, "utf8"));
        local.clusters[0].cluster.server = "https://127.0.0.1:6443";
        fs.writeFileSync(kubeconfig, YAML.stringify(local), { mode: 0o600 });
        this.kernelSettings = readKernelSettings();
        const kubelet = (this.kubelet = this.startInNamespace(
            this.tools.kubelet,
            [
                `--config=${config}`,
                `--kubeconfig=${kubeconfig}`,
                `--root-dir=${path.join(kubeletDir, "root")}`,
                `--cert-dir=${path.join(kubeletDir, "serving")}`,
                `--hostname-override=${this.name}`,
                `--node-ip=${NODE_ADDRESS}`,
                "--v=2",
            ],
            "kubelet.log",
        ));
        await waitFor(
            `Node ${this.name} Ready`,
            left(),
            async () => {
                if (kubelet.child.exitCode !== null) throw new FatalWaitError(`kubelet exited: ${tail(kubelet.log())}`);
                const res = await this.plane.request("GET", `/api/v1/nodes/${this.name}`);
                return res.body?.status?.conditions?.some((c: any) => c.type === "Ready" && c.status === "True") ? true : undefined;
            },
            500,
        );
    }

    /** `ctr` against this node's containerd, in the CRI's namespace. */
    ctr(args: string[]): string {
        return execFileSync("ctr", ["--address", this.runtimeSocket, "--namespace", "k8s.io", ...args], {
            encoding: "utf8",
            stdio: ["ignore", "pipe", "pipe"],
        });
    }

    /** The host PID of a running container's first process; `containerId` as a pod's status gives it (containerd://<id>). */
    containerPid(containerId: string): number {
        const id = containerId.replace(/^containerd:\/\//, "");
        const row = this.ctr(["tasks", "ls"])
            .split("\n")
            .map((line) => line.trim().split(/\s+/))
            .find((f) => f[0] === id);
        if (!row || row[2] !== "RUNNING") throw new Error(`container ${id} is not running: ${row?.join(" ") ?? "no task"}`);
        return Number(row[1]);
    }

    containerdLog(): string {
        return this.containerd?.log() ?? "";
    }

    kubeletLog(): string {
        return this.kubelet?.log() ?? "";
    }

    /**
     * Deletes every pod bound to the node and gives the kubelet a bounded time to tear them down, then stops the
     * kubelet and containerd and removes whatever is left: processes in the node's cgroups, the runtime's shims,
     * mounts under `dir`, the pods' network namespaces, the cgroups, the node's network namespace, the directories
     * the kubelet makes at fixed paths.
     */
    async stop(): Promise<void> {
        if (this.kubelet && this.kubelet.child.exitCode === null) await this.deletePods().catch(() => undefined);
        const podNetns = this.containerd && this.containerd.child.exitCode === null ? this.podNetworkNamespaces() : [];
        await this.kubelet?.stop();
        await this.containerd?.stop();
        await this.group.stopAll();
        // Every step runs, whatever an earlier one met; the first failure is reported at the end.
        const failures: unknown[] = [];
        const step = async (action: () => unknown) => {
            try {
                await action();
            } catch (err) {
                failures.push(err);
            }
        };
        const cgroupRoot = this.cgroupRoot;
        if (cgroupRoot) await step(() => killCgroupProcesses(cgroupRoot));
        await step(() => killShimsOf(this.runtimeSocket));
        await step(() => unmountUnder(this.dir));
        for (const netns of podNetns) {
            await step(() => {
                // Gone already when containerd stopped the sandbox; /var/run links to /run, the path the mount table shows.
                if (!fs.existsSync(netns)) return;
                const mounted = fs.realpathSync(netns);
                unmountUnder(mounted);
                fs.rmSync(mounted, { force: true });
            });
        }
        if (cgroupRoot) {
            for (const hierarchy of [...cgroupHierarchies("cgroup"), ...cgroupHierarchies("cgroup2")]) {
                await step(() => removeCgroupTree(path.join(hierarchy, cgroupRoot)));
            }
        }
        await step(() => this.ns.delete());
        for (const fixed of this.createdFixedDirs) await step(() => fs.rmSync(fixed, { recursive: true, force: true }));
        await step(() => this.plane.request("DELETE", `/api/v1/nodes/${this.name}`));
        const kernelSettings = this.kernelSettings;
        if (kernelSettings) await step(() => restoreKernelSettings(kernelSettings));
        if (failures.length > 0) throw new Error(`the real node's clean-up: ${failures.map(String).join("; ")}`, { cause: failures[0] });
    }

    /** The pods' network namespaces (bind mounts containerd made under /var/run/netns), from its sandboxes' specs. */
    private podNetworkNamespaces(): string[] {
        const paths: string[] = [];
        for (const id of this.ctr(["containers", "ls", "-q"]).split("\n").filter(Boolean)) {
            const info = JSON.parse(this.ctr(["containers", "info", id]));
            for (const ns of info.Spec?.linux?.namespaces ?? []) {
                if (ns.type === "network" && typeof ns.path === "string" && ns.path.startsWith("/var/run/netns/cni-")) paths.push(ns.path);
            }
        }
        return [...new Set(paths)];
    }

    private async deletePods(): Promise<void> {
        const selector = encodeURIComponent(`spec.nodeName=${this.name}`);
        const pods = await this.plane.request("GET", `/api/v1/pods?fieldSelector=${selector}`);
        for (const pod of pods.body.items ?? []) {
            await this.plane.request("DELETE", `/api/v1/namespaces/${pod.metadata.namespace}/pods/${pod.metadata.name}`, { gracePeriodSeconds: 0 });
        }
        await waitFor(
            `the kubelet to stop the pods of ${this.name}`,
            30_000,
            async () => (this.cgroupRoot && cgroupProcesses(this.cgroupRoot).length === 0 ? true : undefined),
            500,
        );
    }

    /** Starts `command` in the node's network namespace but the machine's mount namespace (`ip netns exec` would
     * give it a mount namespace of its own, and the kubelet's volume mounts would be invisible to containerd). */
    private startInNamespace(command: string, args: string[], log: string): Started {
        return this.group.start("nsenter", [`--net=/run/netns/${this.ns.name}`, command, ...args], { logFile: path.join(this.dir, log) });
    }
}

function tail(text = "", lines = 30): string {
    return text.trimEnd().split("\n").slice(-lines).join("\n");
}

/** A client certificate for the node (CN=system:node:<name>, O=system:nodes), the identity the Node authorizer knows. */
function issueNodeCredentials(plane: ControlPlane, name: string, dir: string): { certFile: string; keyFile: string } {
    fs.mkdirSync(dir, { recursive: true });
    const base = path.join(dir, "node");
    const run = (args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: ["ignore", "pipe", "pipe"] });
    run([
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        `${base}.key`,
        "-out",
        `${base}.csr`,
        "-subj",
        `/O=system:nodes/CN=system:node:${name}`,
    ]);
    fs.writeFileSync(`${base}.ext`, "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n");
    const { caCert, caKey } = plane.pkiFiles;
    run([
        "x509",
        "-req",
        "-in",
        `${base}.csr`,
        "-CA",
        caCert,
        "-CAkey",
        caKey,
        "-CAcreateserial",
        "-days",
        "1",
        "-sha256",
        "-extfile",
        `${base}.ext`,
        "-out",
        `${base}.crt`,
    ]);
    return { certFile: `${base}.crt`, keyFile: `${base}.key` };
}
