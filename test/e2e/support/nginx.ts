import * as fs from "node:fs";
import * as path from "node:path";
import { IngressNginxConfigMap, ingressNginxHttpDirectives } from "./ingress-nginx-configmap";
import { ProcessGroup, Started, waitFor } from "./processes";

/**
 * Turns one of our Ingress objects (and the Secrets it references) into the nginx configuration that
 * ingress-nginx renders for it, following ingress-nginx's nginx.tmpl: `listen ... ssl http2`,
 * `server_name <host>`, the TLS Secret as `ssl_certificate`, the auth-tls annotations as
 * `ssl_client_certificate` / `ssl_verify_client` / `ssl_verify_depth`, `auth-tls-match-cn` as the `$ssl_client_s_dn`
 * check that answers 403, `grpc_pass` for a GRPC backend (through an upstream block with ingress-nginx's keepalive),
 * and the proxy timeouts as `grpc_*_timeout`. An annotation it does not know is an error, so a new
 * annotation cannot go untested.
 */

export interface IngressObject {
    metadata: { name: string; namespace: string; annotations: Record<string, string> };
    spec: {
        ingressClassName?: string;
        tls: { hosts: string[]; secretName: string }[];
        rules: {
            host: string;
            http: { paths: { path: string; pathType: string; backend: { service: { name: string; port: { name?: string; number?: number } } } }[] };
        }[];
    };
}

/** Secret data by `<namespace>/<name>`, as a cluster would hold it. */
export type SecretStore = Record<string, Record<string, string>>;

export interface TranslateOptions {
    /** Loopback port that stands for the ingress controller's 443. */
    listenPort: number;
    /** Where a Service's port is reachable on this machine (stands in for the Service's endpoints). */
    resolveService(namespace: string, service: string, port: { name?: string; number?: number }): string;
    /** Directory for the certificate files, logs and temp paths. */
    workDir: string;
    /** The controller's ConfigMap: its TLS, HTTP/2 and gRPC keys (ingress-nginx's defaults for absent ones). */
    configMap?: IngressNginxConfigMap;
    /** Certificate for the catch-all server, as ingress-nginx's "fake certificate" for unknown hosts. */
    defaultCertificate: { certificate: string; privateKey: string };
}

interface Rendered {
    server: string[];
    location: string[];
    grpc: boolean;
}

/** ingress-nginx defaults that our annotations leave alone (its config defaults). */
const INGRESS_NGINX_DEFAULTS = { proxyConnectTimeout: 5, proxyReadTimeout: 60, proxySendTimeout: 60, verifyDepth: 1 };

/**
 * ingress-nginx's upstream keepalive defaults (upstream-keepalive-connections, -time, -timeout, -requests): every
 * backend sits behind its `upstream_balancer` block, so nginx reuses its connections to the sidecar rather than
 * opening one per call. Its Lua balancer picks the endpoint; with one endpoint a `server` line does the same.
 */
const UPSTREAM_KEEPALIVE = { connections: 320, time: "1h", timeoutSeconds: 60, requests: 10000 };

type AnnotationHandler = (value: string, out: Rendered, ctx: { namespace: string; secrets: SecretStore; workDir: string; ingress: string }) => void;

const PREFIX = "nginx.ingress.kubernetes.io/";

function seconds(name: string, value: string): number {
    if (!/^\d+$/.test(value)) throw new Error(`${PREFIX}${name}: ingress-nginx expects whole seconds, got ${JSON.stringify(value)}`);
    return Number(value);
}

const HANDLERS: Record<string, AnnotationHandler> = {
    "backend-protocol": (value, out) => {
        if (value !== "GRPC") throw new Error(`translator only knows backend-protocol GRPC, got ${value}`);
        out.grpc = true;
    },
    "auth-tls-secret": (value, out, ctx) => {
        const [namespace, name] = value.includes("/") ? value.split("/") : [ctx.namespace, value];
        const secret = ctx.secrets[`${namespace}/${name}`];
        if (secret === undefined || secret["ca.crt"] === undefined) {
            // ingress-nginx refuses the server with 403 when the auth-tls Secret is unusable.
            throw new Error(`auth-tls-secret ${value}: no such Secret with ca.crt`);
        }
        const file = path.join(ctx.workDir, `${ctx.ingress}-client-ca.crt`);
        fs.writeFileSync(file, secret["ca.crt"]);
        out.server.push(`ssl_client_certificate ${file};`);
    },
    "auth-tls-verify-client": (value, out) => {
        if (!["on", "off", "optional", "optional_no_ca"].includes(value)) throw new Error(`auth-tls-verify-client: unknown value ${value}`);
        out.server.push(`ssl_verify_client ${value};`);
    },
    "auth-tls-verify-depth": (value, out) => {
        out.server.push(`ssl_verify_depth ${seconds("auth-tls-verify-depth", value)};`);
    },
    "auth-tls-match-cn": (value, out) => {
        // ingress-nginx refuses a value without the CN= prefix (CommonNameAnnotationValidator) and renders the rest of
        // nginx.tmpl's server block check with Go's quote.
        if (!value.startsWith("CN=")) throw new Error(`auth-tls-match-cn: ingress-nginx requires the prefix CN=, got ${value}`);
        out.server.push(`if ( $ssl_client_s_dn !~ ${JSON.stringify(value)} ) { return 403 "client certificate unauthorized"; }`);
    },
    "proxy-read-timeout": (value, out) => {
        out.location.push(`grpc_read_timeout ${seconds("proxy-read-timeout", value)}s;`);
    },
    "proxy-send-timeout": (value, out) => {
        out.location.push(`grpc_send_timeout ${seconds("proxy-send-timeout", value)}s;`);
    },
};

/** Every annotation the translator renders (any other is an error), by its full key. */
export const TRANSLATED_ANNOTATIONS: readonly string[] = Object.keys(HANDLERS).map((name) => `${PREFIX}${name}`);

export function translateIngress(ingress: IngressObject, secrets: SecretStore, options: TranslateOptions): string {
    const { metadata, spec } = ingress;
    const rendered: Rendered = { server: [], location: [], grpc: false };
    const applied = new Set<string>();
    for (const [key, value] of Object.entries(metadata.annotations)) {
        if (!key.startsWith(PREFIX) || HANDLERS[key.slice(PREFIX.length)] === undefined) {
            throw new Error(`the nginx translator does not know the annotation ${key}; teach test/e2e/support/nginx.ts how ingress-nginx renders it`);
        }
        HANDLERS[key.slice(PREFIX.length)](value, rendered, { namespace: metadata.namespace, secrets, workDir: options.workDir, ingress: metadata.name });
        applied.add(key.slice(PREFIX.length));
    }
    if (!applied.has("proxy-read-timeout")) rendered.location.push(`grpc_read_timeout ${INGRESS_NGINX_DEFAULTS.proxyReadTimeout}s;`);
    if (!applied.has("proxy-send-timeout")) rendered.location.push(`grpc_send_timeout ${INGRESS_NGINX_DEFAULTS.proxySendTimeout}s;`);
    if (applied.has("auth-tls-secret") && !applied.has("auth-tls-verify-depth"))
        rendered.server.push(`ssl_verify_depth ${INGRESS_NGINX_DEFAULTS.verifyDepth};`);
    if (!rendered.grpc) throw new Error("the translator only renders GRPC backends");

    if (spec.rules.length !== 1 || spec.rules[0].http.paths.length !== 1 || spec.tls.length !== 1) {
        throw new Error("the translator renders one rule with one path and one TLS entry");
    }
    const rule = spec.rules[0];
    const tls = spec.tls[0];
    if (!tls.hosts.includes(rule.host)) throw new Error(`TLS hosts ${tls.hosts.join(",")} do not include the rule host ${rule.host}`);
    const tlsSecret = secrets[`${metadata.namespace}/${tls.secretName}`];
    if (tlsSecret?.["tls.crt"] === undefined || tlsSecret["tls.key"] === undefined) {
        throw new Error(`TLS Secret ${metadata.namespace}/${tls.secretName} missing or without tls.crt/tls.key`);
    }
    const certFile = path.join(options.workDir, `${metadata.name}-server.crt`);
    const keyFile = path.join(options.workDir, `${metadata.name}-server.key`);
    fs.writeFileSync(certFile, tlsSecret["tls.crt"]);
    fs.writeFileSync(keyFile, tlsSecret["tls.key"], { mode: 0o600 });
    const fakeCert = path.join(options.workDir, "default-server.crt");
    const fakeKey = path.join(options.workDir, "default-server.key");
    fs.writeFileSync(fakeCert, options.defaultCertificate.certificate);
    fs.writeFileSync(fakeKey, options.defaultCertificate.privateKey, { mode: 0o600 });

    const p = rule.http.paths[0];
    if (p.path !== "/" || p.pathType !== "Prefix") throw new Error(`translator renders path / Prefix only, got ${p.path} ${p.pathType}`);
    const upstream = options.resolveService(metadata.namespace, p.backend.service.name, p.backend.service.port);
    const work = options.workDir;
    const listen = `listen 127.0.0.1:${options.listenPort} ssl http2`;
    const user = process.getuid?.() === 0 ? "user root;" : "";
    return `# rendered from Ingress ${metadata.namespace}/${metadata.name} by test/e2e/support/nginx.ts
${user}
worker_processes 1;
pid ${work}/nginx.pid;
error_log ${work}/error.log info;
daemon off;
events { worker_connections 1024; }
http {
    client_body_temp_path ${work}/client_body;
    proxy_temp_path ${work}/proxy;
    fastcgi_temp_path ${work}/fastcgi;
    uwsgi_temp_path ${work}/uwsgi;
    scgi_temp_path ${work}/scgi;
    # Test observation: what nginx saw of each request.
    log_format observed '$ssl_server_name|$http_host|$status|$ssl_protocol|$ssl_client_verify|$ssl_client_serial|$request_time';
    access_log ${work}/access.log observed;
    # ingress-nginx's ConfigMap keys (its defaults where unset), then its other defaults.
    ${ingressNginxHttpDirectives(options.configMap).join("\n    ")}
    client_body_timeout 60s;
    keepalive_timeout 75s;
    keepalive_requests 1000;

    upstream upstream_balancer {
        server ${upstream};
        keepalive ${UPSTREAM_KEEPALIVE.connections};
        keepalive_time ${UPSTREAM_KEEPALIVE.time};
        keepalive_timeout ${UPSTREAM_KEEPALIVE.timeoutSeconds}s;
        keepalive_requests ${UPSTREAM_KEEPALIVE.requests};
    }

    # ingress-nginx's catch-all server for unknown hosts, with its own certificate.
    server {
        ${listen} default_server;
        ssl_certificate ${fakeCert};
        ssl_certificate_key ${fakeKey};
        return 404;
    }

    server {
        ${listen};
        server_name ${rule.host};
        ssl_certificate ${certFile};
        ssl_certificate_key ${keyFile};
        ${rendered.server.join("\n        ")}

        location / {
            grpc_set_header Host $http_host;
            grpc_set_header ssl-client-verify $ssl_client_verify;
            grpc_set_header ssl-client-subject-dn $ssl_client_s_dn;
            grpc_set_header ssl-client-issuer-dn $ssl_client_i_dn;
            # Test observation headers, not rendered by ingress-nginx.
            grpc_set_header x-observed-sni $ssl_server_name;
            grpc_set_header x-observed-client-serial $ssl_client_serial;
            grpc_connect_timeout ${INGRESS_NGINX_DEFAULTS.proxyConnectTimeout}s;
            ${rendered.location.join("\n            ")}
            grpc_pass grpc://upstream_balancer;
        }
    }
}
`;
}

export interface AccessLogEntry {
    sni: string;
    host: string;
    status: number;
    protocol: string;
    clientVerify: string;
    clientSerial: string;
}

export class Nginx {
    private process?: Started;

    constructor(
        readonly workDir: string,
        readonly port: number,
        private readonly group: ProcessGroup,
    ) {}

    get configFile(): string {
        return path.join(this.workDir, "nginx.conf");
    }

    async start(config: string): Promise<void> {
        fs.writeFileSync(this.configFile, config);
        this.process = this.group.start("nginx", ["-p", this.workDir, "-c", this.configFile], { logFile: path.join(this.workDir, "stdout.log") });
        const child = this.process.child;
        await waitFor(`nginx on port ${this.port} (${this.workDir}/error.log)`, 10_000, async () => {
            if (child.exitCode !== null) throw new Error(`nginx exited: ${this.errorLog()}`);
            return this.errorLog().includes("start worker process") ? true : undefined;
        });
    }

    /** Graceful reload: new workers, old connections closed once idle (what ingress-nginx does on changes). */
    reload(): void {
        this.process?.child.kill("SIGHUP");
    }

    /** A new configuration (e.g. renewed certificate files), applied by a graceful reload. */
    reconfigure(config: string): void {
        fs.writeFileSync(this.configFile, config);
        this.reload();
    }

    async stop(): Promise<void> {
        await this.process?.stop();
    }

    /** The master and the workers it forked. */
    processes(): number[] {
        const master = Number(fs.readFileSync(path.join(this.workDir, "nginx.pid"), "utf8").trim());
        const childrenFile = `/proc/${master}/task/${master}/children`;
        const workers = fs.existsSync(childrenFile) ? fs.readFileSync(childrenFile, "utf8").trim().split(/\s+/).filter(Boolean).map(Number) : [];
        return [master, ...workers];
    }

    errorLog(): string {
        const file = path.join(this.workDir, "error.log");
        return fs.existsSync(file) ? fs.readFileSync(file, "utf8") : "";
    }

    accessLog(): AccessLogEntry[] {
        const file = path.join(this.workDir, "access.log");
        if (!fs.existsSync(file)) return [];
        return fs
            .readFileSync(file, "utf8")
            .split("\n")
            .filter(Boolean)
            .map((line) => {
                const [sni, host, status, protocol, clientVerify, clientSerial] = line.split("|");
                return { sni, host, status: Number(status), protocol, clientVerify, clientSerial };
            });
    }
}
