import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as http from "node:http";
import * as path from "node:path";
import * as tls from "node:tls";
import * as YAML from "yaml";
import { commonLabels, observedNames } from "../../../components/names";
import { ingressAnnotations, ingressSpec } from "../../../components/observed/ingress";
import type { Issued } from "../../../tools/pki/openssl-ca";
import type { Checkpoint, FrontDoorCluster, FrontDoorContext, FrontDoorRequest, FrontDoorSide, Refusal, RunningFrontDoor } from "./front-door";
import { ControlPlane, createObject, kubeBinaries } from "./kube";
import { NetworkNamespace } from "./netns";
import { FatalWaitError, freePort, Started, waitFor } from "./processes";
import { serialOf } from "./tls";

/**
 * Traefik v3.7 as the observed clusters' front door: per cluster the real controller (built by tools/traefik/build.sh)
 * with its `kubernetesIngressNGINX` provider, reading the program's own Ingress and Secrets from that cluster's own
 * real API server (one each, as the observed clusters are: their sidecar Services share namespace and name).
 *
 * Traefik runs in a network namespace of its own, where the sidecar Service's endpoints exist: the API server
 * refuses loopback addresses in an EndpointSlice, so each sidecar gets a "pod IP" (10.244.0.x) that is a local
 * address only inside the namespace, forwarded to the backend on the machine's loopback. Traefik's websecure
 * entrypoint (its 443) is published to the machine's loopback on each cluster's front-door port.
 *
 *     API server ◀──watch── Traefik (netns) ──h2c──▶ 10.244.0.x:port ══▶ 127.0.0.1:port (gRPC backend / sidecar)
 *                              ▲ :8443
 *     Envoy ──mTLS──▶ 127.0.0.1:<front-door port>
 */

const ROOT = path.resolve(__dirname, "../../..");
export const TRAEFIK_BUILD_COMMAND = "bash tools/traefik/build.sh";

/** Where tools/traefik/build.sh puts the binary (asked of the script; builds nothing). */
export function traefikBinary(): string {
    const out = execFileSync("bash", [path.join(ROOT, "tools/traefik/build.sh"), "--print-path"], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    return out.trim().split("\n").pop() ?? "";
}

/** The binary, or `{ skip }` naming the command that builds it; under CI=true a missing binary throws. */
export function requireTraefik(): string | { skip: string } {
    const binary = traefikBinary();
    if (fs.existsSync(binary)) return binary;
    const message = `Traefik missing (${binary}); build it with: ${TRAEFIK_BUILD_COMMAND}`;
    if (process.env.CI === "true") throw new Error(`${message} (CI never skips end-to-end tests)`);
    return { skip: message };
}

/**
 * What Traefik's provider reads in a cluster, as it lists and watches them (its client.go): the RBAC a Traefik
 * replacing ingress-nginx needs, and all it gets here, so a missing rule fails the tests.
 */
export const TRAEFIK_CLUSTER_ROLE_RULES = [
    { apiGroups: ["networking.k8s.io"], resources: ["ingresses", "ingressclasses"], verbs: ["get", "list", "watch"] },
    { apiGroups: ["networking.k8s.io"], resources: ["ingresses/status"], verbs: ["update"] },
    { apiGroups: [""], resources: ["services", "secrets", "configmaps"], verbs: ["get", "list", "watch"] },
    { apiGroups: ["discovery.k8s.io"], resources: ["endpointslices"], verbs: ["get", "list", "watch"] },
];

/** ingress-nginx's controller name, the IngressClass `spec.controller` Traefik's provider matches by default. */
export const INGRESS_NGINX_CONTROLLER = "k8s.io/ingress-nginx";

/**
 * What Traefik does not do of what the program asks of the front door or of what the checks read, each as the tests
 * observe it. A check that meets one of these names it and asserts Traefik's actual behaviour instead.
 */
export const TRAEFIK_GAPS = [
    "SNI: Traefik's access log has no field for the TLS server name the client sent",
    "client serial: Traefik's access log records the verified client certificate's subject (TLSClientSubject), not its serial",
    "nginx.ingress.kubernetes.io/auth-tls-match-cn is ignored: every client certificate the client CA verifies gets through, whatever its CN",
    "nginx.ingress.kubernetes.io/auth-tls-verify-depth is ignored: a client certificate issued by an intermediate CA below the client CA gets through",
] as const;

/** Traefik's debug log line for a TLS handshake it refused (Go's http.Server error log), per refusal. */
const REFUSED_IN_LOG: Partial<Record<Refusal, RegExp>> = {
    "no-client-certificate": /TLS handshake error from .*client didn't provide a certificate/,
    "client-certificate-from-another-ca": /TLS handshake error from .*(certificate signed by unknown authority|failed to verify certificate)/,
};

/** Port of the websecure entrypoint inside the namespace (the cluster's 443) and of Traefik's API. */
const WEBSECURE_PORT = 8443;
const API_PORT = 9000;

export interface TraefikAccessLogEntry {
    RequestHost: string;
    DownstreamStatus: number;
    TLSClientSubject?: string;
}

/** One observed cluster's Traefik: its API server, network namespace and process. */
export interface TraefikInstance {
    plane: ControlPlane;
    ns: NetworkNamespace;
    traefik: Started;
    /** Traefik's API on the machine's loopback. */
    apiPort: number;
    accessLogFile: string;
}

export class TraefikFrontDoor implements RunningFrontDoor {
    readonly kind = "traefik";
    readonly gaps: readonly string[] = TRAEFIK_GAPS;
    private readonly instances = new Map<string, TraefikInstance>();
    private readonly stopping: (() => Promise<void>)[] = [];

    constructor(private readonly context: FrontDoorContext) {}

    /** The Traefik (and its API server) of cluster `name`. */
    instance(name: string): TraefikInstance {
        const instance = this.instances.get(name);
        if (instance === undefined) throw new Error(`no Traefik for cluster ${name}`);
        return instance;
    }

    async add(door: FrontDoorCluster): Promise<FrontDoorSide> {
        const { cluster } = door;
        if (door.ingressNginxConfigMap !== undefined || door.envoyGatewayPolicies !== undefined) {
            throw new Error("Traefik's settings are options of its own, not ingress-nginx's ConfigMap or Envoy Gateway's policies");
        }
        const instance = await this.startCluster(cluster.name);
        const { plane, traefik } = instance;
        const names = observedNames(cluster.name);
        const namespace = cluster.sidecar.namespace;
        await this.addSidecar(instance, cluster, door.backendAddress);

        // The program's own objects, from its builders, as components/observed/cluster.ts creates them.
        const meta = (name: string) => ({ name, namespace, labels: { ...commonLabels, "app.kubernetes.io/component": "observed" } });
        const secrets = (t: { server: Issued; clientCa: string }) => ({
            server: {
                metadata: meta(names.serverTlsSecret),
                type: "kubernetes.io/tls",
                stringData: { "tls.crt": t.server.certificate, "tls.key": t.server.privateKey },
            },
            clientCa: { metadata: meta(names.clientCaSecret), type: "Opaque", stringData: { "ca.crt": t.clientCa } },
        });
        const initial = secrets(door);
        await createObject(plane, `/api/v1/namespaces/${namespace}/secrets`, initial.server);
        await createObject(plane, `/api/v1/namespaces/${namespace}/secrets`, initial.clientCa);
        await createObject(plane, `/apis/networking.k8s.io/v1/namespaces/${namespace}/ingresses`, {
            metadata: { ...meta(names.ingress), annotations: ingressAnnotations({ cluster, verifyDepth: 1, clientIdentity: door.clientIdentity }) },
            spec: ingressSpec(cluster),
        });
        await this.serve(instance, cluster.host, door.port, door.server);

        const requests = (): FrontDoorRequest[] =>
            readAccessLog(instance.accessLogFile)
                .filter((e) => e.RequestHost === cluster.host)
                .map((e) => ({ host: e.RequestHost, status: e.DownstreamStatus, clientSubject: e.TLSClientSubject ?? "" }));
        return {
            requests,
            log: () => traefik.log(),
            checkpoint: (): Checkpoint => ({ requests: requests().length, logLength: traefik.log().length }),
            assertRefused: async (reason, since) => {
                const pattern = REFUSED_IN_LOG[reason];
                if (pattern === undefined) throw new Error(`Traefik does not refuse ${reason} (see its gaps)`);
                if (!pattern.test(traefik.log().slice(since.logLength))) throw new Error(`Traefik's log does not show ${reason} (${pattern})`);
            },
            updateTls: async (t) => {
                const next = secrets(t);
                for (const secret of [next.server, next.clientCa]) {
                    const res = await plane.request("PATCH", `/api/v1/namespaces/${namespace}/secrets/${secret.metadata.name}`, {
                        stringData: secret.stringData,
                    });
                    if (res.status !== 200) throw new Error(`PATCH Secret ${secret.metadata.name}: ${res.status} ${JSON.stringify(res.body).slice(0, 300)}`);
                }
                await waitFor(`Traefik to serve the new certificate for ${cluster.host}`, 30_000, async () =>
                    (await servedSerial(door.port, cluster.host)) === serialOf(t.server.certificate) ? true : undefined,
                );
            },
        };
    }

    /**
     * What the observed cluster already runs before the program: the sidecar Service, an EndpointSlice with its
     * "pod" (an address inside Traefik's namespace, forwarded to `backendAddress` on the machine), and the
     * IngressClass ingress-nginx's installation made, which Traefik's provider matches by its controller.
     */
    async addSidecar(instance: TraefikInstance, cluster: Pick<FrontDoorCluster["cluster"], "sidecar" | "ingress">, backendAddress: string): Promise<void> {
        const { plane, ns } = instance;
        const namespace = cluster.sidecar.namespace;
        const backendPort = Number(backendAddress.split(":").pop());
        const podIp = "10.244.0.10";
        ns.addAddress(podIp);
        await ns.forwardToHost(podIp, backendPort, backendPort);

        const portName = typeof cluster.sidecar.port === "string" ? cluster.sidecar.port : "grpc";
        const servicePort = typeof cluster.sidecar.port === "number" ? cluster.sidecar.port : 10901;
        await createObject(plane, "/api/v1/namespaces", { metadata: { name: namespace } });
        // No selector: the endpoints are the test's own EndpointSlice, not the controller manager's.
        await createObject(plane, `/api/v1/namespaces/${namespace}/services`, {
            metadata: { name: cluster.sidecar.service },
            spec: { ports: [{ name: portName, port: servicePort, targetPort: backendPort }] },
        });
        await createObject(plane, `/apis/discovery.k8s.io/v1/namespaces/${namespace}/endpointslices`, {
            metadata: {
                name: `${cluster.sidecar.service}-test`,
                labels: { "kubernetes.io/service-name": cluster.sidecar.service, "endpointslice.kubernetes.io/managed-by": "envoy-thanos-tests" },
            },
            addressType: "IPv4",
            ports: [{ name: portName, port: backendPort, protocol: "TCP" }],
            endpoints: [{ addresses: [podIp], conditions: { ready: true } }],
        });
        await createObject(plane, "/apis/networking.k8s.io/v1/ingressclasses", {
            metadata: { name: cluster.ingress.className },
            spec: { controller: INGRESS_NGINX_CONTROLLER },
        });
    }

    /** Publishes Traefik's websecure entrypoint on the machine's `port` and waits until it serves `host` with `server`. */
    async serve(instance: TraefikInstance, host: string, port: number, server: Issued): Promise<void> {
        const { ns, traefik, apiPort } = instance;
        await ns.publish(WEBSECURE_PORT, port);
        await waitFor(`Traefik to route ${host} (${traefik.logFile})`, 60_000, async () => {
            if (traefik.child.exitCode !== null) throw new FatalWaitError(`traefik exited: ${traefik.log().slice(-2000)}`);
            return (await routesHost(apiPort, host)) && (await servedSerial(port, host)) === serialOf(server.certificate) ? true : undefined;
        });
    }

    /** An API server for cluster `name` and a Traefik watching it, with the RBAC of TRAEFIK_CLUSTER_ROLE_RULES. */
    async startCluster(name: string): Promise<TraefikInstance> {
        const instance = await this.start(name);
        this.instances.set(name, instance);
        return instance;
    }

    private async start(name: string): Promise<TraefikInstance> {
        const dir = path.join(this.context.dir, name);
        fs.mkdirSync(dir, { recursive: true });
        const plane = new ControlPlane(name, path.join(dir, "kube"), kubeBinaries(), { nodes: 1 });
        this.stopping.push(() => plane.stop());
        await plane.start();
        const ns = await NetworkNamespace.create();
        this.stopping.unshift(() => ns.delete());
        await ns.forwardToHost("127.0.0.1", plane.ports.apiserver, plane.ports.apiserver);

        // Traefik's own ServiceAccount with the provider's RBAC, its token from the TokenRequest API.
        await createObject(plane, "/api/v1/namespaces", { metadata: { name: "traefik" } });
        await createObject(plane, "/api/v1/namespaces/traefik/serviceaccounts", { metadata: { name: "traefik" } });
        await createObject(plane, "/apis/rbac.authorization.k8s.io/v1/clusterroles", { metadata: { name: "traefik" }, rules: TRAEFIK_CLUSTER_ROLE_RULES });
        await createObject(plane, "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", {
            metadata: { name: "traefik" },
            roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "traefik" },
            subjects: [{ kind: "ServiceAccount", name: "traefik", namespace: "traefik" }],
        });
        const token = await plane.request("POST", "/api/v1/namespaces/traefik/serviceaccounts/traefik/token", {
            apiVersion: "authentication.k8s.io/v1",
            kind: "TokenRequest",
            spec: { expirationSeconds: 3600 },
        });
        if (token.status !== 201) throw new Error(`TokenRequest for traefik: ${token.status} ${JSON.stringify(token.body).slice(0, 300)}`);
        const kubeconfig = path.join(dir, "traefik.kubeconfig");
        fs.writeFileSync(
            kubeconfig,
            YAML.stringify({
                apiVersion: "v1",
                kind: "Config",
                clusters: [{ name, cluster: { server: plane.server, "certificate-authority-data": Buffer.from(plane.caPem).toString("base64") } }],
                users: [{ name: "traefik", user: { token: token.body.status.token } }],
                contexts: [{ name, context: { cluster: name, user: "traefik" } }],
                "current-context": name,
            }),
            { mode: 0o600 },
        );

        const accessLogFile = path.join(dir, "access.log");
        const traefik = ns.start(
            "env",
            [
                `KUBECONFIG=${kubeconfig}`,
                traefikBinary(),
                `--entryPoints.websecure.address=127.0.0.1:${WEBSECURE_PORT}`,
                `--entryPoints.traefik.address=127.0.0.1:${API_PORT}`,
                "--api.insecure=true",
                "--providers.kubernetesIngressNGINX=true",
                "--providers.kubernetesIngressNGINX.httpsEntryPoint=websecure",
                // Status as ingress-nginx publishes it; the program's `pulumi up` waits for an Ingress address.
                "--providers.kubernetesIngressNGINX.publishStatusAddress=127.0.0.1",
                "--providers.kubernetesIngressNGINX.throttleDuration=0s",
                "--accessLog=true",
                "--accessLog.format=json",
                `--accessLog.filePath=${accessLogFile}`,
                "--accessLog.bufferingSize=0",
                // Refused TLS handshakes are logged at debug level only.
                "--log.level=DEBUG",
                "--global.checkNewVersion=false",
                "--global.sendAnonymousUsage=false",
            ],
            path.join(dir, "traefik.log"),
        );
        const apiPort = await ns.publish(API_PORT, await freePort());
        await waitFor(`Traefik's API (${traefik.logFile})`, 30_000, async () => {
            if (traefik.child.exitCode !== null) throw new FatalWaitError(`traefik exited: ${traefik.log().slice(-2000)}`);
            return (await getJson(apiPort, "/api/version").catch(() => undefined)) === undefined ? undefined : true;
        });
        return { plane, ns, traefik, apiPort, accessLogFile };
    }

    async stop(): Promise<void> {
        // Each namespace (with its Traefik) before any API server.
        for (const stop of this.stopping.splice(0)) await stop();
    }
}

/** The dynamic configuration a Traefik built (its API's /api/rawdata). */
export function rawData(instance: TraefikInstance): Promise<any> {
    return getJson(instance.apiPort, "/api/rawdata");
}

export function readAccessLog(file: string): TraefikAccessLogEntry[] {
    if (!fs.existsSync(file)) return [];
    return fs
        .readFileSync(file, "utf8")
        .split("\n")
        .filter(Boolean)
        .map((line) => JSON.parse(line) as TraefikAccessLogEntry);
}

function getJson(port: number, pathname: string): Promise<any> {
    return new Promise((resolve, reject) => {
        const req = http.get({ host: "127.0.0.1", port, path: pathname, timeout: 5000 }, (res) => {
            let body = "";
            res.setEncoding("utf8");
            res.on("data", (d) => (body += d));
            res.on("end", () => (res.statusCode === 200 ? resolve(JSON.parse(body)) : reject(new Error(`GET ${pathname}: ${res.statusCode} ${body}`))));
        });
        req.on("timeout", () => req.destroy(new Error(`timeout: GET ${pathname}`)));
        req.on("error", reject);
    });
}

/** Whether Traefik has an enabled router for `host` on websecure. */
async function routesHost(apiPort: number, host: string): Promise<boolean> {
    const routers: any[] = await getJson(apiPort, "/api/http/routers").catch(() => []);
    return routers.some((r) => r.status === "enabled" && String(r.rule).includes(host) && (r.entryPoints ?? []).includes("websecure"));
}

/**
 * Serial of the certificate served for SNI `host` on `port` (no client certificate: TLS 1.3 shows the server's
 * before the server asks for the client's), or undefined while none is served.
 */
function servedSerial(port: number, host: string): Promise<string | undefined> {
    return new Promise((resolve) => {
        const socket = tls.connect({ host: "127.0.0.1", port, servername: host, rejectUnauthorized: false, ALPNProtocols: ["h2"], timeout: 3000 }, () => {
            const cert = socket.getPeerX509Certificate();
            socket.destroy();
            resolve(cert ? cert.serialNumber.toLowerCase().replace(/^0+(?=.)/, "") : undefined);
        });
        socket.on("error", () => resolve(undefined));
        socket.on("timeout", () => {
            socket.destroy();
            resolve(undefined);
        });
    });
}
