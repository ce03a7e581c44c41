import * as crypto from "node:crypto";
import * as path from "node:path";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";

/**
 * The gRPC side of the data path: a backend standing in for the Thanos sidecar (Store, Info, Health),
 * and a client playing the querier. The backend records what each call carried.
 */

const PROTO_DIR = path.join(__dirname, "..", "proto");
const definition = protoLoader.loadSync(["store.proto", "info.proto", "health.proto"], {
    includeDirs: [PROTO_DIR],
    keepCase: false,
    longs: Number,
    enums: String,
    defaults: true,
});
const loaded = grpc.loadPackageDefinition(definition) as any;
const StoreService = loaded.thanos.Store as grpc.ServiceClientConstructor;
const InfoService = loaded.thanos.info.Info as grpc.ServiceClientConstructor;
const HealthService = loaded.grpc.health.v1.Health as grpc.ServiceClientConstructor;

export interface ObservedCall {
    method: string;
    authority: string;
    /** Headers that nginx adds: the SNI it saw and the client certificate it verified. */
    sni: string;
    clientVerify: string;
    clientSubject: string;
    clientSerial: string;
}

function header(metadata: grpc.Metadata, name: string): string {
    return String(metadata.get(name)[0] ?? "");
}

/** Deterministic bytes for frame `index`, so a receiver can check integrity without keeping a copy. */
export function frameBytes(index: number, size: number): Buffer {
    const out = Buffer.alloc(size);
    let block = crypto.createHash("sha256").update(`frame-${index}`).digest();
    for (let offset = 0; offset < size; offset += block.length) {
        block.copy(out, offset);
        block = crypto.createHash("sha256").update(block).digest();
    }
    return out;
}

export class Backend {
    readonly calls: ObservedCall[] = [];
    private server?: grpc.Server;

    constructor(readonly name: string) {}

    private observe(method: string, call: grpc.ServerUnaryCall<any, any> | grpc.ServerWritableStream<any, any>): void {
        this.calls.push({
            method,
            authority: call.getHost(),
            sni: header(call.metadata, "x-observed-sni"),
            clientVerify: header(call.metadata, "ssl-client-verify"),
            clientSubject: header(call.metadata, "ssl-client-subject-dn"),
            clientSerial: header(call.metadata, "x-observed-client-serial"),
        });
    }

    /** Plaintext by default (behind nginx, as a sidecar is); `credentials` for a direct mTLS baseline. */
    async start(port: number, credentials: grpc.ServerCredentials = grpc.ServerCredentials.createInsecure()): Promise<void> {
        const server = new grpc.Server();
        server.addService(StoreService.service, {
            info: (call: grpc.ServerUnaryCall<any, any>, done: grpc.sendUnaryData<any>) => {
                this.observe("Store/Info", call);
                done(null, { labels: [{ name: "cluster", value: this.name }], minTime: 0, maxTime: Date.now() });
            },
            series: (call: grpc.ServerWritableStream<any, any>) => {
                this.observe("Store/Series", call);
                void this.stream(call);
            },
        });
        server.addService(InfoService.service, {
            info: (call: grpc.ServerUnaryCall<any, any>, done: grpc.sendUnaryData<any>) => {
                this.observe("Info/Info", call);
                done(null, {
                    labelSets: [{ labels: [{ name: "cluster", value: this.name }] }],
                    componentType: "sidecar",
                    store: { minTime: Date.now() - 3_600_000, maxTime: Date.now() },
                    backend: this.name,
                });
            },
        });
        server.addService(HealthService.service, {
            check: (call: grpc.ServerUnaryCall<any, any>, done: grpc.sendUnaryData<any>) => {
                this.observe("Health/Check", call);
                done(null, { status: "SERVING" });
            },
        });
        await new Promise<void>((resolve, reject) => server.bindAsync(`127.0.0.1:${port}`, credentials, (err) => (err ? reject(err) : resolve())));
        this.server = server;
    }

    /** Paces a Series stream as the request's test controls say; respects backpressure for large frames. */
    private async stream(call: grpc.ServerWritableStream<any, any>): Promise<void> {
        const { frames, intervalMs, initialDelayMs, frameBytes: size } = call.request;
        let cancelled = false;
        call.on("cancelled", () => (cancelled = true));
        const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));
        if (initialDelayMs > 0) await wait(initialDelayMs);
        for (let index = 0; index < frames && !cancelled; index++) {
            if (index > 0 && intervalMs > 0) await wait(intervalMs);
            const ok = call.write({ index, chunk: frameBytes(index, size), backend: this.name });
            if (!ok) await new Promise((r) => call.once("drain", r));
        }
        call.end();
    }

    async stop(): Promise<void> {
        const server = this.server;
        this.server = undefined;
        if (server) {
            server.forceShutdown();
        }
    }
}

export interface StreamResult {
    frames: number;
    bytes: number;
    sha256: string;
    backend: string;
    /** Seconds from the call to each frame's arrival. */
    arrivals: number[];
}

/** The querier's side: a plaintext HTTP/2 client to one Envoy listener. */
export class QuerierClient {
    private readonly store: grpc.Client & Record<string, any>;
    private readonly info: grpc.Client & Record<string, any>;
    private readonly health: grpc.Client & Record<string, any>;

    /** Plaintext h2c to Envoy by default, as the querier dials it; `tls` for the direct mTLS baseline. */
    constructor(
        readonly target: string,
        tls?: { credentials: grpc.ChannelCredentials; serverName: string },
    ) {
        // Large frames for the throughput test; the proxy chain must carry them, not the client limit.
        const options: grpc.ChannelOptions = { "grpc.max_receive_message_length": 64 * 1024 * 1024 };
        if (tls) {
            options["grpc.ssl_target_name_override"] = tls.serverName;
            // :authority = the server name, as Envoy rewrites it: a front door routes on it.
            options["grpc.default_authority"] = tls.serverName;
        }
        const credentials = tls?.credentials ?? grpc.credentials.createInsecure();
        this.store = new StoreService(target, credentials, options) as any;
        this.info = new InfoService(target, credentials, options) as any;
        this.health = new HealthService(target, credentials, options) as any;
    }

    private unary<T>(client: Record<string, any>, method: string, timeoutMs: number): Promise<T> {
        return new Promise((resolve, reject) =>
            client[method]({}, { deadline: Date.now() + timeoutMs }, (err: grpc.ServiceError | null, res: T) => (err ? reject(err) : resolve(res))),
        );
    }

    storeInfo(timeoutMs = 5000): Promise<{ labels: { name: string; value: string }[] }> {
        return this.unary(this.store, "info", timeoutMs);
    }

    infoInfo(timeoutMs = 5000): Promise<{ componentType: string; backend: string }> {
        return this.unary(this.info, "info", timeoutMs);
    }

    healthCheck(timeoutMs = 5000): Promise<{ status: string }> {
        return this.unary(this.health, "check", timeoutMs);
    }

    /** `stallMsAfterFirstFrame`: a slow reader, which stops reading for that long after the first frame (HTTP/2 flow control should then hold the sender). */
    series(
        request: { frames: number; intervalMs?: number; initialDelayMs?: number; frameBytes?: number },
        timeoutMs: number,
        reader: { stallMsAfterFirstFrame?: number } = {},
    ): Promise<StreamResult> {
        const started = Date.now();
        const hash = crypto.createHash("sha256");
        const result: StreamResult = { frames: 0, bytes: 0, sha256: "", backend: "", arrivals: [] };
        return new Promise((resolve, reject) => {
            const call = this.store.series(
                {
                    frames: request.frames,
                    intervalMs: request.intervalMs ?? 0,
                    initialDelayMs: request.initialDelayMs ?? 0,
                    frameBytes: request.frameBytes ?? 16,
                },
                { deadline: started + timeoutMs },
            );
            call.on("data", (frame: { index: number; chunk: Buffer; backend: string }) => {
                result.frames++;
                result.bytes += frame.chunk.length;
                result.backend = frame.backend;
                result.arrivals.push((Date.now() - started) / 1000);
                hash.update(frame.chunk);
                if (result.frames === 1 && reader.stallMsAfterFirstFrame !== undefined) {
                    call.pause();
                    setTimeout(() => call.resume(), reader.stallMsAfterFirstFrame);
                }
            });
            call.on("error", reject);
            call.on("end", () => {
                result.sha256 = hash.digest("hex");
                resolve(result);
            });
        });
    }

    close(): void {
        this.store.close();
        this.info.close();
        this.health.close();
    }
}

/** The sha256 a Series stream of `frames` frames of `size` bytes must have. */
export function expectedSha256(frames: number, size: number): string {
    const hash = crypto.createHash("sha256");
    for (let i = 0; i < frames; i++) hash.update(frameBytes(i, size));
    return hash.digest("hex");
}
