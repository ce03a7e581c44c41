import * as path from "node:path";
import { buildModel, Model } from "../../../components/config/model";
import { Issued, OpensslCa } from "../../../tools/pki/openssl-ca";
import { Envoy, TlsFiles } from "./envoy";
import { FrontDoorKind, FrontDoorSide, RunningFrontDoor } from "./front-door";
import { startFrontDoor } from "./front-doors";
import { Nginx } from "./nginx";
import { NginxSide } from "./nginx-front-door";
import { Backend } from "./grpc";
import { freePort, ProcessGroup, tempDir } from "./processes";

/**
 * The whole data path on loopback, per observed cluster: backend (the sidecar) ← front door (nginx rendered from
 * our Ingress by default; any kind of `front-doors.ts`) ← Envoy (our bootstrap) ← the test's gRPC client.
 * Certificates come from openssl, made from the program's certificate spec, unless the test brings its own
 * (`certificates`, e.g. what the engine issued in generate mode).
 */

export interface ObservedSide {
    name: string;
    host: string;
    /** The gRPC test backend, unless the topology was given real sidecars. */
    backend?: Backend;
    backendPort: number;
    frontDoorKind: FrontDoorKind;
    frontDoor: FrontDoorSide;
    /** The cluster's front door on the machine's loopback (what Envoy dials). */
    frontDoorPort: number;
    /** The nginx of an nginx front door; any other kind throws. */
    readonly nginx: Nginx;
    /** Envoy's listener for this cluster. */
    listenerPort: number;
    server: Issued;
}

export interface TopologyOptions {
    /** The observed clusters; each on `frontDoor` (default: the topology's). */
    clusters: { name: string; host: string; frontDoor?: FrontDoorKind }[];
    /** The front door of every cluster that names none (default: nginx). */
    frontDoor?: FrontDoorKind;
    /** Extra raw config merged into the stack config (e.g. envoy settings). */
    config?: Record<string, unknown>;
    /** Per-cluster server certificate override (negative tests). */
    serverCertificate?: (cluster: string, ca: OpensslCa) => Issued;
    /** The front door's lowest TLS protocol (negative test for the TLS minimum; nginx only). */
    sslProtocols?: string;
    /** Envoy's TLS files override (negative tests), and bootstrap changes. */
    envoyTls?: (ca: OpensslCa, client: Issued) => TlsFiles;
    mutateDocuments?: (documents: Record<string, any>) => void;
    /** Where each cluster's sidecar Service is (real Thanos sidecars); default: a gRPC test backend per cluster. */
    sidecarAddress?: (cluster: string) => string;
    /** Only the observed side (native mode: the querier reaches the front doors itself); default: Envoy too. */
    observedOnly?: boolean;
    /** The clusters Envoy starts with (default: all); the others exist on the observed side, ready to be appended. */
    envoyClusters?: string[];
    /** Certificates issued elsewhere (by the engine) instead of by the topology's openssl CA. */
    certificates?: TopologyCertificates;
}

/** Envoy's client certificate and CA bundle, and each cluster's server certificate and the client CA its front door verifies. */
export interface TopologyCertificates {
    client: Issued;
    caBundle: string;
    clusters: Record<string, { server: Issued; clientCa: string }>;
}

export class Topology {
    readonly group = new ProcessGroup();
    readonly dir = tempDir("e2e");
    readonly ca = OpensslCa.create(path.join(this.dir, "pki"), "e2e");
    readonly client: Issued;
    readonly sides: ObservedSide[] = [];
    model!: Model;
    envoy!: Envoy;
    private readonly frontDoors = new Map<FrontDoorKind, RunningFrontDoor>();
    private extraEnvoys = 0;

    constructor(private readonly options: TopologyOptions) {
        this.client = options.certificates?.client ?? this.ca.client();
    }

    side(name: string): ObservedSide {
        const side = this.sides.find((s) => s.name === name);
        if (!side) throw new Error(`no cluster ${name}`);
        return side;
    }

    /** What the running front door of `kind` does not honour (`RunningFrontDoor.gaps`). */
    frontDoorGaps(kind: FrontDoorKind): readonly string[] {
        return this.frontDoors.get(kind)?.gaps ?? [];
    }

    backend(name: string): Backend {
        const backend = this.side(name).backend;
        if (!backend) throw new Error(`cluster ${name} has a real sidecar, not a test backend`);
        return backend;
    }

    async start(): Promise<this> {
        try {
            await this.startAll();
        } catch (err) {
            await this.stop();
            throw err;
        }
        return this;
    }

    private async startAll(): Promise<void> {
        const ports = await Promise.all(this.options.clusters.map(async () => ({ frontDoor: await freePort(), backend: await freePort() })));
        this.model = await this.buildModel(ports.map((p) => p.frontDoor));
        for (const [i, cluster] of this.model.clusters.entries()) {
            const kind = this.kindOf(i);
            const issued = this.options.certificates?.clusters[cluster.name];
            const server = issued?.server ?? this.options.serverCertificate?.(cluster.name, this.ca) ?? this.ca.server(cluster.host);
            const sidecar = this.options.sidecarAddress?.(cluster.name);
            const backend = sidecar === undefined ? new Backend(cluster.name) : undefined;
            await backend?.start(ports[i].backend);
            const frontDoor = await this.frontDoor(kind)
                .add({
                    cluster,
                    clientIdentity: this.model.clientIdentity,
                    server,
                    clientCa: issued?.clientCa ?? this.ca.ca.certificate,
                    backendAddress: sidecar ?? `127.0.0.1:${ports[i].backend}`,
                    port: ports[i].frontDoor,
                    sslProtocols: this.options.sslProtocols,
                })
                .catch(async (err) => {
                    // Not yet one of the sides that stop() stops; a running backend would keep the test process alive.
                    await backend?.stop();
                    throw err;
                });
            this.sides.push({
                name: cluster.name,
                host: cluster.host,
                backend,
                backendPort: ports[i].backend,
                frontDoorKind: kind,
                frontDoor,
                frontDoorPort: ports[i].frontDoor,
                get nginx(): Nginx {
                    if (kind !== "nginx") throw new Error(`cluster ${cluster.name} is behind ${kind}, not nginx`);
                    return (frontDoor as NginxSide).nginx;
                },
                listenerPort: cluster.port,
                server,
            });
        }
        if (this.options.observedOnly) return;
        this.envoy = await this.startEnvoy({ tls: this.options.envoyTls?.(this.ca, this.client), mutate: this.options.mutateDocuments }, this.model, "envoy");
    }

    /**
     * Another Envoy with the program's bootstrap in front of the same front doors, on listener ports of its own
     * (`model` of the result), e.g. with other TLS material for a rejection check. Stopped with the topology.
     */
    async startExtraEnvoy(options: { tls?: TlsFiles; mutate?: (documents: Record<string, any>) => void }): Promise<{ envoy: Envoy; model: Model }> {
        const model = await this.buildModel(this.sides.map((s) => s.frontDoorPort));
        const envoy = await this.startEnvoy(options, model, `envoy-extra-${++this.extraEnvoys}`);
        return { envoy, model };
    }

    /** The stack's model, with fresh Envoy ports and each cluster's front door at 127.0.0.1:`frontDoorPorts[i]`. */
    private async buildModel(frontDoorPorts: number[]): Promise<Model> {
        const listeners = await Promise.all(this.options.clusters.map(() => freePort()));
        const [adminPort, metricsPort] = [await freePort(), await freePort()];
        return buildModel(
            {
                renderDirectory: this.dir,
                ...this.options.config,
                envoy: { ...(this.options.config?.envoy as object), adminPort, metricsPort },
                clusters: this.options.clusters.map(({ name, host }, i) => ({
                    name,
                    host,
                    port: listeners[i],
                    address: `localhost:${frontDoorPorts[i]}`,
                    // Envoy Gateway reads the program's Gateway API objects; nginx and Traefik its Ingress.
                    frontDoor: this.kindOf(i) === "envoy-gateway" ? "gateway-api" : "ingress-nginx",
                })),
            },
            { checkSecretMaterial: true, now: new Date() },
        );
    }

    private async startEnvoy(options: { tls?: TlsFiles; mutate?: (documents: Record<string, any>) => void }, model: Model, workDir: string): Promise<Envoy> {
        const ca = this.options.certificates?.caBundle ?? this.ca.ca.certificate;
        const tls = options.tls ?? { certificate: this.client.certificate, privateKey: this.client.privateKey, ca };
        const envoy = new Envoy(
            {
                envoy: model.envoy,
                clusters: model.clusters.filter((c) => this.options.envoyClusters?.includes(c.name) ?? true),
                workDir: path.join(this.dir, workDir),
                tls,
                mutate: options.mutate,
            },
            this.group,
        );
        await envoy.start();
        return envoy;
    }

    private kindOf(cluster: number): FrontDoorKind {
        return this.options.clusters[cluster].frontDoor ?? this.options.frontDoor ?? "nginx";
    }

    private frontDoor(kind: FrontDoorKind): RunningFrontDoor {
        let frontDoor = this.frontDoors.get(kind);
        if (frontDoor === undefined) {
            frontDoor = startFrontDoor(kind, { dir: path.join(this.dir, kind), group: this.group });
            this.frontDoors.set(kind, frontDoor);
        }
        return frontDoor;
    }

    async stop(): Promise<void> {
        await Promise.all([...this.frontDoors.values()].map((f) => f.stop()));
        await this.group.stopAll();
        await Promise.all(this.sides.map((s) => s.backend?.stop()));
    }
}
