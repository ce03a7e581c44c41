import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as https from "node:https";
import * as os from "node:os";
import * as path from "node:path";
import * as YAML from "yaml";
import type { Connection } from "./config/model";

/**
 * A read-only GET against a cluster's API server, with the credentials its Kubernetes provider uses (the same
 * kubeconfig, context and auth: client certificate, token, basic or an exec plugin). It lets the program check the
 * cluster before registering anything; whatever it cannot do (another auth kind, a proxy, an unreachable server)
 * comes back as `unavailable`, and the provider then reports the problem as it would without the check.
 */

export type GetResult = { status: number; body: unknown } | { unavailable: string };

/** A kubeconfig list entry: `{ name, cluster | user | context }`. */
type Named = { name: string } & Record<string, unknown>;

interface KubeconfigDoc {
    "current-context"?: string;
    clusters?: Named[];
    users?: Named[];
    contexts?: Named[];
}

/** One kubeconfig's entries, with the directory its relative file paths start from. */
interface Source {
    doc: KubeconfigDoc;
    dir: string;
}

const TIMEOUT_MS = 10_000;

export async function kubeGet(connection: Connection, pathname: string): Promise<GetResult> {
    try {
        const sources = kubeconfigSources(connection);
        if (sources.length === 0) return { unavailable: "no kubeconfig" };
        return await request(resolve(sources, connection.kind === "none" ? undefined : connection.context), pathname);
    } catch (err) {
        return { unavailable: (err as Error).message };
    }
}

/** The provider's loading rules: the kubeconfig content, else $KUBECONFIG (a path list, first entry wins), else ~/.kube/config. */
function kubeconfigSources(connection: Connection): Source[] {
    if (connection.kind === "kubeconfig") return [{ doc: YAML.parse(connection.kubeconfig) as KubeconfigDoc, dir: process.cwd() }];
    const files = (process.env.KUBECONFIG ?? "").split(path.delimiter).filter((f) => f !== "");
    const paths = files.length > 0 ? files : [path.join(os.homedir(), ".kube", "config")];
    return paths.filter((f) => fs.existsSync(f)).map((f) => ({ doc: (YAML.parse(fs.readFileSync(f, "utf8")) ?? {}) as KubeconfigDoc, dir: path.dirname(f) }));
}

interface Resolved {
    cluster: Record<string, unknown>;
    user: Record<string, unknown>;
    clusterDir: string;
    userDir: string;
}

function resolve(sources: Source[], context: string | undefined): Resolved {
    const find = (list: "clusters" | "users" | "contexts", name: unknown) => {
        for (const s of sources) {
            const entry = s.doc[list]?.find((e) => e.name === name);
            if (entry !== undefined) return { value: (entry[list.slice(0, -1)] ?? {}) as Record<string, unknown>, dir: s.dir };
        }
        throw new Error(`kubeconfig has no ${list.slice(0, -1)} ${String(name)}`);
    };
    const contextName = context ?? sources.find((s) => s.doc["current-context"])?.doc["current-context"];
    const ctx = find("contexts", contextName).value;
    const cluster = find("clusters", ctx.cluster);
    const user = ctx.user === undefined ? { value: {}, dir: cluster.dir } : find("users", ctx.user);
    return { cluster: cluster.value, user: user.value, clusterDir: cluster.dir, userDir: user.dir };
}

function pem(data: unknown, file: unknown, dir: string): string | undefined {
    if (typeof data === "string") return Buffer.from(data, "base64").toString("utf8");
    if (typeof file === "string") return fs.readFileSync(path.resolve(dir, file), "utf8");
    return undefined;
}

/** Runs a client-go exec credential plugin (aws, gke-gcloud-auth-plugin, kubelogin...) as the provider would. */
function execCredential(exec: Record<string, unknown>): { token?: string; cert?: string; key?: string } {
    const env = { ...process.env };
    for (const e of (exec.env as { name: string; value: string }[] | undefined) ?? []) env[e.name] = e.value;
    env.KUBERNETES_EXEC_INFO = JSON.stringify({ apiVersion: exec.apiVersion, kind: "ExecCredential", spec: { interactive: false } });
    const out = execFileSync(String(exec.command), ((exec.args as string[] | undefined) ?? []).map(String), {
        env,
        encoding: "utf8",
        stdio: ["ignore", "pipe", "ignore"],
        timeout: TIMEOUT_MS,
    });
    const status = (JSON.parse(out) as { status?: Record<string, string> }).status ?? {};
    return { token: status.token, cert: status.clientCertificateData, key: status.clientKeyData };
}

function request({ cluster, user, clusterDir, userDir }: Resolved, pathname: string): Promise<GetResult> {
    if (cluster["proxy-url"] !== undefined || user["auth-provider"] !== undefined) {
        return Promise.resolve({ unavailable: "proxy-url and auth-provider are not supported" });
    }
    const headers: Record<string, string> = { Accept: "application/json" };
    const tokenFile = user.tokenFile;
    const token =
        typeof user.token === "string"
            ? user.token
            : typeof tokenFile === "string"
              ? fs.readFileSync(path.resolve(userDir, tokenFile), "utf8").trim()
              : undefined;
    let cert = pem(user["client-certificate-data"], user["client-certificate"], userDir);
    let key = pem(user["client-key-data"], user["client-key"], userDir);
    let bearer = token;
    if (user.exec !== undefined && user.exec !== null) {
        const credential = execCredential(user.exec as Record<string, unknown>);
        bearer = credential.token ?? bearer;
        cert = credential.cert ?? cert;
        key = credential.key ?? key;
    }
    if (bearer !== undefined) headers.Authorization = `Bearer ${bearer}`;
    else if (typeof user.username === "string")
        headers.Authorization = `Basic ${Buffer.from(`${user.username}:${String(user.password ?? "")}`).toString("base64")}`;
    const server = new URL(String(cluster.server));
    // A server URL may carry a path prefix (a proxy such as Rancher's); the API path goes under it.
    const url = new URL(server.pathname.replace(/\/$/, "") + pathname, server);
    return new Promise((done) => {
        const req = https.request(
            url,
            {
                method: "GET",
                headers,
                ca: pem(cluster["certificate-authority-data"], cluster["certificate-authority"], clusterDir),
                cert,
                key,
                servername: typeof cluster["tls-server-name"] === "string" ? cluster["tls-server-name"] : undefined,
                rejectUnauthorized: cluster["insecure-skip-tls-verify"] !== true,
                timeout: TIMEOUT_MS,
            },
            (res) => {
                let text = "";
                res.setEncoding("utf8");
                res.on("data", (chunk: string) => (text += chunk));
                res.on("end", () => {
                    try {
                        done({ status: res.statusCode ?? 0, body: text === "" ? undefined : JSON.parse(text) });
                    } catch {
                        done({ status: res.statusCode ?? 0, body: text });
                    }
                });
            },
        );
        req.on("timeout", () => req.destroy(new Error("timed out")));
        req.on("error", (err) => done({ unavailable: err.message }));
        req.end();
    });
}
