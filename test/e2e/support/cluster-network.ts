import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { ControlPlane } from "./kube";
import { Forward, NetworkNamespace } from "./netns";
import { FatalWaitError, Started, waitFor } from "./processes";

/**
 * The observer cluster's network as a pod sees it, inside a test's network namespace: the cluster's DNS
 * (real CoreDNS with its kubernetes plugin, watching a real API server) and the Services' ClusterIPs
 * (what kube-proxy does: a connection to ClusterIP:port reaches the selected pod's targetPort).
 */

const ROOT = path.resolve(__dirname, "../../..");
export const COREDNS_BUILD_COMMAND = "bash tools/coredns/build.sh";

/** Where tools/coredns/build.sh puts the binary (asked of the script; builds nothing). */
export function corednsBinary(): string {
    const out = execFileSync("bash", [path.join(ROOT, "tools/coredns/build.sh"), "--print-path"], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    return out.trim().split("\n").pop() ?? "";
}

/** The CoreDNS binary, or `{ skip }` with the command that builds it. Under CI=true a missing binary throws. */
export function requireCoreDns(): string | { skip: string } {
    const binary = corednsBinary();
    if (fs.existsSync(binary)) return binary;
    const message = `CoreDNS missing (${binary}); build it with: ${COREDNS_BUILD_COMMAND}`;
    if (process.env.CI === "true") throw new Error(`${message} (CI never skips end-to-end tests)`);
    return { skip: message };
}

/** One Corefile directive: `name args... { block }`. */
export interface Directive {
    name: string;
    args?: string[];
    block?: Directive[];
}

export function corefileText(directives: Directive[], indent = ""): string {
    return directives
        .map((d) => {
            const head = `${indent}${[d.name, ...(d.args ?? [])].join(" ")}`;
            return d.block ? `${head} {\n${corefileText(d.block, `${indent}    `)}${indent}}\n` : `${head}\n`;
        })
        .join("");
}

/**
 * The cluster DNS part of a cluster's Corefile: the kubernetes plugin, authoritative for `zones`, reading the
 * API server of `context` in `kubeconfig`. No cache plugin: every answer is the API server's current state.
 */
export function clusterDnsCorefile(options: { zones: string[]; kubeconfig: string; context: string }): string {
    return corefileText([
        {
            name: ".:53",
            block: [
                { name: "errors" },
                { name: "log" },
                { name: "kubernetes", args: options.zones, block: [{ name: "kubeconfig", args: [options.kubeconfig, options.context] }] },
            ],
        },
    ]);
}

/** CoreDNS on port 53 of a network namespace; the namespace's resolv.conf names it. */
export class CoreDns {
    private process?: Started;
    private starts = 0;

    constructor(
        private readonly ns: NetworkNamespace,
        readonly dir: string,
        private readonly binary: string,
    ) {}

    async start(corefile: string): Promise<void> {
        fs.mkdirSync(this.dir, { recursive: true });
        const run = ++this.starts;
        const file = path.join(this.dir, `Corefile-${run}`);
        fs.writeFileSync(file, corefile);
        this.ns.writeEtc("resolv.conf", "nameserver 127.0.0.1\n");
        const proc = (this.process = this.ns.start(this.binary, ["-conf", file], path.join(this.dir, `coredns-${run}.log`)));
        // CoreDNS prints its version once every server listens (after the kubernetes plugin's first sync).
        await waitFor("CoreDNS serving", 30_000, async () => {
            if (proc.child.exitCode !== null) throw new FatalWaitError(`coredns exited: ${this.log()}`);
            return this.log().includes("CoreDNS-") ? true : undefined;
        });
    }

    /** A cluster's DNS with another configuration: stops this CoreDNS and starts it with `corefile`. */
    async restart(corefile: string): Promise<void> {
        await this.process?.stop();
        await this.start(corefile);
    }

    log(): string {
        return this.process?.log() ?? "";
    }
}

/**
 * What kube-proxy does for the Services selected by `labelSelector` on `plane`, inside `ns`: each Service's
 * ClusterIP becomes a local address there, and a connection to ClusterIP:port is forwarded to the pod's
 * targetPort, which here is the real Envoy on the machine's 127.0.0.1. `sync()` after every change, as
 * kube-proxy follows the API server.
 */
export class ServiceProxy {
    private readonly forwards = new Map<string, Forward>();

    constructor(
        private readonly ns: NetworkNamespace,
        private readonly plane: ControlPlane,
        private readonly labelSelector: string,
        private readonly skipService: (name: string) => boolean = () => false,
    ) {}

    async sync(): Promise<void> {
        const res = await this.plane.request("GET", `/api/v1/services?labelSelector=${encodeURIComponent(this.labelSelector)}`);
        if (res.status !== 200) throw new Error(`listing Services: HTTP ${res.status}`);
        const wanted = new Map<string, { clusterIP: string; port: number; targetPort: number }>();
        for (const service of res.body.items) {
            if (this.skipService(service.metadata.name)) continue;
            for (const p of service.spec.ports) {
                if (typeof p.targetPort !== "number")
                    throw new Error(`Service ${service.metadata.name}: a named targetPort (${p.targetPort}) is not supported here`);
                wanted.set(`${service.spec.clusterIP}:${p.port}->${p.targetPort}`, {
                    clusterIP: service.spec.clusterIP,
                    port: p.port,
                    targetPort: p.targetPort,
                });
            }
        }
        for (const [key, forward] of this.forwards) {
            if (!wanted.has(key)) {
                await forward.stop();
                this.forwards.delete(key);
            }
        }
        for (const [key, { clusterIP, port, targetPort }] of wanted) {
            if (this.forwards.has(key)) continue;
            this.ns.addAddress(clusterIP);
            this.forwards.set(key, await this.ns.forwardToHost(clusterIP, port, targetPort));
        }
    }
}
