import { defaultPortName, METRICS_PORT_NAME, serviceName } from "../../names";
import { defaults } from "../defaults";
import { ConfigProblem } from "../errors";
import { portNameProblem } from "../formats";
import { BuildOptions } from "../options";
import { ClusterInput, StackConfigInput } from "../schema";
import { Connection, resolveConnection } from "./connections";
import type { EnvoyModel } from "./envoy";
import { FrontDoor, GatewayApiModel, gatewayApiModel, IngressModel, ingressModel, resolveFrontDoor } from "./front-doors";

export interface HostPort {
    host: string;
    port: number;
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
    ingress: IngressModel;
}

/** One entry of `clusters`, with every default resolved; its problems are named by `clusters[index].*`. */
export function resolveCluster(
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
    const frontDoor = resolveFrontDoor(c, key, input, problems);
    const sidecarNamespace = c.sidecar?.namespace ?? input.sidecar?.namespace ?? defaults.sidecar.namespace;
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
        gatewayApi: gatewayApiModel(c, input, sidecarNamespace),
        ingress: ingressModel(c),
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

export function checkUnique(clusters: ObservedClusterModel[], field: "name" | "host", problems: ConfigProblem[]): void {
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

export function checkPorts(clusters: ObservedClusterModel[], envoy: EnvoyModel, problems: ConfigProblem[]): void {
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
export function checkPortNames(clusters: ObservedClusterModel[], input: StackConfigInput, problems: ConfigProblem[]): void {
    const seen = new Map<string, number>();
    clusters.forEach((c, i) => {
        const derived = input.clusters[i].portName === undefined;
        // A port name derived from a repeated cluster name repeats with it: checkUnique names that one root cause.
        if (derived && clusters.findIndex((other) => other.name === c.name) < i) return;
        const key = derived ? `clusters[${i}].name` : `clusters[${i}].portName`;
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
