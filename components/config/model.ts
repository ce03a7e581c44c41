import * as fs from "node:fs";
import * as path from "node:path";
import { defaultPortName, METRICS_PORT_NAME, serviceName } from "../names";
import { annotationRefusal } from "../observed/ingress-annotations";
import { checkCaBundle, checkKeyPair, leafCertificate } from "../pki/material";
import { CLIENT_IDENTITY } from "../pki/spec";
import { CaSlot, defaults } from "./defaults";
import { ConfigError, ConfigProblem, setSecretFromFile } from "./errors";
import { closest, durationSeconds, kubeconfigProblem, looksLikeFilePath, parseQuantity, portNameProblem } from "./formats";
import { parseWithProblems } from "./issues";
import { cpuCores, memoryBytes } from "./quantities";
import { ClusterInput, KeyPairInput, StackConfigInput, stackConfigSchema } from "./schema";
import { readPemFile, TLS_FILE_NAMES } from "./tls-files";

type TlsInput = NonNullable<StackConfigInput["tls"]>;

/** How the program reaches a cluster's API server. `none` only in render mode, where no cluster is contacted. */
export type Connection =
    | { kind: "context"; context: string }
    /** `context` picks one of the kubeconfig's contexts; default: its current-context. */
    | { kind: "kubeconfig"; kubeconfig: string; context?: string }
    | { kind: "none" };

export interface HostPort {
    host: string;
    port: number;
}

/** The front door of an observed cluster: a Gateway API Gateway, or an ingress-nginx Ingress (end of life). */
export type FrontDoor = "gateway-api" | "ingress-nginx";

/** A Gateway the platform team owns, and the listener of it that serves the cluster's host. */
export interface ExistingGateway {
    namespace: string;
    name: string;
    sectionName: string;
}

export interface GatewayApiModel {
    /** Unused with `existingGateway`: that Gateway has its own class. */
    gatewayClassName: string;
    /** `envoy-gateway`: also its BackendTrafficPolicy and ClientTrafficPolicy; `other`: standard objects only. */
    implementation: "envoy-gateway" | "other";
    streamTimeoutSeconds: number;
    /** Attach to this Gateway's listener instead of creating a Gateway. */
    existingGateway?: ExistingGateway;
}

export interface ObservedClusterModel {
    name: string;
    host: string;
    /** Envoy listener port on the observer, also the Service port. */
    port: number;
    portName: string;
    serviceName: string;
    /** Where Envoy connects; SNI and :authority are always `host`. */
    address: HostPort;
    connection: Connection;
    sidecar: { namespace: string; service: string; port: string | number };
    frontDoor: FrontDoor;
    gatewayApi: GatewayApiModel;
    ingress: { className: string; annotations: Record<string, string>; streamTimeoutSeconds: number };
}

/** A type, not an interface: Kubernetes' resource maps take it as a string-indexed map. */
export type ResourceList = {
    cpu?: string;
    memory?: string;
    "ephemeral-storage"?: string;
};

export interface EnvoyModel {
    image: string;
    replicas: number;
    logLevel: string;
    adminPort: number;
    metricsPort: number;
    /** Durations in Envoy's protobuf JSON form (`5s`, `0.5s`). */
    connectTimeout: string;
    streamIdleTimeout: string;
    http2Keepalive: { interval: string; timeout: string };
    circuitBreakers: { maxConnections: number; maxPendingRequests: number; maxRequests: number; maxRetries: number };
    maxDownstreamConnections: number;
    /** Streams per upstream connection before Envoy drains it and opens another. */
    maxRequestsPerConnection: number;
    resources: { requests: ResourceList; limits: ResourceList };
    /** Worker threads: the CPU limit rounded up. Without it Envoy starts one worker per CPU of the node. */
    concurrency: number;
    http2Windows: { streamBytes: number; connectionBytes: number };
    /** Seconds a stopping pod lets streams finish (`longestStream`): Envoy's drain time and the pod's grace period. */
    drainSeconds: number;
    /** Heap size at which the overload manager sheds load: `heapPercentOfMemoryLimit` of the memory limit. */
    maxHeapBytes: number;
    accessLog: boolean;
}

export interface KeyPair {
    certificate: string;
    privateKey: string;
}

/** Operator-supplied material, from config values (`provided`) or PEM files (`files`); checked alike. */
export interface SuppliedMaterial {
    /** Verifies the servers' certificates (Envoy, or the querier in native mode). */
    caBundle: string;
    /** Verifies Envoy's client certificate at the front doors: `tls.clientCaBundle` or its file, else caBundle. */
    clientCaBundle: string;
    client: KeyPair;
    servers: Record<string, KeyPair>;
}

export type TlsModel =
    | {
          mode: "generate";
          validityHours: number;
          earlyRenewalHours: number;
          caValidityHours: number;
          /** The CA slot that signs the certificates, and the slots whose CA certificates both sides trust. */
          ca: { issuing: CaSlot; trusted: CaSlot[] };
      }
    | ({ mode: "provided" | "files" } & SuppliedMaterial);

/** Who may reach Envoy, and where Envoy may go; each selector is a label map (`{}`: everything). */
export interface NetworkPolicyModel {
    enabled: boolean;
    querierPodSelector: Record<string, string>;
    querierNamespaceSelector: Record<string, string>;
    scraperPodSelector: Record<string, string>;
    scraperNamespaceSelector: Record<string, string>;
    dnsPodSelector: Record<string, string>;
    dnsNamespaceSelector: Record<string, string>;
}

/** `envoy`: the program deploys Envoy, which does the mTLS; `native`: the querier does it (Thanos >= v0.42). */
export type ObserverMode = "envoy" | "native";

export interface MonitoringModel {
    certificateExpiryDays: number;
    prometheusRule: { enabled: boolean; labels: Record<string, string> };
    serviceMonitor: { enabled: boolean; labels: Record<string, string>; interval: string };
    dashboard: { enabled: boolean; labels: Record<string, string> };
}

export interface Model {
    renderDirectory?: string;
    clusterDomain: string;
    observer: { namespace: string; createNamespace: boolean; connection: Connection; mode: ObserverMode; querierVersion?: string };
    envoy: EnvoyModel;
    networkPolicy: NetworkPolicyModel;
    tls: TlsModel;
    monitoring: MonitoringModel;
    /**
     * The client identity every front door accepts: the CN (ingress-nginx) and DNS subjectAltName (Envoy Gateway) of
     * Envoy's client certificate. `envoy-thanos-client` for generated certificates; a supplied certificate's CN otherwise.
     */
    clientIdentity: string;
    clusters: ObservedClusterModel[];
    /** What the program should say with `pulumi.log.warn` (deprecations); empty for a clean configuration. */
    warnings: string[];
}

export interface BuildOptions {
    /** Check provided PEM material (off where secrets cannot be decrypted, e.g. `npm run envoy-config`). */
    checkSecretMaterial: boolean;
    now: Date;
    /** Where relative `tls.directory` / `tls.files.*` paths start; default: the working directory (the project's, under Pulumi). */
    baseDirectory?: string;
}

/** Validates the raw `envoy-thanos:*` config object and resolves every default. Throws ConfigError. */
export function buildModel(raw: Record<string, unknown>, options: BuildOptions): Model {
    const parsed = parseWithProblems(stackConfigSchema, raw);
    if ("problems" in parsed) {
        throw new ConfigError(parsed.problems);
    }
    const input = parsed.data;
    const problems: ConfigProblem[] = [];
    const renderDirectory = input.renderDirectory;
    const renderMode = renderDirectory !== undefined;
    if (renderDirectory !== undefined && fs.existsSync(renderDirectory) && !fs.statSync(renderDirectory).isDirectory()) {
        problems.push({ key: "renderDirectory", message: `'${renderDirectory}' is an existing file; name a directory (it is created if missing)` });
    }

    const envoy = resolveEnvoy(input, problems);
    checkResources(input, envoy, problems);
    const basePort = input.basePort ?? defaults.basePort;
    const clusters = input.clusters.map((c, i) => resolveCluster(c, i, input, basePort, renderMode, options, problems));
    checkUnique(clusters, "name", problems);
    checkUnique(clusters, "host", problems);
    checkPorts(clusters, envoy, problems);
    checkPortNames(clusters, input, problems);
    if (envoy.adminPort === envoy.metricsPort) {
        problems.push({ key: "envoy.metricsPort", message: `equals envoy.adminPort (${envoy.adminPort}); choose two different ports` });
    }

    const mode = input.observer?.mode ?? defaults.observer.mode;
    if (mode === "native") {
        checkNative(input, problems);
    }
    const observer = {
        namespace: input.observer?.namespace ?? defaults.observer.namespace,
        // The querier's namespace, where native mode puts its Secret, exists before the program runs.
        createNamespace: input.observer?.createNamespace ?? (mode === "native" ? false : defaults.observer.createNamespace),
        connection: resolveConnection(input.observer ?? {}, "observer", renderMode, options, problems),
        mode,
        querierVersion: input.observer?.querierVersion,
    };
    const tls = resolveTls(input, clusters, options, problems);
    const monitoring = resolveMonitoring(input, tls, problems);
    const clientIdentity =
        tls.mode === "generate" || !options.checkSecretMaterial ? CLIENT_IDENTITY : (commonNameOf(tls.client.certificate) ?? CLIENT_IDENTITY);
    if (tls.mode !== "generate" && options.checkSecretMaterial && clusters.some((c) => c.frontDoor === "gateway-api")) {
        const t = input.tls ?? {};
        const key =
            t.mode === "provided"
                ? t.client !== undefined
                    ? "tls.client"
                    : "tls.shared"
                : t.files?.client?.certificate !== undefined
                  ? "tls.files.client.certificate"
                  : "tls.directory";
        checkClientIdentity(tls.client.certificate, clientIdentity, key, problems);
    }
    if (problems.length > 0) {
        throw new ConfigError(problems);
    }
    return {
        renderDirectory,
        clusterDomain: input.clusterDomain ?? defaults.clusterDomain,
        observer,
        envoy,
        networkPolicy: { ...defaults.networkPolicy, ...input.networkPolicy },
        tls,
        monitoring,
        clientIdentity,
        clusters,
        warnings: frontDoorWarnings(input),
    };
}

/** A stack that names no front door keeps its Ingresses (as before front doors were a choice), with one warning. */
function frontDoorWarnings(input: StackConfigInput): string[] {
    const unnamed = input.clusters.flatMap((c, i) => (c.frontDoor === undefined ? [i] : []));
    if (input.frontDoor !== undefined || unnamed.length === 0) return [];
    const which = unnamed.map((i) => input.clusters[i].name).join(", ");
    return [
        `No front door is configured for ${which}, so ${unnamed.length === 1 ? "it keeps its" : "they keep their"} ingress-nginx Ingress. ` +
            "ingress-nginx reached end of life in March 2026 (no more releases or security fixes). Switch with " +
            "`pulumi config set --path frontDoor gateway-api` (or per cluster: `pulumi config set --path 'clusters[0].frontDoor' gateway-api`); " +
            "keep the Ingresses and silence this warning with `pulumi config set --path frontDoor ingress-nginx`. " +
            'docs/front-doors.md, "Migrating a cluster from ingress-nginx to gateway-api", explains the migration.',
    ];
}

/** The subject CN of the first certificate in `pem`, or undefined when there is none or it cannot be read. */
function commonNameOf(pem: string): string | undefined {
    // Unreadable material gives undefined here; the material checks report it.
    return leafCertificate(pem)
        ?.subject.split("\n")
        .find((line) => line.startsWith("CN="))
        ?.slice(3);
}

/**
 * Envoy Gateway pins a client by subjectAltName only, so a gateway-api cluster needs Envoy's client certificate to carry
 * its CN as a DNS subjectAltName too. Generated certificates do; supplied ones are checked here.
 */
function checkClientIdentity(certificatePem: string, identity: string, key: string, problems: ConfigProblem[]): void {
    // Unreadable material is reported by the material checks.
    const leaf = leafCertificate(certificatePem);
    if (leaf === undefined || leaf.checkHost(identity, { subject: "never" }) !== undefined) return;
    problems.push({
        key,
        message:
            `Envoy's client certificate (CN=${identity}) has no DNS subjectAltName ${identity}; a gateway-api front door (Envoy Gateway) ` +
            `pins the client by subjectAltName. Issue it with subjectAltName=DNS:${identity}, or set frontDoor: ingress-nginx`,
    });
}

/** What `observer.mode: native` cannot do: everything that configures the Envoy it does not deploy, and old queriers. */
function checkNative(input: StackConfigInput, problems: ConfigProblem[]): void {
    const switchBack = "or set observer.mode: envoy";
    if (input.observer?.namespace === undefined) {
        problems.push({
            key: "observer.namespace",
            message: "is required with observer.mode: native: set it to the querier's namespace, since a pod can mount only Secrets of its own namespace",
        });
    }
    const version = input.observer?.querierVersion;
    if (version !== undefined) {
        const [major, minor] = version.replace(/^v/, "").split(".").map(Number);
        const [minMajor, minMinor] = defaults.nativeMinimumQuerierVersion;
        if (major < minMajor || (major === minMajor && minor < minMinor)) {
            problems.push({
                key: "observer.querierVersion",
                message: `(${version}) is older than v${minMajor}.${minMinor}, the first Thanos querier with per-endpoint TLS; upgrade the querier ${switchBack}`,
            });
        }
    }
    if (input.envoy !== undefined) {
        problems.push({ key: "envoy", message: `configures Envoy, which observer.mode: native does not deploy; remove envoy.* ${switchBack}` });
    }
    if (input.monitoring !== undefined) {
        problems.push({ key: "monitoring", message: `watches Envoy, which observer.mode: native does not deploy; remove monitoring.* ${switchBack}` });
    }
    if (input.networkPolicy !== undefined) {
        problems.push({
            key: "networkPolicy",
            message: `guards Envoy's listeners, which observer.mode: native does not deploy; remove networkPolicy.* ${switchBack}`,
        });
    }
    input.clusters.forEach((c, i) => {
        for (const field of ["port", "portName"] as const) {
            if (c[field] !== undefined) {
                problems.push({
                    key: `clusters[${i}].${field}`,
                    message: `names an Envoy listener, and observer.mode: native has none (the querier connects to the cluster's address); remove it ${switchBack}`,
                });
            }
        }
    });
}

function resolveMonitoring(input: StackConfigInput, tls: TlsModel, problems: ConfigProblem[]): MonitoringModel {
    const m = input.monitoring ?? {};
    const d = defaults.monitoring;
    const certificateExpiryDays = m.certificateExpiryDays ?? d.certificateExpiryDays;
    // An alert threshold as long as the certificates live would fire from the day they are issued.
    if (tls.mode === "generate" && certificateExpiryDays * 24 >= tls.validityHours) {
        problems.push({
            key: "monitoring.certificateExpiryDays",
            message: `(${certificateExpiryDays} days) must be shorter than the certificates' lifetime, tls.validityHours (${tls.validityHours} hours), or the alert fires from the start`,
        });
    }
    return {
        certificateExpiryDays,
        prometheusRule: { enabled: m.prometheusRule?.enabled ?? d.prometheusRule.enabled, labels: m.prometheusRule?.labels ?? {} },
        serviceMonitor: {
            enabled: m.serviceMonitor?.enabled ?? d.serviceMonitor.enabled,
            labels: m.serviceMonitor?.labels ?? {},
            interval: m.serviceMonitor?.interval ?? d.serviceMonitor.interval,
        },
        dashboard: { enabled: m.dashboard?.enabled ?? d.dashboard.enabled, labels: { ...m.dashboard?.labels, ...d.dashboardLabel } },
    };
}

/** `500ms` → `0.5s`, `2m` → `120s`: the form Envoy's protobuf Duration accepts. */
export function toEnvoyDuration(value: string): string {
    const seconds = durationSeconds(value);
    if (seconds === undefined) {
        throw new Error(`not a duration: ${value}`);
    }
    return `${Number(seconds.toFixed(3))}s`;
}

/** Longer than this, a stopping pod would hold its node for more than an hour. */
const MAX_LONGEST_STREAM_SECONDS = 3600;

function resolveEnvoy(input: StackConfigInput, problems: ConfigProblem[]): EnvoyModel {
    const e = input.envoy ?? {};
    const d = defaults.envoy;
    const limits = { ...d.resources.limits, ...e.resources?.limits };
    const cores = cpuCores(limits.cpu);
    if (cores === undefined) {
        problems.push({
            key: "envoy.resources.limits.cpu",
            message: `'${limits.cpu}' is not a CPU quantity; write cores such as 1, 2 or 500m (Envoy's worker count follows it)`,
        });
    }
    const memory = memoryBytes(limits.memory);
    if (memory === undefined) {
        problems.push({
            key: "envoy.resources.limits.memory",
            message: `'${limits.memory}' is not a memory quantity; write bytes such as 512Mi or 1Gi (Envoy's overload manager is sized from it)`,
        });
    }
    const longestStream = e.longestStream ?? d.longestStream;
    const drainSeconds = Math.ceil(Number(toEnvoyDuration(longestStream).slice(0, -1)));
    if (drainSeconds < 1 || drainSeconds > MAX_LONGEST_STREAM_SECONDS) {
        problems.push({ key: "envoy.longestStream", message: `'${longestStream}' must be between 1s and 1h (a stopping pod drains this long)` });
    }
    const heapPercent = e.heapPercentOfMemoryLimit ?? d.heapPercentOfMemoryLimit;
    return {
        image: e.image ?? d.image,
        replicas: e.replicas ?? d.replicas,
        logLevel: e.logLevel ?? d.logLevel,
        adminPort: e.adminPort ?? d.adminPort,
        metricsPort: e.metricsPort ?? d.metricsPort,
        connectTimeout: toEnvoyDuration(e.connectTimeout ?? d.connectTimeout),
        streamIdleTimeout: toEnvoyDuration(e.streamIdleTimeout ?? d.streamIdleTimeout),
        http2Keepalive: {
            interval: toEnvoyDuration(e.http2Keepalive?.interval ?? d.http2Keepalive.interval),
            timeout: toEnvoyDuration(e.http2Keepalive?.timeout ?? d.http2Keepalive.timeout),
        },
        circuitBreakers: { ...d.circuitBreakers, ...e.circuitBreakers },
        maxDownstreamConnections: e.maxDownstreamConnections ?? d.maxDownstreamConnections,
        maxRequestsPerConnection: e.maxRequestsPerConnection ?? d.maxRequestsPerConnection,
        resources: {
            requests: { ...d.resources.requests, ...e.resources?.requests },
            limits,
        },
        concurrency: Math.max(1, Math.ceil(cores ?? 1)),
        http2Windows: { ...d.http2Windows, ...e.http2Windows },
        drainSeconds,
        maxHeapBytes: Math.floor(((memory ?? 0) * heapPercent) / 100),
        accessLog: e.accessLog ?? d.accessLog,
    };
}

function resolveCluster(
    c: ClusterInput,
    index: number,
    input: StackConfigInput,
    basePort: number,
    renderMode: boolean,
    options: BuildOptions,
    problems: ConfigProblem[],
): ObservedClusterModel {
    const key = `clusters[${index}]`;
    const portName = c.portName ?? defaultPortName(c.name);
    // An explicit portName was checked by the schema; the default one is derived from the name.
    const portNameIssue = c.portName === undefined ? portNameProblem(portName) : undefined;
    if (portNameIssue !== undefined) {
        problems.push({
            key: `${key}.name`,
            message: `gives the Service port name '${portName}', which ${portNameIssue}; use a name of at most 9 characters or set ${key}.portName`,
        });
    }
    const frontDoor = c.frontDoor ?? input.frontDoor ?? defaults.frontDoor;
    const other = (block: "ingress" | "gatewayApi", door: FrontDoor) =>
        problems.push({
            key: `${key}.${block}`,
            message: `configures the ${door} front door, but this cluster's front door is ${frontDoor}; remove ${key}.${block}, or set ${key}.frontDoor to ${door}`,
        });
    if (frontDoor === "gateway-api" && c.ingress !== undefined) other("ingress", "ingress-nginx");
    if (frontDoor === "ingress-nginx" && c.gatewayApi !== undefined) other("gatewayApi", "gateway-api");
    for (const [annotation, value] of Object.entries(c.ingress?.annotations ?? {})) {
        const refusal = annotationRefusal(annotation, value, key);
        if (refusal !== undefined) {
            problems.push({ key: `${key}.ingress.annotations.${annotation}`, message: `${refusal.why}; ${refusal.fix}` });
        }
    }
    // The existing Gateway has its own class: a class next to it (in the same block) would be ignored, so it is refused.
    for (const [block, where] of [
        [c.gatewayApi, `${key}.gatewayApi`],
        [input.gatewayApi, "gatewayApi"],
    ] as const) {
        if (block?.existingGateway !== undefined && block.gatewayClassName !== undefined) {
            problems.push({
                key: `${where}.gatewayClassName`,
                message: `has no effect next to ${where}.existingGateway (that Gateway has its own class); remove one of the two`,
            });
        }
    }
    const sidecarNamespace = c.sidecar?.namespace ?? input.sidecar?.namespace ?? defaults.sidecar.namespace;
    const existing = c.gatewayApi?.existingGateway ?? input.gatewayApi?.existingGateway;
    const sidecarPort = c.sidecar?.port ?? input.sidecar?.port ?? (frontDoor === "gateway-api" ? defaults.sidecar.portNumber : defaults.sidecar.port);
    if (frontDoor === "gateway-api" && typeof sidecarPort === "string") {
        problems.push({
            key: c.sidecar?.port !== undefined ? `${key}.sidecar.port` : "sidecar.port",
            message:
                `is the port name '${sidecarPort}', but a GRPCRoute (this cluster's front door is gateway-api) names the Service port by number; ` +
                `set it to the number of that port (${defaults.sidecar.portNumber} for kube-prometheus-stack's thanos Service)`,
        });
    }
    const address = c.address === undefined ? { host: c.host, port: 443 } : parseAddress(c.address, `${key}.address`, problems);
    const port = c.port ?? basePort + index;
    if (c.port === undefined && port > 65535) {
        problems.push({ key: `${key}.port`, message: `basePort + ${index} = ${port} is above 65535; lower basePort or set ${key}.port` });
    }
    return {
        name: c.name,
        host: c.host,
        port,
        portName,
        serviceName: serviceName(c.name),
        address,
        connection: resolveConnection(c, key, renderMode, options, problems),
        sidecar: {
            namespace: sidecarNamespace,
            service: c.sidecar?.service ?? input.sidecar?.service ?? defaults.sidecar.service,
            port: sidecarPort,
        },
        frontDoor,
        gatewayApi: {
            gatewayClassName: c.gatewayApi?.gatewayClassName ?? input.gatewayApi?.gatewayClassName ?? defaults.gatewayApi.gatewayClassName,
            implementation: c.gatewayApi?.implementation ?? input.gatewayApi?.implementation ?? defaults.gatewayApi.implementation,
            streamTimeoutSeconds: c.gatewayApi?.streamTimeoutSeconds ?? input.gatewayApi?.streamTimeoutSeconds ?? defaults.gatewayApi.streamTimeoutSeconds,
            ...(existing === undefined ? {} : { existingGateway: { ...existing, namespace: existing.namespace ?? sidecarNamespace } }),
        },
        ingress: {
            className: c.ingress?.className ?? defaults.ingress.className,
            annotations: c.ingress?.annotations ?? {},
            streamTimeoutSeconds: c.ingress?.streamTimeoutSeconds ?? defaults.ingress.streamTimeoutSeconds,
        },
    };
}

function parseAddress(value: string, key: string, problems: ConfigProblem[]): HostPort {
    const match = /^([a-z0-9.-]+)(?::(\d{1,5}))?$/.exec(value);
    const port = match?.[2] === undefined ? 443 : Number(match[2]);
    if (match === null || !/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(match[1]) || port < 1 || port > 65535) {
        problems.push({ key, message: "must be host or host:port (lowercase hostname or IPv4 address, port 1-65535), e.g. lb.example.net:8443" });
        return { host: value, port: 443 };
    }
    return { host: match[1], port };
}

function resolveConnection(
    c: { context?: string; kubeconfig?: string },
    key: string,
    renderMode: boolean,
    options: BuildOptions,
    problems: ConfigProblem[],
): Connection {
    if (c.kubeconfig !== undefined) {
        const problem = options.checkSecretMaterial ? kubeconfigProblem(c.kubeconfig, c.context) : undefined;
        if (problem !== undefined) {
            const fix = looksLikeFilePath(c.kubeconfig) ? `: ${setSecretFromFile(`${key}.kubeconfig`, c.kubeconfig.trim())}` : "";
            problems.push({ key: `${key}.${problem.field}`, message: problem.message + fix });
        }
        return { kind: "kubeconfig", kubeconfig: c.kubeconfig, context: c.context };
    }
    if (c.context !== undefined) {
        return { kind: "context", context: c.context };
    }
    if (!renderMode) {
        problems.push({
            key,
            message: `has neither context nor kubeconfig; set ${key}.context to a kubeconfig context, or ${key}.kubeconfig (secret) to kubeconfig content, or set renderDirectory to render manifests without a cluster`,
        });
    }
    return { kind: "none" };
}

function checkUnique(clusters: ObservedClusterModel[], field: "name" | "host", problems: ConfigProblem[]): void {
    const seen = new Map<string, number>();
    clusters.forEach((c, i) => {
        const first = seen.get(c[field]);
        if (first !== undefined) {
            problems.push({
                key: `clusters[${i}].${field}`,
                message: `'${c[field]}' is already used by clusters[${first}]; each cluster needs its own ${field}`,
            });
        } else {
            seen.set(c[field], i);
        }
    });
}

function checkPorts(clusters: ObservedClusterModel[], envoy: EnvoyModel, problems: ConfigProblem[]): void {
    const seen = new Map<number, string>([
        [envoy.adminPort, "envoy.adminPort"],
        [envoy.metricsPort, "envoy.metricsPort"],
    ]);
    clusters.forEach((c, i) => {
        const owner = seen.get(c.port);
        if (owner !== undefined) {
            problems.push({
                key: `clusters[${i}].port`,
                message: `${c.port} is already used by ${owner}; give this cluster another port (explicitly, or by moving basePort)`,
            });
        } else {
            seen.set(c.port, `clusters[${i}]`);
        }
    });
}

/** Service port names share one container port list with the metrics port; Kubernetes refuses duplicates there. */
function checkPortNames(clusters: ObservedClusterModel[], input: StackConfigInput, problems: ConfigProblem[]): void {
    const seen = new Map<string, number>();
    clusters.forEach((c, i) => {
        const key = input.clusters[i].portName === undefined ? `clusters[${i}].name` : `clusters[${i}].portName`;
        const first = seen.get(c.portName);
        if (c.portName === METRICS_PORT_NAME) {
            problems.push({ key, message: `'${c.portName}' is the name of Envoy's metrics port; choose another port name` });
        } else if (first !== undefined) {
            problems.push({ key, message: `gives the port name '${c.portName}', already used by clusters[${first}]; give each cluster its own portName` });
        } else {
            seen.set(c.portName, i);
        }
    });
}

/** A container's request may not exceed its limit (Kubernetes refuses the pod); defaults count on either side. */
function checkResources(input: StackConfigInput, envoy: EnvoyModel, problems: ConfigProblem[]): void {
    for (const resource of ["cpu", "memory", "ephemeral-storage"] as const) {
        const request = envoy.resources.requests[resource];
        const limit = envoy.resources.limits[resource];
        if (request === undefined || limit === undefined || (parseQuantity(request) ?? 0) <= (parseQuantity(limit) ?? Infinity)) {
            continue;
        }
        const requestSet = input.envoy?.resources?.requests?.[resource] !== undefined;
        const limitSet = input.envoy?.resources?.limits?.[resource] !== undefined;
        const limitKey = `envoy.resources.limits.${resource}`;
        problems.push({
            key: requestSet ? `envoy.resources.requests.${resource}` : limitKey,
            message: requestSet
                ? `(${request}) is above ${limitKey} (${limit}${limitSet ? "" : ", the default"}); lower the request or raise the limit`
                : `(${limit}) is below the default request of ${request}; raise the limit or set envoy.resources.requests.${resource}`,
        });
    }
}

/** Which `tls.*` keys belong to which mode; a key of another mode is a mistake worth naming. */
const TLS_KEYS_BY_MODE = {
    generate: ["validityHours", "earlyRenewalHours", "caValidityHours", "ca"],
    provided: ["caBundle", "clientCaBundle", "client", "servers", "shared"],
    files: ["directory", "files"],
} as const;

function resolveTls(input: StackConfigInput, clusters: ObservedClusterModel[], options: BuildOptions, problems: ConfigProblem[]): TlsModel {
    const t = input.tls ?? {};
    const mode = t.mode ?? defaults.tls.mode;
    for (const [otherMode, keys] of Object.entries(TLS_KEYS_BY_MODE)) {
        if (otherMode === mode) continue;
        for (const field of keys) {
            if (t[field] !== undefined) {
                problems.push({ key: `tls.${field}`, message: `is only used with tls.mode: ${otherMode}; remove it or set tls.mode to ${otherMode}` });
            }
        }
    }
    if (mode === "generate") {
        const issuing = t.ca?.issuing ?? defaults.tls.ca.issuing;
        // No default follows issuing: moving it alone would switch CAs without the overlap; say so instead.
        const trusted = t.ca?.trusted ?? [...defaults.tls.ca.trusted];
        if (new Set(trusted).size !== trusted.length) {
            problems.push({ key: "tls.ca.trusted", message: `lists a slot twice (${trusted.join(", ")}); list a, b or both once` });
        }
        if (!trusted.includes(issuing)) {
            problems.push({
                key: "tls.ca.trusted",
                message: `(${trusted.join(", ")}) must include tls.ca.issuing (${issuing}): both sides must trust the CA that signs the certificates`,
            });
        }
        const model = {
            mode,
            validityHours: t.validityHours ?? defaults.tls.validityHours,
            earlyRenewalHours: t.earlyRenewalHours ?? defaults.tls.earlyRenewalHours,
            caValidityHours: t.caValidityHours ?? defaults.tls.caValidityHours,
            ca: { issuing, trusted },
        };
        if (model.earlyRenewalHours >= model.validityHours) {
            problems.push({
                key: "tls.earlyRenewalHours",
                message: `(${model.earlyRenewalHours}) must be less than tls.validityHours (${model.validityHours}); lower it or raise tls.validityHours`,
            });
        }
        if (model.validityHours > model.caValidityHours) {
            problems.push({
                key: "tls.validityHours",
                message: `(${model.validityHours}) must not exceed tls.caValidityHours (${model.caValidityHours}); lower it or raise tls.caValidityHours`,
            });
        }
        return model;
    }
    const material = mode === "provided" ? materialFromConfig(t, clusters, problems) : materialFromFiles(t, clusters, options, problems);
    if (options.checkSecretMaterial) {
        checkMaterial(material, clusters, options.now, problems);
    }
    const servers = Object.fromEntries(Object.entries(material.servers).map(([name, pair]) => [name, keyPairOf(pair)]));
    const caBundle = material.caBundle?.text ?? "";
    return { mode, caBundle, clientCaBundle: material.clientCaBundle?.text ?? caBundle, client: keyPairOf(material.client), servers };
}

/** One piece of PEM material and where it came from, so that a problem names the config key and the file. */
interface PemItem {
    text: string;
    /** The config key that located it (`tls.client`, `tls.directory`, `tls.files.caBundle`). */
    key: string;
    /** Prefix for messages about it: empty for config values, the file name(s) for files. */
    origin: string;
}

interface PairItem {
    certificate: string;
    privateKey: string;
    /** Key and message prefix for a problem with the pair as a whole. */
    key: string;
    origin: string;
    /** Key and message prefix for a problem with one of its two parts (`tls.client.privateKey`, or its file). */
    parts: Record<"certificate" | "privateKey", { key: string; origin: string }>;
}

/** A pair from config values: each part is its own key. */
function configPair(pair: KeyPairInput, key: string): PairItem {
    const part = (field: string) => ({ key: `${key}.${field}`, origin: "" });
    return { ...pair, key, origin: "", parts: { certificate: part("certificate"), privateKey: part("privateKey") } };
}

/** Material read from config or files; a missing item was already reported. */
interface Material {
    caBundle?: PemItem;
    /** Only when given apart from caBundle. */
    clientCaBundle?: PemItem;
    client?: PairItem;
    servers: Record<string, PairItem>;
}

function keyPairOf(pair: PairItem | undefined): KeyPair {
    return { certificate: pair?.certificate ?? "", privateKey: pair?.privateKey ?? "" };
}

function checkUnknownServerNames(names: string[], keyPrefix: string, clusters: ObservedClusterModel[], problems: ConfigProblem[]): void {
    const known = new Set(clusters.map((c) => c.name));
    for (const name of names) {
        if (!known.has(name)) {
            const suggestion = closest(name, [...known]);
            problems.push({
                key: `${keyPrefix}.${name}`,
                message:
                    `names no cluster in clusters; rename it to one of: ${[...known].join(", ")}` +
                    (suggestion === undefined ? "" : ` (did you mean ${suggestion}?)`),
            });
        }
    }
}

function materialFromConfig(t: TlsInput, clusters: ObservedClusterModel[], problems: ConfigProblem[]): Material {
    const missing = (key: string, what: string) => problems.push({ key, message: `is missing: tls.mode is provided, so set ${what}` });
    if (t.caBundle === undefined) {
        missing("tls.caBundle", "tls.caBundle to the CA certificate(s) that issued the server and client certificates");
    }
    const clientInput: KeyPairInput | undefined = t.client ?? t.shared;
    if (clientInput === undefined) {
        missing("tls.client", "tls.client.certificate and tls.client.privateKey, or tls.shared for one certificate on every side");
    }
    checkUnknownServerNames(Object.keys(t.servers ?? {}), "tls.servers", clusters, problems);
    const servers: Record<string, PairItem> = {};
    for (const c of clusters) {
        const pair = t.servers?.[c.name] ?? t.shared;
        if (pair === undefined) {
            missing(`tls.servers.${c.name}`, `tls.servers.${c.name}.certificate and .privateKey, or tls.shared`);
        } else {
            servers[c.name] = configPair(pair, t.servers?.[c.name] !== undefined ? `tls.servers.${c.name}` : "tls.shared");
        }
    }
    return {
        caBundle: t.caBundle === undefined ? undefined : { text: t.caBundle, key: "tls.caBundle", origin: "" },
        clientCaBundle: t.clientCaBundle === undefined ? undefined : { text: t.clientCaBundle, key: "tls.clientCaBundle", origin: "" },
        client: clientInput === undefined ? undefined : configPair(clientInput, t.client !== undefined ? "tls.client" : "tls.shared"),
        servers,
    };
}

/**
 * `tls.mode: files`: each item's path is its `tls.files.*` entry, else its documented name in `tls.directory`.
 * Files are read only where material is checked; tools that only need the Envoy bootstrap never touch them.
 */
function materialFromFiles(t: TlsInput, clusters: ObservedClusterModel[], options: BuildOptions, problems: ConfigProblem[]): Material {
    const base = options.baseDirectory ?? process.cwd();
    const directory = t.directory;
    if (directory !== undefined && options.checkSecretMaterial && !fs.existsSync(path.resolve(base, directory))) {
        problems.push({
            key: "tls.directory",
            message:
                `directory ${directory} does not exist (relative paths start at ${base}); create it with the files docs/certificates.md ` +
                `("Certificates from files") lists, or point tls.directory elsewhere`,
        });
        return { servers: {} };
    }
    checkUnknownServerNames(Object.keys(t.files?.servers ?? {}), "tls.files.servers", clusters, problems);
    const locate = (override: string | undefined, overrideKey: string, nameInDirectory: string) => {
        if (override !== undefined) return { file: override, key: overrideKey };
        if (directory !== undefined) return { file: path.join(directory, nameInDirectory), key: "tls.directory" };
        problems.push({ key: overrideKey, message: "is missing: tls.mode is files, so set tls.directory, or this key to the file's path" });
        return undefined;
    };
    const read = (where: { file: string; key: string } | undefined): string | undefined => {
        if (where === undefined) return undefined;
        if (!options.checkSecretMaterial) return "";
        const result = readPemFile(where.file, base);
        if (!result.ok) {
            problems.push({ key: where.key, message: result.problem });
            return undefined;
        }
        return result.text;
    };
    const pair = (certificate: ReturnType<typeof locate>, privateKey: ReturnType<typeof locate>): PairItem | undefined => {
        const certificateText = read(certificate);
        const privateKeyText = read(privateKey);
        if (certificate === undefined || privateKey === undefined || certificateText === undefined || privateKeyText === undefined) return undefined;
        const key = certificate.key === privateKey.key ? certificate.key : `${certificate.key}, ${privateKey.key}`;
        return {
            certificate: certificateText,
            privateKey: privateKeyText,
            key,
            origin: `${certificate.file} / ${privateKey.file}: `,
            parts: {
                certificate: { key: certificate.key, origin: `${certificate.file}: ` },
                privateKey: { key: privateKey.key, origin: `${privateKey.file}: ` },
            },
        };
    };

    const caLocation = locate(t.files?.caBundle, "tls.files.caBundle", TLS_FILE_NAMES.caBundle);
    const caText = read(caLocation);
    // The client CA file is optional in the directory: without it, ca.crt verifies Envoy's client certificate too.
    const clientCaInDirectory = directory === undefined ? undefined : path.join(directory, TLS_FILE_NAMES.clientCaBundle);
    const clientCaLocation =
        t.files?.clientCaBundle !== undefined
            ? { file: t.files.clientCaBundle, key: "tls.files.clientCaBundle" }
            : clientCaInDirectory !== undefined && options.checkSecretMaterial && fs.existsSync(path.resolve(base, clientCaInDirectory))
              ? { file: clientCaInDirectory, key: "tls.directory" }
              : undefined;
    const clientCaText = read(clientCaLocation);
    const client = pair(
        locate(t.files?.client?.certificate, "tls.files.client.certificate", TLS_FILE_NAMES.clientCertificate),
        locate(t.files?.client?.privateKey, "tls.files.client.privateKey", TLS_FILE_NAMES.clientPrivateKey),
    );
    const servers: Record<string, PairItem> = {};
    for (const c of clusters) {
        const overrides = t.files?.servers?.[c.name];
        const server = pair(
            locate(overrides?.certificate, `tls.files.servers.${c.name}.certificate`, TLS_FILE_NAMES.serverCertificate(c.name)),
            locate(overrides?.privateKey, `tls.files.servers.${c.name}.privateKey`, TLS_FILE_NAMES.serverPrivateKey(c.name)),
        );
        if (server !== undefined) servers[c.name] = server;
    }
    return {
        caBundle: caLocation === undefined || caText === undefined ? undefined : { text: caText, key: caLocation.key, origin: `${caLocation.file}: ` },
        clientCaBundle:
            clientCaLocation === undefined || clientCaText === undefined
                ? undefined
                : { text: clientCaText, key: clientCaLocation.key, origin: `${clientCaLocation.file}: ` },
        client,
        servers,
    };
}

/**
 * The same checks for material from config and from files; each problem names the key and, for files, the file.
 * One root cause, one message: a config value that is a file path is reported as such and not parsed, and chains
 * are checked only against a usable CA bundle (a broken bundle is reported once, not once per certificate).
 */
function checkMaterial(material: Material, clusters: ObservedClusterModel[], now: Date, problems: ConfigProblem[]): void {
    const { client } = material;
    const pathGiven = (key: string, origin: string, value: string): boolean => {
        if (origin !== "" || !looksLikeFilePath(value)) return false;
        problems.push({ key, message: `looks like a file path; set the file's content: ${setSecretFromFile(key, value.trim())}` });
        return true;
    };
    /** A bundle's CA certificates (only when usable) and how messages name it. */
    const bundle = (item: PemItem | undefined, defaultName: string) => {
        const name = item === undefined || item.origin === "" ? defaultName : item.origin.slice(0, -2);
        if (item === undefined || pathGiven(item.key, item.origin, item.text)) return { roots: undefined, name };
        const checked = checkCaBundle(item.text, now);
        checked.problems.forEach((message) => problems.push({ key: item.key, message: item.origin + message }));
        return { roots: checked.roots, name };
    };
    const serverCa = bundle(material.caBundle, "tls.caBundle");
    // Envoy's client certificate must chain to what the front doors verify it against.
    const clientCa = material.clientCaBundle === undefined ? serverCa : bundle(material.clientCaBundle, "tls.clientCaBundle");
    const checkPair = (pair: PairItem, purpose: "client" | "server", hosts: string[], ca: typeof serverCa) => {
        const certificatePath = pathGiven(pair.parts.certificate.key, pair.parts.certificate.origin, pair.certificate);
        const privateKeyPath = pathGiven(pair.parts.privateKey.key, pair.parts.privateKey.origin, pair.privateKey);
        if (certificatePath || privateKeyPath) return;
        for (const p of checkKeyPair(pair.certificate, pair.privateKey, { purpose, hosts, now, roots: ca.roots, caName: ca.name })) {
            const where = p.field === undefined ? pair : pair.parts[p.field];
            problems.push({ key: where.key, message: where.origin + p.message });
        }
    };
    if (client !== undefined) {
        checkPair(client, "client", [], clientCa);
    }
    for (const c of clusters) {
        const server = material.servers[c.name];
        if (server !== undefined) {
            checkPair(server, "server", [c.host], serverCa);
        }
    }
}
