import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import * as YAML from "yaml";
import { httpGet, validate } from "./envoy";
import { ControlPlane } from "./kube";
import { Forward, NetworkNamespace } from "./netns";
import { freePort, ProcessGroup, Started, waitFor } from "./processes";

/**
 * The manual recipe as its users run it: its objects in a real API server, applied the way its write-up applies
 * them (`kubectl create` for the namespace, ConfigMap and Secrets, `kubectl apply` for the Deployment, Services and
 * Ingresses, so each object carries the field manager and annotation kubectl gives it), and its Envoy, ported to
 * load on current Envoy.
 */

export const RECIPE_FIXTURE = path.join(__dirname, "../../fixtures/manual-recipe-envoy.yaml");
export const RECIPE_NAMESPACE = "envoy";
/** The recipe's pods carry this label, and its Services select it. */
export const RECIPE_SELECTOR = { name: "envoy" };

export interface RecipeCluster {
    /** cl1, cl2: the recipe's listener, cluster and Service names end with it. */
    name: string;
    /** The recipe's Service port (10002, 10003). */
    servicePort: number;
    /** Where the ported Envoy listens for this cluster on the machine's loopback. */
    listenerPort: number;
    /** Where the ported Envoy reaches the cluster's front door: the stand-in for `<host>:443` through HAProxy. */
    frontDoorPort: number;
}

/**
 * The recipe's Envoy configuration with only what current Envoy needs to load it and what loopback needs:
 * typed_config on the router, listeners on 127.0.0.1, the front doors' ports, the certificate files in `dir`.
 */
export function portedRecipeEnvoy(options: { clusters: RecipeCluster[]; certDir: string; adminPort: number }): object {
    const recipe = YAML.parse(fs.readFileSync(RECIPE_FIXTURE, "utf8"));
    const of = (name: string) => options.clusters.find((c) => name === `sidecar_${c.name}`);
    recipe.admin = { address: { socket_address: { address: "127.0.0.1", port_value: options.adminPort } } };
    recipe.static_resources.listeners = recipe.static_resources.listeners.filter((l: any) => of(l.name));
    recipe.static_resources.clusters = recipe.static_resources.clusters.filter((c: any) => of(c.name));
    for (const listener of recipe.static_resources.listeners) {
        listener.address.socket_address = { address: "127.0.0.1", port_value: of(listener.name)!.listenerPort };
        const hcm = listener.filter_chains[0].filters[0].typed_config;
        hcm.http_filters[0].typed_config = { "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router" };
    }
    for (const cluster of recipe.static_resources.clusters) {
        cluster.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address = {
            address: "127.0.0.1",
            port_value: of(cluster.name)!.frontDoorPort,
        };
        const tls = cluster.transport_socket.typed_config.common_tls_context.tls_certificates[0];
        tls.certificate_chain.filename = path.join(options.certDir, "fullchain.pem");
        tls.private_key.filename = path.join(options.certDir, "privkey.pem");
    }
    return recipe;
}

/** The ported recipe Envoy, presenting `certificate` (the recipe's one certificate) to every front door. */
export async function startRecipeEnvoy(
    dir: string,
    clusters: RecipeCluster[],
    certificate: { certificate: string; privateKey: string },
    group: ProcessGroup,
): Promise<{ process: Started; adminPort: number }> {
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, "fullchain.pem"), certificate.certificate);
    fs.writeFileSync(path.join(dir, "privkey.pem"), certificate.privateKey);
    const adminPort = await freePort();
    const file = path.join(dir, "envoy.yaml");
    fs.writeFileSync(file, YAML.stringify(portedRecipeEnvoy({ clusters, certDir: dir, adminPort })));
    const check = validate(file);
    if (!check.ok) throw new Error(`the ported recipe does not load: ${check.output.slice(-500)}`);
    const process = group.start("envoy", ["-c", file, "--disable-hot-restart", "--log-level", "warn"], { logFile: path.join(dir, "envoy.log") });
    await waitFor("recipe Envoy", 20_000, async () => ((await httpGet(adminPort, "/ready").catch(() => ({ status: 0 }))).status === 200 ? true : undefined));
    return { process, adminPort };
}

/** What `kubectl create` (manager kubectl-create) or `kubectl apply` (kubectl-client-side-apply, last-applied annotation) sends. */
async function kubectl(plane: ControlPlane, verb: "create" | "apply", collection: string, object: any): Promise<void> {
    const body =
        verb === "apply"
            ? {
                  ...object,
                  metadata: {
                      ...object.metadata,
                      annotations: { ...object.metadata.annotations, "kubectl.kubernetes.io/last-applied-configuration": JSON.stringify(object) },
                  },
              }
            : object;
    const manager = verb === "apply" ? "kubectl-client-side-apply" : "kubectl-create";
    const res = await plane.request("POST", `${collection}?fieldManager=${manager}`, body);
    if (res.status !== 201)
        throw new Error(`kubectl ${verb} ${object.kind}/${object.metadata.name}: HTTP ${res.status} ${JSON.stringify(res.body).slice(0, 300)}`);
}

/** The recipe's observer objects, as its write-up installs them (`deploy.yaml` is not in the write-up: a minimal Deployment of its Envoy). */
export async function applyRecipeObserver(plane: ControlPlane, clusters: RecipeCluster[], certificate: { certificate: string; privateKey: string }) {
    const ns = `/api/v1/namespaces/${RECIPE_NAMESPACE}`;
    await kubectl(plane, "create", "/api/v1/namespaces", { apiVersion: "v1", kind: "Namespace", metadata: { name: RECIPE_NAMESPACE } });
    const b64 = (text: string) => Buffer.from(text).toString("base64");
    await kubectl(plane, "create", `${ns}/secrets`, {
        apiVersion: "v1",
        kind: "Secret",
        metadata: { name: "certs", namespace: RECIPE_NAMESPACE },
        type: "Opaque",
        data: { "fullchain.pem": b64(certificate.certificate), "privkey.pem": b64(certificate.privateKey) },
    });
    await kubectl(plane, "create", `${ns}/configmaps`, {
        apiVersion: "v1",
        kind: "ConfigMap",
        metadata: { name: "config", namespace: RECIPE_NAMESPACE },
        data: { "envoy.yaml": fs.readFileSync(RECIPE_FIXTURE, "utf8") },
    });
    await kubectl(plane, "apply", `/apis/apps/v1/namespaces/${RECIPE_NAMESPACE}/deployments`, {
        apiVersion: "apps/v1",
        kind: "Deployment",
        metadata: { name: "envoy", namespace: RECIPE_NAMESPACE },
        spec: {
            replicas: 1,
            selector: { matchLabels: RECIPE_SELECTOR },
            template: {
                metadata: { labels: RECIPE_SELECTOR },
                spec: {
                    containers: [
                        {
                            name: "envoy",
                            image: "envoyproxy/envoy:v1.40.0",
                            args: ["-c", "/config/envoy.yaml"],
                            ports: clusters.map((c) => ({ containerPort: c.servicePort })),
                            volumeMounts: [
                                { name: "config", mountPath: "/config" },
                                { name: "certs", mountPath: "/certs" },
                            ],
                        },
                    ],
                    volumes: [
                        { name: "config", configMap: { name: "config" } },
                        { name: "certs", secret: { secretName: "certs" } },
                    ],
                },
            },
        },
    });
    // Exactly as the write-up's service-envoy-cl<n>.yaml.
    for (const c of clusters) {
        await kubectl(plane, "apply", `${ns}/services`, {
            apiVersion: "v1",
            kind: "Service",
            metadata: { labels: { name: `envoy-${c.name}` }, name: `envoy-${c.name}`, namespace: RECIPE_NAMESPACE },
            spec: {
                ports: [{ name: `envoy-${c.name}`, port: c.servicePort, protocol: "TCP", targetPort: c.servicePort }],
                selector: RECIPE_SELECTOR,
                sessionAffinity: "None",
                type: "ClusterIP",
            },
        });
    }
}

/** The recipe's objects on one observed cluster: the `envoy` TLS Secret and the sidecar's Ingress, in the sidecar's namespace. */
export async function applyRecipeObserved(
    plane: ControlPlane,
    cluster: { name: string; host: string; namespace: string; sidecarService: string },
    server: { certificate: string; privateKey: string },
): Promise<void> {
    const b64 = (text: string) => Buffer.from(text).toString("base64");
    await kubectl(plane, "create", `/api/v1/namespaces/${cluster.namespace}/secrets`, {
        apiVersion: "v1",
        kind: "Secret",
        metadata: { name: "envoy", namespace: cluster.namespace },
        type: "kubernetes.io/tls",
        data: { "tls.crt": b64(server.certificate), "tls.key": b64(server.privateKey) },
    });
    await kubectl(plane, "apply", `/apis/networking.k8s.io/v1/namespaces/${cluster.namespace}/ingresses`, {
        apiVersion: "networking.k8s.io/v1",
        kind: "Ingress",
        metadata: {
            name: recipeIngressName(cluster.name),
            namespace: cluster.namespace,
            annotations: { "nginx.ingress.kubernetes.io/grpc-backend": "true", "nginx.ingress.kubernetes.io/protocol": "h2c" },
        },
        spec: {
            ingressClassName: "nginx",
            tls: [{ hosts: [cluster.host], secretName: "envoy" }],
            rules: [
                {
                    host: cluster.host,
                    http: { paths: [{ path: "/", pathType: "Prefix", backend: { service: { name: cluster.sidecarService, port: { name: "grpc" } } } }] },
                },
            ],
        },
    });
}

/** The write-up applies `ing-sidecar-<cluster>.yaml`. */
export function recipeIngressName(cluster: string): string {
    return `sidecar-${cluster}`;
}

/**
 * What kube-proxy does for the Services `envoy-<cluster>` of `namespace`, inside `ns`: a new connection to
 * ClusterIP:port goes to whichever Envoy the Service's EndpointSlices name ready pods of, or is refused when they name
 * none; an open connection stays where it is (conntrack) until its Envoy closes it. `backendOf(pod labels, cluster)`
 * says which loopback port a pod's Envoy listens on for the cluster.
 */
export class EndpointSwitch {
    private readonly forwards = new Map<string, Forward>();
    private readonly servers: net.Server[] = [];
    private readonly sockets = new Set<net.Socket>();
    /** cluster → the loopback port new connections go to (undefined: no ready endpoint). */
    private readonly current = new Map<string, number | undefined>();
    /** Every backend a cluster's new connections went to, in order (a change is appended). */
    readonly history: Record<string, (number | undefined)[]> = {};

    constructor(
        private readonly ns: NetworkNamespace,
        private readonly plane: ControlPlane,
        private readonly namespace: string,
        private readonly clusters: string[],
        private readonly backendOf: (labels: Record<string, string>, cluster: string) => number | undefined,
    ) {}

    /** Follows the API server: the Services' ClusterIPs and their endpoints. */
    async sync(): Promise<void> {
        const pods = await this.plane.request("GET", `/api/v1/namespaces/${this.namespace}/pods`);
        const labelsOf = new Map<string, Record<string, string>>(pods.body.items.map((p: any) => [p.metadata.name, p.metadata.labels ?? {}]));
        for (const cluster of this.clusters) {
            const service = `envoy-${cluster}`;
            const svc = await this.plane.request("GET", `/api/v1/namespaces/${this.namespace}/services/${service}`);
            const slices = await this.plane.request(
                "GET",
                `/apis/discovery.k8s.io/v1/namespaces/${this.namespace}/endpointslices?labelSelector=${encodeURIComponent(`kubernetes.io/service-name=${service}`)}`,
            );
            const ready = (slices.body.items ?? [])
                .flatMap((s: any) => s.endpoints ?? [])
                .filter((e: any) => e.conditions?.ready && e.targetRef?.kind === "Pod")
                .map((e: any) => this.backendOf(labelsOf.get(e.targetRef.name) ?? {}, cluster))
                .filter((port: number | undefined) => port !== undefined);
            const backend = ready[0];
            const seen = (this.history[cluster] ??= []);
            if (seen.length === 0 || seen[seen.length - 1] !== backend) seen.push(backend);
            this.current.set(cluster, backend);
            if (svc.status !== 200) continue;
            const key = `${svc.body.spec.clusterIP}:${svc.body.spec.ports[0].port}`;
            if (!this.forwards.has(`${cluster}@${key}`)) {
                this.ns.addAddress(svc.body.spec.clusterIP);
                this.forwards.set(
                    `${cluster}@${key}`,
                    await this.ns.forwardToHost(svc.body.spec.clusterIP, svc.body.spec.ports[0].port, await this.listen(cluster)),
                );
            }
        }
    }

    private async listen(cluster: string): Promise<number> {
        const server = net.createServer((client) => {
            const backend = this.current.get(cluster);
            if (backend === undefined) {
                client.destroy();
                return;
            }
            const upstream = net.connect(backend, "127.0.0.1");
            for (const s of [client, upstream]) {
                this.sockets.add(s);
                s.on("close", () => this.sockets.delete(s));
                s.on("error", () => (s === client ? upstream : client).destroy());
            }
            client.pipe(upstream).pipe(client);
            upstream.on("close", () => client.destroy());
            client.on("close", () => upstream.destroy());
        });
        this.servers.push(server);
        const port = await freePort();
        await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
        return port;
    }

    async stop(): Promise<void> {
        for (const forward of this.forwards.values()) await forward.stop();
        for (const socket of this.sockets) socket.destroy();
        await Promise.all(this.servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
    }
}
