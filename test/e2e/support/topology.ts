import * as path from "node:path";
import type { X509Certificate } from "node:crypto";
import { buildModel, Model, ObservedClusterModel } from "../../../components/config/model";
import { Issued, OpensslCa } from "../../../tools/pki/openssl-ca";
import { Envoy, TlsFiles } from "./envoy";
import { EnvoyGatewayPolicyChanges, FrontDoorKind, FrontDoorSide, RunningFrontDoor } from "./front-door";
import { startFrontDoor } from "./front-doors";
import { Haproxy, HaproxyTimeouts, STORE_API_TIMEOUTS } from "./haproxy";
import type { IngressNginxConfigMap } from "./ingress-nginx-configmap";
import { Nginx } from "./nginx";
import { NginxSide } from "./nginx-front-door";
import { Backend } from "./grpc";
import { freePort, ProcessGroup, tempDir } from "./processes";
import { servedCertificate } from "./tls";

/**
 * The whole data path on loopback, per observed cluster: backend (the sidecar) ← front door (nginx rendered from
 * our Ingress by default; any kind of `front-doors.ts`) ← optionally one HAProxy in front of every front door ←
 * Envoy (our bootstrap) ← the test's gRPC client. Certificates come from openssl, made from the program's
 * certificate spec, unless the test brings its own (`certificates`, e.g. what the engine issued in generate mode).
 */

/** One HAProxy (TCP mode, routing by SNI, TLS passed through) in front of every cluster's front door. */
export interface L4HopOptions {
    /** Its timeouts; default: what the docs tell users to set (`STORE_API_TIMEOUTS`). */
    timeouts?: HaproxyTimeouts;
    /** The clusters whose front door gets a PROXY protocol v2 header first; default: those whose front door expects one. */
    sendProxyV2?: (cluster: ObservedClusterModel) => boolean;
}

/** Whether the program has the cluster's front door read a PROXY protocol header first. */
export function expectsProxyProtocol(cluster: ObservedClusterModel): boolean {
    return cluster.gatewayApi.proxyProtocol;
}

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
    /** The observed clusters; each on `frontDoor` (default: the topology's), with `gatewayApi` settings of its own. */
    clusters: { name: string; host: string; frontDoor?: FrontDoorKind; gatewayApi?: Record<string, unknown> }[];
    /** The front door of every cluster that names none (default: nginx). */
    frontDoor?: FrontDoorKind;
    /** Extra raw config merged into the stack config (e.g. envoy settings). */
    config?: Record<string, unknown>;
    /** Per-cluster server certificate override (negative tests). */
    serverCertificate?: (cluster: string, ca: OpensslCa) => Issued;
    /** ingress-nginx's controller ConfigMap for every nginx front door (e.g. `ssl-protocols`, `ssl-buffer-size`; nginx only). */
    ingressNginxConfigMap?: IngressNginxConfigMap;
    /** Changes to the program's Envoy Gateway policies for every Envoy Gateway front door (Envoy Gateway only). */
    envoyGatewayPolicies?: EnvoyGatewayPolicyChanges;
    /** Envoy's TLS files override (negative tests), and bootstrap changes. */
    envoyTls?: (ca: OpensslCa, client: Issued) => TlsFiles;
    mutateDocuments?: (documents: Record<string, any>) => void;
    /** Where each cluster's sidecar Service is (real Thanos sidecars); default: a gRPC test backend per cluster. */
    sidecarAddress?: (cluster: string) => string;
    /** Only the observed side (native mode: the querier reaches the front doors itself); default: Envoy too. */
    observedOnly?: boolean;
    /** The clusters Envoy starts with (default: all); the others exist on the observed side, ready to be appended. */
    envoyClusters?: string[];
    /** Put one HAProxy in front of every front door: each cluster's `address` is HAProxy's, SNI and `:authority` stay its host. */
    l4Hop?: L4HopOptions;
    /** Certificates issued elsewhere (by the engine) instead of by the topology's openssl CA. */
    certificates?: TopologyCertificates;
    /** The host of each cluster's `address` (default: localhost); a pod dials the front doors at an address of its node. */
    dialHost?: string;
}

/** What an extra Envoy differs in: its TLS files, its bootstrap, its own HAProxy, its `envoy` settings. */
export interface ExtraEnvoyOptions {
    tls?: TlsFiles;
    mutate?: (documents: Record<string, any>) => void;
    /** An HAProxy of its own in front of the same front doors (default: the topology's, if any). */
    l4Hop?: L4HopOptions;
    /** Merged into the stack's `envoy` config (e.g. `http2Keepalive`). */
    envoy?: Record<string, unknown>;
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
    /** The HAProxy in front of the front doors (`l4Hop`), and the port Envoy dials it on. */
    hop?: { haproxy: Haproxy; port: number };
    private readonly frontDoors = new Map<FrontDoorKind, RunningFrontDoor>();
    private extraEnvoys = 0;
    private extraHops = 0;

    constructor(private readonly options: TopologyOptions) {
        this.client = options.certificates?.client ?? this.ca.client();
    }

    side(name: string): ObservedSide {
        const side = this.sides.find((s) => s.name === name);
        if (!side) throw new Error(`no cluster ${name}`);
        return side;
    }

    /**
     * A stack's `tls` in `provided` mode with this topology's material, what its front doors present and verify: the
     * CA bundle, Envoy's client certificate (`client`, default the topology's) and each named cluster's server certificate.
     */
    providedTls(names: string[], client: Issued = this.client) {
        const pair = (issued: Issued) => ({ certificate: issued.certificate, privateKey: issued.privateKey });
        return {
            mode: "provided",
            caBundle: this.options.certificates?.caBundle ?? this.ca.ca.certificate,
            client: pair(client),
            servers: Object.fromEntries(names.map((name) => [name, pair(this.side(name).server)])),
        };
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
        const hop = this.options.l4Hop && { options: this.options.l4Hop, port: await freePort() };
        this.model = await this.buildModel(ports.map((p) => hop?.port ?? p.frontDoor));
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
                    ingressNginxConfigMap: this.options.ingressNginxConfigMap,
                    envoyGatewayPolicies: this.options.envoyGatewayPolicies,
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
        if (hop) this.hop = { haproxy: await this.startHop(hop.options, hop.port, "haproxy"), port: hop.port };
        if (this.options.observedOnly) return;
        this.envoy = await this.startEnvoy({ tls: this.options.envoyTls?.(this.ca, this.client), mutate: this.options.mutateDocuments }, this.model, "envoy");
    }

    /** An HAProxy on 127.0.0.1:`port` routing each cluster's host to its front door. */
    private async startHop(options: L4HopOptions, port: number, workDir: string): Promise<Haproxy> {
        const haproxy = new Haproxy(path.join(this.dir, workDir), this.group);
        await haproxy.start({
            bind: `127.0.0.1:${port}`,
            routes: this.model.clusters.map((cluster) => ({
                name: cluster.name,
                host: cluster.host,
                server: `127.0.0.1:${this.side(cluster.name).frontDoorPort}`,
                sendProxyV2: (options.sendProxyV2 ?? expectsProxyProtocol)(cluster),
            })),
            timeouts: options.timeouts ?? STORE_API_TIMEOUTS,
        });
        return haproxy;
    }

    /** Where Envoy dials `cluster` on the machine's loopback: the topology's HAProxy, or else the cluster's front door. */
    private dialPort(cluster: string): number {
        return this.hop?.port ?? this.side(cluster).frontDoorPort;
    }

    /** The server certificate a client reaching `cluster` the way Envoy does gets for its host (read, not verified). */
    servedCertificate(cluster: string): Promise<X509Certificate> {
        return servedCertificate(this.dialPort(cluster), this.side(cluster).host);
    }

    /**
     * Another Envoy with the program's bootstrap in front of the same front doors (through the topology's HAProxy,
     * or one of its own), on listener ports of its own (`model` of the result), e.g. with other TLS material for a
     * rejection check. Stopped with the topology.
     */
    async startExtraEnvoy(options: ExtraEnvoyOptions): Promise<{ envoy: Envoy; model: Model; hop?: Haproxy }> {
        const own = options.l4Hop && { options: options.l4Hop, port: await freePort() };
        const hop = own && (await this.startHop(own.options, own.port, `haproxy-extra-${++this.extraHops}`));
        const model = await this.buildModel(
            this.sides.map((s) => own?.port ?? this.dialPort(s.name)),
            options.envoy,
        );
        const envoy = await this.startEnvoy(options, model, `envoy-extra-${++this.extraEnvoys}`);
        return { envoy, model, hop };
    }

    /** The stack's model, with fresh Envoy ports and each cluster's `address` at `dialHost`:`dialPorts[i]`. */
    private async buildModel(dialPorts: number[], envoy?: Record<string, unknown>): Promise<Model> {
        const listeners = await Promise.all(this.options.clusters.map(() => freePort()));
        const [adminPort, metricsPort] = [await freePort(), await freePort()];
        return buildModel(
            {
                renderDirectory: this.dir,
                ...this.options.config,
                envoy: { ...(this.options.config?.envoy as object), ...envoy, adminPort, metricsPort },
                clusters: this.options.clusters.map(({ name, host, gatewayApi }, i) => ({
                    name,
                    host,
                    gatewayApi,
                    port: listeners[i],
                    address: `${this.options.dialHost ?? "localhost"}:${dialPorts[i]}`,
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
