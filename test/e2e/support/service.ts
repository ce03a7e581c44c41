import * as net from "node:net";
import { httpGet } from "./envoy";
import { freePort, sleep } from "./processes";

/**
 * Stands in for a Kubernetes Service in front of the Envoy pods: one loopback port per observed cluster.
 * A new connection goes to an endpoint whose readiness probe (`/ready` on its metrics port) last answered 200;
 * an established connection stays with its endpoint, as kube-proxy's connection tracking keeps it.
 */

export interface ServiceEndpoint {
    name: string;
    metricsPort: number;
    /** Listener port per observed cluster name. */
    ports: Record<string, number>;
}

export class EnvoyService {
    private readonly endpoints: Array<ServiceEndpoint & { ready: boolean }> = [];
    private readonly servers = new Map<string, net.Server>();
    private readonly sockets = new Set<net.Socket>();
    readonly ports: Record<string, number> = {};
    private probing = true;
    private readonly prober: Promise<void>;

    constructor(private readonly probeIntervalMs = 250) {
        this.prober = this.probe();
    }

    /** Adds an endpoint; it receives connections once its readiness probe passes. */
    addEndpoint(endpoint: ServiceEndpoint): void {
        this.endpoints.push({ ...endpoint, ready: false });
    }

    removeEndpoint(name: string): void {
        const index = this.endpoints.findIndex((e) => e.name === name);
        if (index >= 0) this.endpoints.splice(index, 1);
    }

    isReady(name: string): boolean {
        return this.endpoints.find((e) => e.name === name)?.ready ?? false;
    }

    /** Opens the Service port of an observed cluster (a Service `envoy-<name>`). */
    async expose(cluster: string): Promise<number> {
        const port = await freePort();
        const server = net.createServer((client) => this.forward(cluster, client));
        await new Promise<void>((resolve, reject) => {
            server.once("error", reject);
            server.listen(port, "127.0.0.1", () => resolve());
        });
        this.servers.set(cluster, server);
        this.ports[cluster] = port;
        return port;
    }

    private forward(cluster: string, client: net.Socket): void {
        this.sockets.add(client);
        client.once("close", () => this.sockets.delete(client));
        const endpoint = this.endpoints.find((e) => e.ready && e.ports[cluster] !== undefined);
        if (endpoint === undefined) {
            // No ready endpoint: the connection is refused, as with a Service without endpoints.
            client.destroy();
            return;
        }
        const upstream = net.connect(endpoint.ports[cluster], "127.0.0.1");
        this.sockets.add(upstream);
        upstream.once("close", () => this.sockets.delete(upstream));
        client.pipe(upstream);
        upstream.pipe(client);
        client.once("error", () => upstream.destroy());
        upstream.once("error", () => client.destroy());
        client.once("close", () => upstream.end());
        upstream.once("close", () => client.end());
    }

    private async probe(): Promise<void> {
        // Bounded: at most an hour of probing, far beyond any test.
        for (let round = 0; this.probing && round < (3600 * 1000) / this.probeIntervalMs; round++) {
            await Promise.all(
                this.endpoints.map(async (e) => {
                    e.ready = await httpGet(e.metricsPort, "/ready").then(
                        (res) => res.status === 200,
                        () => false,
                    );
                }),
            );
            await sleep(this.probeIntervalMs);
        }
    }

    async stop(): Promise<void> {
        this.probing = false;
        await this.prober;
        for (const socket of this.sockets) socket.destroy();
        await Promise.all([...this.servers.values()].map((s) => new Promise((resolve) => s.close(resolve))));
    }
}
