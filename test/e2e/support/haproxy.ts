import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import { FatalWaitError, ProcessGroup, Started, waitFor } from "./processes";

/**
 * HAProxy (Debian's) as the L4 hop that on-premises observed clusters often sit behind: TCP mode, one frontend
 * for several clusters, routed by the TLS ClientHello's SNI and passing TLS through untouched, so the front door
 * behind it still terminates TLS and verifies Envoy's client certificate. The configuration is built from plain
 * data, one line per directive.
 */

export const HAPROXY_INSTALL = "apt-get install haproxy (bash tools/setup.sh)";

/** HAProxy's inactivity timeouts (its duration syntax, e.g. `5s`, `1h`). */
export interface HaproxyTimeouts {
    connect: string;
    client: string;
    server: string;
    tunnel: string;
}

/**
 * What docs/front-doors.md tells users to set on a Thanos Store API path. `tunnel` governs an established TCP
 * connection in both directions; `client` and `server` apply until it is one (and wherever `tunnel` is unset).
 * An hour, as the front doors' stream timeout (`streamTimeoutSeconds`), so that HAProxy never cuts a silent
 * stream first.
 */
export const STORE_API_TIMEOUTS: HaproxyTimeouts = { connect: "5s", client: "1h", server: "1h", tunnel: "1h" };

/** How long HAProxy waits for a complete ClientHello before it routes. */
const INSPECT_DELAY = "5s";

/** One observed cluster behind the hop: connections whose SNI is `host` go to `server` (host:port). */
export interface SniRoute {
    name: string;
    host: string;
    server: string;
    /** Prepend a PROXY protocol v2 header to every connection to `server`. */
    sendProxyV2: boolean;
}

export interface HaproxyConfig {
    /** Where the frontend listens: address:port. */
    bind: string;
    routes: SniRoute[];
    timeouts: HaproxyTimeouts;
}

/** One line per connection: where it went and what its SNI was (`<NOSRV>` when no route matched). */
const LOG_FORMAT = "frontend=%ft client=%ci:%cp backend=%b server=%s sni=%[capture.req.hdr(0)] termination=%ts bytes_read=%B";

interface Section {
    header: string;
    directives: string[];
}

function sections(config: HaproxyConfig): Section[] {
    const { timeouts } = config;
    return [
        // Logs go to the process's stdout (HAProxy runs in the foreground), which the process group captures.
        { header: "global", directives: ["log stdout format raw local0"] },
        {
            header: "defaults",
            directives: [
                "mode tcp",
                "log global",
                // Not the connections that send nothing (the test's own readiness probe).
                "option dontlognull",
                `timeout connect ${timeouts.connect}`,
                `timeout client ${timeouts.client}`,
                `timeout server ${timeouts.server}`,
                `timeout tunnel ${timeouts.tunnel}`,
            ],
        },
        {
            header: "frontend thanos",
            directives: [
                `bind ${config.bind}`,
                `log-format "${LOG_FORMAT}"`,
                `tcp-request inspect-delay ${INSPECT_DELAY}`,
                "tcp-request content capture req.ssl_sni len 253",
                "tcp-request content accept if { req.ssl_hello_type 1 }",
                // No default_backend: a connection whose SNI no route names is closed.
                ...config.routes.map((route) => `use_backend ${route.name} if { req.ssl_sni -i ${route.host} }`),
            ],
        },
        ...config.routes.map((route) => ({
            header: `backend ${route.name}`,
            directives: [`server ${route.name} ${route.server}${route.sendProxyV2 ? " send-proxy-v2" : ""}`],
        })),
    ];
}

/** The configuration file's text: each section's header, its directives indented below it. */
export function haproxyConfig(config: HaproxyConfig): string {
    const names = config.routes.map((r) => r.name);
    if (new Set(names).size !== names.length) throw new Error(`HAProxy routes need unique names, got ${names.join(", ")}`);
    const lines = sections(config).flatMap((section) => [section.header, ...section.directives.map((d) => `    ${d}`), ""]);
    return lines.join("\n");
}

/** One connection as HAProxy logged it. */
export interface HaproxyConnection {
    /** The client's address:port (what a PROXY protocol header carries on). */
    client: string;
    backend: string;
    /** `<NOSRV>` when no route took the connection. */
    server: string;
    sni: string;
    /** Bytes the server (the front door) sent back. */
    bytesRead: number;
    /** HAProxy's two-letter termination state: `--` normal, `SC` the server refused the connection, `cD` a timeout in the data phase. */
    termination: string;
}

export class Haproxy {
    private process?: Started;
    private readonly configFile: string;

    constructor(
        private readonly dir: string,
        private readonly group: ProcessGroup,
    ) {
        fs.mkdirSync(dir, { recursive: true });
        this.configFile = path.join(dir, "haproxy.cfg");
    }

    /** Starts HAProxy in the foreground on `config` and waits until its frontend accepts connections. */
    async start(config: HaproxyConfig): Promise<void> {
        fs.writeFileSync(this.configFile, haproxyConfig(config));
        const started = (this.process = this.group.start("haproxy", ["-db", "-f", this.configFile], { logFile: path.join(this.dir, "haproxy.log") }));
        const [host, port] = [config.bind.slice(0, config.bind.lastIndexOf(":")), Number(config.bind.slice(config.bind.lastIndexOf(":") + 1))];
        await waitFor(`HAProxy listening on ${config.bind} (${started.logFile})`, 10_000, async () => {
            if (started.child.exitCode !== null) throw new FatalWaitError(`HAProxy exited: ${started.log()}`);
            return (await accepts(host, port)) ? true : undefined;
        });
    }

    log(): string {
        return this.process?.log() ?? "";
    }

    connections(): HaproxyConnection[] {
        return this.log()
            .split("\n")
            .filter((line) => line.startsWith("frontend="))
            .map((line) => {
                const fields = Object.fromEntries(line.split(" ").map((field) => field.split("=", 2) as [string, string]));
                return {
                    client: fields.client,
                    backend: fields.backend,
                    server: fields.server,
                    sni: fields.sni,
                    bytesRead: Number(fields.bytes_read),
                    termination: fields.termination,
                };
            });
    }

    async stop(): Promise<void> {
        await this.process?.stop();
    }
}

function accepts(host: string, port: number): Promise<boolean> {
    return new Promise((resolve) => {
        const socket = net.connect({ host, port }, () => {
            socket.destroy();
            resolve(true);
        });
        socket.on("error", () => resolve(false));
    });
}
