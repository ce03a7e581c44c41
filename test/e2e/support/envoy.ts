import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as http from "node:http";
import * as path from "node:path";
import type { EnvoyModel, ObservedClusterModel } from "../../../components/config/model";
import { BootstrapPaths, buildEnvoyDocuments, FILES, POD_PATHS, TLS_KEYS, toYaml } from "../../../components/observer/bootstrap";
import * as YAML from "yaml";
import { envoyArgs } from "../../../components/observer/manifests";
import { ProcessGroup, Started, waitFor } from "./processes";

/**
 * A real Envoy running the program's bootstrap. Only the file paths and the listen address differ from
 * the pod, and they are set through the builder's options. Config and TLS files are laid out the way
 * Kubernetes lays out ConfigMap and Secret volumes (`..data` symlink), so an update swaps them the same way.
 */

export interface TlsFiles {
    certificate: string;
    privateKey: string;
    ca: string;
}

/** Writes a Secret-volume-like directory: `..<version>/files`, `..data -> ..<version>`, `file -> ..data/file`. */
export function writeSecretVolume(dir: string, files: Record<string, string>): void {
    fs.mkdirSync(dir, { recursive: true });
    const version = `..${Date.now()}_${Math.round(performance.now() * 1000)}`;
    const versionDir = path.join(dir, version);
    fs.mkdirSync(versionDir);
    for (const [name, content] of Object.entries(files)) {
        fs.writeFileSync(path.join(versionDir, name), content, { mode: 0o640 });
    }
    // The atomic step: a new ..data symlink renamed over the old one, as kubelet's AtomicWriter does.
    const tmp = path.join(dir, "..data_tmp");
    fs.rmSync(tmp, { force: true });
    fs.symlinkSync(version, tmp);
    const previous = fs.existsSync(path.join(dir, "..data")) ? fs.readlinkSync(path.join(dir, "..data")) : undefined;
    fs.renameSync(tmp, path.join(dir, "..data"));
    for (const name of Object.keys(files)) {
        const link = path.join(dir, name);
        if (!fs.existsSync(link)) fs.symlinkSync(path.join("..data", name), link);
    }
    if (previous !== undefined) fs.rmSync(path.join(dir, previous), { recursive: true, force: true });
}

export interface EnvoyOptions {
    envoy: EnvoyModel;
    clusters: ObservedClusterModel[];
    workDir: string;
    tls: TlsFiles;
    /** Changes to the documents (file name → object) for negative tests, never to YAML text. */
    mutate?: (documents: Record<string, any>) => void;
    /** Run these documents (file name → object, for the given paths) instead of the builder's, e.g. a rendered ConfigMap. */
    documents?: (paths: BootstrapPaths) => Record<string, object>;
}

export class Envoy {
    readonly paths: BootstrapPaths;
    private process?: Started;

    constructor(
        private readonly options: EnvoyOptions,
        private readonly group: ProcessGroup,
    ) {
        this.paths = { configDir: path.join(options.workDir, "config"), tlsDir: path.join(options.workDir, "tls") };
    }

    /** The ConfigMap's documents for `clusters`, with the test's paths and loopback listeners. */
    private documents(clusters: ObservedClusterModel[]): Record<string, any> {
        const documents =
            this.options.documents?.(this.paths) ?? buildEnvoyDocuments({ envoy: this.options.envoy, clusters, paths: this.paths, listenAddress: "127.0.0.1" });
        this.options.mutate?.(documents);
        return documents;
    }

    /** Writes the config files as the ConfigMap volume would, and the TLS files as the Secret volume would. */
    writeFiles(): string {
        this.reconfigure(this.options.clusters);
        this.rotateTls(this.options.tls);
        return path.join(this.paths.configDir, FILES.bootstrap);
    }

    /** kubelet's update of the ConfigMap volume after `pulumi up` changed the observed clusters: one atomic `..data` swap. */
    reconfigure(clusters: ObservedClusterModel[]): void {
        const documents = this.documents(clusters);
        writeSecretVolume(this.paths.configDir, Object.fromEntries(Object.entries(documents).map(([name, doc]) => [name, toYaml(doc)])));
    }

    /**
     * One file with the same listeners and clusters inlined as static resources (the layout before Envoy watched
     * LDS/CDS files). `--mode validate` checks a bootstrap but does not read the LDS and CDS files it points at,
     * so validation runs on this file; the benchmark compares the two layouts' footprint.
     */
    writeStaticFile(): string {
        this.writeFiles();
        const documents = this.documents(this.options.clusters);
        const bootstrap = structuredClone(documents[FILES.bootstrap]);
        delete bootstrap.dynamic_resources;
        const strip = (resource: Record<string, unknown>) => Object.fromEntries(Object.entries(resource).filter(([key]) => key !== "@type"));
        bootstrap.static_resources.listeners.push(...documents[FILES.listeners].resources.map(strip));
        bootstrap.static_resources.clusters.push(...documents[FILES.clusters].resources.map(strip));
        const file = path.join(this.options.workDir, "static.yaml");
        fs.writeFileSync(file, toYaml(bootstrap));
        return file;
    }

    rotateTls(tls: TlsFiles): void {
        writeSecretVolume(this.paths.tlsDir, { [TLS_KEYS.certificate]: tls.certificate, [TLS_KEYS.privateKey]: tls.privateKey, [TLS_KEYS.ca]: tls.ca });
    }

    /** `inlineResources`: run the static-resources file instead of the watched LDS/CDS files (benchmark baseline). */
    async start(options: { inlineResources?: boolean } = {}): Promise<void> {
        this.writeFiles();
        const log = path.join(this.options.workDir, "envoy.log");
        const args = envoyArgs(this.options.envoy, this.paths);
        if (options.inlineResources) args[args.indexOf("--config-path") + 1] = this.writeStaticFile();
        this.process = this.group.start("envoy", args, { logFile: log });
        const child = this.process.child;
        await waitFor(`Envoy ready on the metrics port (${log})`, 20_000, async () => {
            if (child.exitCode !== null) throw new Error(`envoy exited ${child.exitCode}: ${this.log().slice(-2000)}`);
            return (await httpGet(this.options.envoy.metricsPort, "/ready")).status === 200 ? true : undefined;
        });
    }

    async stop(): Promise<void> {
        await this.process?.stop();
    }

    log(): string {
        return this.process?.log() ?? "";
    }

    get adminPort(): number {
        return this.options.envoy.adminPort;
    }

    get metricsPort(): number {
        return this.options.envoy.metricsPort;
    }

    /** The running Envoy's process id (tests check it was never restarted). */
    get pid(): number | undefined {
        return this.process?.child.exitCode === null ? this.process.child.pid : undefined;
    }

    /** Counter values from the admin interface (loopback), e.g. `cluster.thanos_cl1.ssl.fail_verify_san`. */
    async stats(): Promise<Record<string, number>> {
        const res = await httpGet(this.options.envoy.adminPort, "/stats?format=json");
        const stats: Record<string, number> = {};
        for (const s of JSON.parse(res.body).stats as { name?: string; value?: number }[]) {
            if (s.name !== undefined && typeof s.value === "number") stats[s.name] = s.value;
        }
        return stats;
    }

    async stat(name: string): Promise<number> {
        return (await this.stats())[name] ?? 0;
    }
}

/**
 * The documents of a deployed Envoy ConfigMap (`data`, as rendered or read from an API server) for an Envoy run by a
 * test: the pod's file paths mapped to `paths` and its wildcard listen address to the loopback (object traversal, no
 * text edits).
 */
export function deployedDocuments(configMapData: Record<string, string>, paths: BootstrapPaths): Record<string, object> {
    const map = (doc: unknown): any => {
        if (typeof doc === "string") {
            if (doc.startsWith(POD_PATHS.tlsDir)) return paths.tlsDir + doc.slice(POD_PATHS.tlsDir.length);
            if (doc.startsWith(POD_PATHS.configDir)) return paths.configDir + doc.slice(POD_PATHS.configDir.length);
            return doc === "0.0.0.0" ? "127.0.0.1" : doc;
        }
        if (Array.isArray(doc)) return doc.map(map);
        if (doc !== null && typeof doc === "object") return Object.fromEntries(Object.entries(doc).map(([k, v]) => [k, map(v)]));
        return doc;
    };
    return Object.fromEntries(Object.entries(configMapData).map(([name, text]) => [name, map(YAML.parse(text))]));
}

export function httpGet(port: number, pathname: string): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
        const req = http.get({ host: "127.0.0.1", port, path: pathname, timeout: 2000 }, (res) => {
            let body = "";
            res.setEncoding("utf8");
            res.on("data", (d) => (body += d));
            res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
        });
        req.on("timeout", () => req.destroy(new Error("timeout")));
        req.on("error", reject);
    });
}

/** Runs `envoy --mode validate` on a bootstrap file; returns Envoy's verdict. */
export function validate(file: string): { ok: boolean; output: string } {
    const result = spawnSync("envoy", ["--mode", "validate", "-c", file, "--log-level", "warn"], { encoding: "utf8", timeout: 60_000 });
    return { ok: result.status === 0, output: `${result.stdout}${result.stderr}` };
}
