import { X509Certificate } from "node:crypto";
import * as dns from "node:dns";
import * as http2 from "node:http2";
import * as net from "node:net";
import * as path from "node:path";
import * as tls from "node:tls";
import * as protoLoader from "@grpc/proto-loader";
import type { Credentials, StatusTarget } from "./targets";

/**
 * One observed cluster, hop by hop, the way Envoy reaches it: DNS, TCP, the TLS handshake with Envoy's client
 * certificate (server chain, SAN, expiry), whether the front door accepts that certificate, and Thanos' Info
 * call to the sidecar behind it. The first failing hop ends the walk and names itself.
 */

export const HOPS = ["DNS", "TCP", "TLS", "mTLS", "gRPC"] as const;
export type HopName = (typeof HOPS)[number];

export interface Hop {
    hop: HopName;
    ok: boolean;
    /** What was seen (ok) or what is wrong (failed), in words an operator acts on. */
    detail: string;
    ms: number;
}

export interface SidecarInfo {
    componentType: string;
    /** External labels, `name="value"` joined, one string per label set. */
    labelSets: string[];
    /** Data range in ms since the epoch. Undefined: no bound (a sidecar reports its upper bound as "up to now"). */
    minTime?: number;
    maxTime?: number;
}

export interface ServerCertificate {
    subject: string;
    issuer: string;
    sans: string[];
    notAfter: string;
    daysToExpiry: number;
    /** Subjects from the leaf up, as the server sent them. */
    chain: string[];
}

export interface ClusterStatus {
    name: string;
    host: string;
    address: string;
    ok: boolean;
    hops: Hop[];
    /** `<hop>: <detail>` of the failing hop. */
    failure?: string;
    server?: ServerCertificate;
    sidecar?: SidecarInfo;
    /** Round trip of the Info call, the closest to what a querier sees. */
    latencyMs?: number;
}

export interface ProbeOptions {
    /** Bound of each hop. */
    timeoutMs: number;
    now: Date;
}

const INFO_METHOD = "/thanos.info.Info/Info";
const infoDefinition = protoLoader.loadSync(path.join(__dirname, "thanos-info.proto"), { keepCase: true, longs: Number, defaults: true });
const infoMethod = (infoDefinition["thanos.info.Info"] as protoLoader.ServiceDefinition).Info;

const DAY_MS = 86_400_000;

function daysBetween(from: Date, to: Date): number {
    return Math.floor((to.getTime() - from.getTime()) / DAY_MS);
}

/** Fails a hop: thrown inside the walk, caught once in `probeCluster`. */
class HopFailure extends Error {
    constructor(
        readonly hop: HopName,
        detail: string,
        /** The front door answered over HTTP/2 without refusing the client certificate: the mTLS hop passed. */
        readonly frontDoorAnswered = false,
    ) {
        super(detail);
    }
}

function withTimeout<T>(what: HopName, ms: number, work: Promise<T>, onTimeout: () => void = () => {}): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
            onTimeout();
            reject(new HopFailure(what, `no answer within ${ms} ms`));
        }, ms);
    });
    return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

function code(err: unknown): string {
    return (err as NodeJS.ErrnoException).code ?? (err as Error).message ?? String(err);
}

export async function probeCluster(target: StatusTarget, credentials: Credentials, options: ProbeOptions): Promise<ClusterStatus> {
    const status: ClusterStatus = {
        name: target.name,
        host: target.host,
        address: `${target.address.host}:${target.address.port}`,
        ok: false,
        hops: [],
    };
    let socket: tls.TLSSocket | undefined;
    let hopStarted = performance.now();
    const timed = async <T>(hop: HopName, work: () => Promise<{ value: T; detail: string }>): Promise<T> => {
        hopStarted = performance.now();
        const { value, detail } = await work();
        status.hops.push({ hop, ok: true, detail, ms: Math.round(performance.now() - hopStarted) });
        return value;
    };
    try {
        const ip = await timed("DNS", () => resolve(target.address.host, options.timeoutMs));
        const tcp = await timed("TCP", () => connect(ip, target.address.port, options.timeoutMs));
        const secured = await timed("TLS", () => handshake(tcp, target.host, credentials, options));
        socket = secured.socket;
        status.server = secured.server;
        hopStarted = performance.now();
        const answer = await callInfo(socket, target.host, options.timeoutMs);
        status.hops.push({ hop: "mTLS", ok: true, detail: "client certificate accepted", ms: answer.headersMs });
        status.sidecar = answer.info;
        status.latencyMs = answer.totalMs;
        status.hops.push({ hop: "gRPC", ok: true, detail: describeSidecar(answer.info), ms: answer.totalMs });
        status.ok = true;
    } catch (err) {
        const failure = err instanceof HopFailure ? err : new HopFailure(HOPS[status.hops.length], String(err));
        const ms = Math.round(performance.now() - hopStarted);
        if (failure.frontDoorAnswered)
            status.hops.push({ hop: "mTLS", ok: true, detail: "client certificate accepted (the front door answered the call)", ms });
        status.hops.push({ hop: failure.hop, ok: false, detail: failure.message, ms });
        status.failure = `${failure.hop}: ${failure.message}`;
    } finally {
        socket?.destroy();
    }
    return status;
}

async function resolve(host: string, timeoutMs: number): Promise<{ value: string; detail: string }> {
    if (net.isIP(host)) return { value: host, detail: `${host} (an address)` };
    try {
        const addresses = await withTimeout("DNS", timeoutMs, dns.promises.lookup(host, { all: true }));
        return { value: addresses[0].address, detail: addresses.map((a) => a.address).join(", ") };
    } catch (err) {
        if (err instanceof HopFailure) throw err;
        throw new HopFailure("DNS", `${host} does not resolve (${code(err)})`);
    }
}

function connect(ip: string, port: number, timeoutMs: number): Promise<{ value: net.Socket; detail: string }> {
    const socket = net.connect({ host: ip, port });
    const connected = new Promise<{ value: net.Socket; detail: string }>((resolve, reject) => {
        socket.once("connect", () => resolve({ value: socket, detail: `connected to ${ip}:${port}` }));
        socket.once("error", (err) => {
            const why = code(err) === "ECONNREFUSED" ? "refused" : `failed (${code(err)})`;
            reject(new HopFailure("TCP", `connection to ${ip}:${port} ${why}`));
        });
    });
    return withTimeout("TCP", timeoutMs, connected, () => socket.destroy());
}

/** The alerts a server sends when it refuses a client certificate during the handshake (TLS 1.3 sends them late). */
const CLIENT_CERTIFICATE_ALERT = /alert (bad certificate|unknown ca|certificate required|certificate unknown|certificate expired|certificate revoked)/i;

interface Secured {
    socket: tls.TLSSocket;
    server: ServerCertificate;
}

function handshake(tcp: net.Socket, host: string, credentials: Credentials, options: ProbeOptions): Promise<{ value: Secured; detail: string }> {
    const socket = tls.connect({
        socket: tcp,
        servername: host,
        ca: credentials.ca,
        cert: credentials.certificate,
        key: credentials.privateKey,
        ALPNProtocols: ["h2"],
        minVersion: "TLSv1.2",
        // Verified below, so that the report can say what exactly is wrong with the server's certificate.
        rejectUnauthorized: false,
    });
    const done = new Promise<{ value: Secured; detail: string }>((resolve, reject) => {
        socket.once("error", (err) => {
            const message = (err as Error).message;
            reject(
                CLIENT_CERTIFICATE_ALERT.test(message)
                    ? new HopFailure("mTLS", `client certificate rejected in the handshake (${message})`)
                    : new HopFailure("TLS", `handshake failed (${message})`),
            );
        });
        socket.once("secureConnect", () => {
            try {
                // Node hands out the peer certificate once per socket (a second call returns undefined): read it here only.
                const leaf = socket.getPeerX509Certificate();
                if (leaf === undefined) throw new HopFailure("TLS", "the server sent no certificate");
                resolve({ value: { socket, server: describeServer(leaf, options.now) }, detail: verifyServer(socket, leaf, host, options.now) });
            } catch (err) {
                reject(err as Error);
            }
        });
    });
    // A failed hop leaves no socket behind: an open one would keep the command from exiting.
    return withTimeout("TLS", options.timeoutMs, done).catch((err: unknown) => {
        socket.destroy();
        throw err;
    });
}

/** Envoy's checks, in Envoy's order: the chain to the CA, the validity period, the SAN; then ALPN h2, which gRPC needs. */
function verifyServer(socket: tls.TLSSocket, leaf: X509Certificate, host: string, now: Date): string {
    const notAfter = new Date(leaf.validTo);
    const notBefore = new Date(leaf.validFrom);
    if (notAfter < now) {
        const days = daysBetween(notAfter, now);
        throw new HopFailure(
            "TLS",
            `server certificate expired ${days === 0 ? "today" : `${days} day${days === 1 ? "" : "s"} ago`} (${notAfter.toISOString()})`,
        );
    }
    if (notBefore > now) {
        throw new HopFailure("TLS", `server certificate is not valid before ${notBefore.toISOString()}`);
    }
    if (!socket.authorized) {
        throw new HopFailure("TLS", `server certificate is not signed by the CA (${String(socket.authorizationError)}; issuer ${oneLine(leaf.issuer)})`);
    }
    if (leaf.checkHost(host) === undefined) {
        throw new HopFailure("TLS", `server certificate does not name ${host} (SAN ${leaf.subjectAltName ?? "none"})`);
    }
    if (socket.alpnProtocol !== "h2") {
        throw new HopFailure("TLS", `the front door did not agree to HTTP/2 (ALPN ${socket.alpnProtocol || "none"}); gRPC needs it`);
    }
    return `${socket.getProtocol()}, server certificate valid for ${daysBetween(now, notAfter)} days, issued by ${oneLine(leaf.issuer)}`;
}

function oneLine(distinguishedName: string): string {
    return distinguishedName.split("\n").join(", ");
}

function describeServer(leaf: X509Certificate, now: Date): ServerCertificate {
    const chain: string[] = [];
    for (let cert: X509Certificate | undefined = leaf; cert !== undefined && chain.length < 10;) {
        chain.push(oneLine(cert.subject));
        const issuer: X509Certificate | undefined = cert.issuerCertificate;
        cert = issuer === undefined || issuer.fingerprint256 === cert.fingerprint256 ? undefined : issuer;
    }
    return {
        subject: oneLine(leaf.subject),
        issuer: oneLine(leaf.issuer),
        sans: (leaf.subjectAltName ?? "").split(", ").filter((s) => s !== ""),
        notAfter: new Date(leaf.validTo).toISOString(),
        daysToExpiry: daysBetween(now, new Date(leaf.validTo)),
        chain,
    };
}

interface InfoAnswer {
    info: SidecarInfo;
    /** Until the response headers: the front door has judged the client certificate by then. */
    headersMs: number;
    totalMs: number;
}

/** nginx answers a refused client certificate with an HTML 400 page naming the reason. */
const NGINX_CERTIFICATE_REFUSAL = /No required SSL certificate was sent|The SSL certificate error|SSL certificate/i;

/** Thanos' Info call over the handshaken socket, as a gRPC client sends it: POST, `application/grpc`, one framed message. */
function callInfo(socket: tls.TLSSocket, host: string, timeoutMs: number): Promise<InfoAnswer> {
    const started = performance.now();
    const session = http2.connect(`https://${host}`, { createConnection: () => socket });
    const answer = new Promise<InfoAnswer>((resolve, reject) => {
        session.once("error", (err) => reject(classifyStreamError(err)));
        const request = session.request({ ":method": "POST", ":path": INFO_METHOD, ":authority": host, "content-type": "application/grpc", te: "trailers" });
        let headers: http2.IncomingHttpHeaders = {};
        let trailers: http2.IncomingHttpHeaders = {};
        let headersMs = 0;
        const body: Buffer[] = [];
        request.once("response", (received) => {
            headers = received;
            headersMs = Math.round(performance.now() - started);
        });
        // A gRPC error without a message comes as headers only ("trailers-only"), so grpc-status may be in either.
        request.once("trailers", (received) => (trailers = received));
        request.on("data", (chunk: Buffer) => body.push(chunk));
        request.once("error", (err) => reject(classifyStreamError(err)));
        request.once("end", () => {
            try {
                const info = readInfo(headers, { ...headers, ...trailers }, Buffer.concat(body));
                resolve({ info, headersMs, totalMs: Math.round(performance.now() - started) });
            } catch (err) {
                reject(err as Error);
            }
        });
        // An empty InfoRequest: no compression flag, zero length.
        request.end(Buffer.alloc(5));
    });
    return withTimeout("gRPC", timeoutMs, answer, () => session.destroy()).finally(() => session.close());
}

function classifyStreamError(err: unknown): HopFailure {
    const message = (err as Error).message;
    if (CLIENT_CERTIFICATE_ALERT.test(message)) return new HopFailure("mTLS", `client certificate rejected (${message})`);
    return new HopFailure("gRPC", `the HTTP/2 stream failed (${message})`);
}

function readInfo(headers: http2.IncomingHttpHeaders, trailers: http2.IncomingHttpHeaders, body: Buffer): SidecarInfo {
    const httpStatus = Number(headers[":status"]);
    if (httpStatus === 400 && NGINX_CERTIFICATE_REFUSAL.test(body.toString("utf8"))) {
        const reason = /No required SSL certificate was sent/.test(body.toString("utf8"))
            ? "no client certificate was sent"
            : "it does not verify against the front door's CA";
        throw new HopFailure("mTLS", `client certificate rejected by the front door (HTTP 400: ${reason})`);
    }
    if (httpStatus !== 200) {
        const why =
            httpStatus === 502 || httpStatus === 503 || httpStatus === 504 ? "the front door cannot reach the sidecar" : "the front door refused the call";
        throw new HopFailure("gRPC", `${why} (HTTP ${httpStatus})`, true);
    }
    const grpcStatus = Number(trailers["grpc-status"] ?? NaN);
    if (grpcStatus !== 0) {
        const message = decodeURIComponent(String(trailers["grpc-message"] ?? ""));
        throw new HopFailure("gRPC", `Info failed with gRPC status ${Number.isNaN(grpcStatus) ? "missing" : grpcStatus}${message ? `: ${message}` : ""}`, true);
    }
    if (body.length < 5 || body[0] !== 0) {
        throw new HopFailure("gRPC", "Info answered without an uncompressed message", true);
    }
    const response = infoMethod.responseDeserialize(body.subarray(5, 5 + body.readUInt32BE(1))) as {
        label_sets: { labels: { name: string; value: string }[] }[];
        ComponentType: string;
        store?: { min_time: number; max_time: number } | null;
    };
    // Thanos says "no bound" with the extreme int64 values; anything beyond JavaScript dates counts as that.
    const time = (ms: number | undefined) => (ms !== undefined && ms > 0 && ms < 8.64e15 ? ms : undefined);
    return {
        componentType: response.ComponentType,
        labelSets: response.label_sets.map((set) => set.labels.map((l) => `${l.name}="${l.value}"`).join(",")),
        minTime: time(response.store?.min_time),
        maxTime: time(response.store?.max_time),
    };
}

function describeSidecar(info: SidecarInfo): string {
    const labels = info.labelSets.length > 0 ? info.labelSets.map((s) => `{${s}}`).join(" ") : "no external labels";
    const range = info.minTime === undefined ? "" : `, data from ${isoMinute(info.minTime)} to ${info.maxTime === undefined ? "now" : isoMinute(info.maxTime)}`;
    return `${info.componentType || "unknown component"} ${labels}${range}`;
}

function isoMinute(ms: number): string {
    return new Date(ms).toISOString().slice(0, 16) + "Z";
}

export interface CertificateExpiry {
    subject: string;
    notAfter: string;
    daysToExpiry: number;
}

/** Days to expiry of one PEM certificate (the first in the text): for the client certificate and the CA. */
export function certificateExpiry(pem: string, now: Date): CertificateExpiry {
    const cert = new X509Certificate(pem);
    return { subject: oneLine(cert.subject), notAfter: new Date(cert.validTo).toISOString(), daysToExpiry: daysBetween(now, new Date(cert.validTo)) };
}
