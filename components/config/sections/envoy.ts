import { ConfigProblem } from "../errors";
import { defaults } from "../defaults";
import { durationSeconds, parseQuantity } from "../formats";
import { cpuCores, memoryBytes } from "../quantities";
import { StackConfigInput } from "../schema";

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

export function resolveEnvoy(input: StackConfigInput, problems: ConfigProblem[]): EnvoyModel {
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

/** A container's request may not exceed its limit (Kubernetes refuses the pod); defaults count on either side. */
export function checkResources(input: StackConfigInput, envoy: EnvoyModel, problems: ConfigProblem[]): void {
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

/** The admin and metrics listeners share Envoy's pod with the clusters' listeners. */
export function checkEnvoyPorts(envoy: EnvoyModel, problems: ConfigProblem[]): void {
    if (envoy.adminPort === envoy.metricsPort) {
        problems.push({ key: "envoy.metricsPort", message: `equals envoy.adminPort (${envoy.adminPort}); choose two different ports` });
    }
}
