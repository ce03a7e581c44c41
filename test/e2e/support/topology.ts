import * as fs from "node:fs";
import * as path from "node:path";
import { buildModel, Model } from "../../../components/config/model";
import { observedNames } from "../../../components/names";
import { ingressAnnotations, ingressSpec } from "../../../components/observed/ingress";
import { Issued, OpensslCa } from "../../../tools/pki/openssl-ca";
import { Envoy, TlsFiles } from "./envoy";
import { Backend } from "./grpc";
import { IngressObject, Nginx, SecretStore, translateIngress } from "./nginx";
import { freePort, ProcessGroup, tempDir } from "./processes";

/**
 * The whole data path on loopback, per observed cluster: backend (the sidecar) ← nginx (rendered from our
 * Ingress and Secrets) ← Envoy (our bootstrap) ← the test's gRPC client. Certificates come from openssl,
 * made from the program's certificate spec.
 */

export interface ObservedSide {
    name: string;
    host: string;
    /** The gRPC test backend, unless the topology was given real sidecars. */
    backend?: Backend;
    backendPort: number;
    nginx: Nginx;
    /** Envoy's listener for this cluster. */
    listenerPort: number;
    server: Issued;
    /**
     * Replaces the ingress' TLS Secrets (server certificate, client CA bundle) and reloads nginx, as ingress-nginx
     * does when a Secret it uses changes.
     */
    updateIngressTls(tls: { server: Issued; clientCa: string }): void;
}

export interface TopologyOptions {
    clusters: { name: string; host: string }[];
    /** Extra raw config merged into the stack config (e.g. envoy settings). */
    config?: Record<string, unknown>;
    /** Per-cluster server certificate override (negative tests). */
    serverCertificate?: (cluster: string, ca: OpensslCa) => Issued;
    /** nginx `ssl_protocols` override (negative test for the TLS minimum). */
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
}

export class Topology {
    readonly group = new ProcessGroup();
    readonly dir = tempDir("e2e");
    readonly ca = OpensslCa.create(path.join(this.dir, "pki"), "e2e");
    readonly client: Issued;
    readonly sides: ObservedSide[] = [];
    model!: Model;
    envoy!: Envoy;

    constructor(private readonly options: TopologyOptions) {
        this.client = this.ca.client();
    }

    side(name: string): ObservedSide {
        const side = this.sides.find((s) => s.name === name);
        if (!side) throw new Error(`no cluster ${name}`);
        return side;
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
        const ports = await Promise.all(
            this.options.clusters.map(async () => ({ listener: await freePort(), nginx: await freePort(), backend: await freePort() })),
        );
        const [adminPort, metricsPort] = [await freePort(), await freePort()];
        this.model = buildModel(
            {
                renderDirectory: this.dir,
                ...this.options.config,
                envoy: { ...(this.options.config?.envoy as object), adminPort, metricsPort },
                clusters: this.options.clusters.map((c, i) => ({ ...c, port: ports[i].listener, address: `localhost:${ports[i].nginx}` })),
            },
            { checkSecretMaterial: true, now: new Date() },
        );
        // One fake certificate for all catch-all servers, as ingress-nginx has.
        const fake = OpensslCa.create(path.join(this.dir, "fake"), "fake").server("ingress.local");
        for (const [i, cluster] of this.model.clusters.entries()) {
            const server = this.options.serverCertificate?.(cluster.name, this.ca) ?? this.ca.server(cluster.host);
            const names = observedNames(cluster.name);
            const ns = cluster.sidecar.namespace;
            const secretsOf = (tls: { server: Issued; clientCa: string }): SecretStore => ({
                [`${ns}/${names.serverTlsSecret}`]: { "tls.crt": tls.server.certificate, "tls.key": tls.server.privateKey },
                [`${ns}/${names.clientCaSecret}`]: { "ca.crt": tls.clientCa },
            });
            const ingress: IngressObject = {
                metadata: {
                    name: names.ingress,
                    namespace: ns,
                    annotations: ingressAnnotations({ cluster, verifyDepth: 1, clientIdentity: this.model.clientIdentity }),
                },
                spec: ingressSpec(cluster) as IngressObject["spec"],
            };
            const sidecar = this.options.sidecarAddress?.(cluster.name);
            const backend = sidecar === undefined ? new Backend(cluster.name) : undefined;
            await backend?.start(ports[i].backend);
            const workDir = path.join(this.dir, `nginx-${cluster.name}`);
            fs.mkdirSync(workDir, { recursive: true });
            const nginx = new Nginx(workDir, ports[i].nginx, this.group);
            const backendAddress = sidecar ?? `127.0.0.1:${ports[i].backend}`;
            const render = (tls: { server: Issued; clientCa: string }) =>
                translateIngress(ingress, secretsOf(tls), {
                    listenPort: ports[i].nginx,
                    workDir,
                    sslProtocols: this.options.sslProtocols,
                    defaultCertificate: fake,
                    resolveService: (namespace, service, port) => {
                        if (namespace !== cluster.sidecar.namespace || service !== cluster.sidecar.service || port.name !== cluster.sidecar.port) {
                            throw new Error(`Ingress points at ${namespace}/${service}:${port.name ?? port.number}, not the sidecar Service`);
                        }
                        return backendAddress;
                    },
                });
            await nginx.start(render({ server, clientCa: this.ca.ca.certificate }));
            this.sides.push({
                name: cluster.name,
                host: cluster.host,
                backend,
                backendPort: ports[i].backend,
                nginx,
                listenerPort: cluster.port,
                server,
                updateIngressTls: (tls) => nginx.reconfigure(render(tls)),
            });
        }
        if (this.options.observedOnly) return;
        const tls = this.options.envoyTls?.(this.ca, this.client) ?? {
            certificate: this.client.certificate,
            privateKey: this.client.privateKey,
            ca: this.ca.ca.certificate,
        };
        this.envoy = new Envoy(
            {
                envoy: this.model.envoy,
                clusters: this.model.clusters.filter((c) => this.options.envoyClusters?.includes(c.name) ?? true),
                workDir: path.join(this.dir, "envoy"),
                tls,
                mutate: this.options.mutateDocuments,
            },
            this.group,
        );
        await this.envoy.start();
    }

    async stop(): Promise<void> {
        await this.group.stopAll();
        await Promise.all(this.sides.map((s) => s.backend?.stop()));
    }
}
