import * as fs from "node:fs";
import { defaults } from "./defaults";
import { ConfigError, ConfigProblem } from "./errors";
import { parseWithProblems } from "./issues";
import { BuildOptions } from "./options";
import { stackConfigSchema } from "./schema";
import { checkPortNames, checkPorts, checkUnique, ObservedClusterModel, resolveCluster } from "./sections/clusters";
import { Connection, resolveConnection } from "./sections/connections";
import { checkAdoption } from "./sections/adoption";
import { checkEnvoyPorts, checkResources, EnvoyModel, resolveEnvoy } from "./sections/envoy";
import { frontDoorWarnings } from "./sections/front-doors";
import { MonitoringModel, resolveMonitoring } from "./sections/monitoring";
import { checkNative, checkNativeAddresses, ObserverMode } from "./sections/native";
import { resolveClientIdentity } from "./tls/identity";
import { resolveTls, TlsModel } from "./tls/resolve";

/**
 * The validated model the program deploys, and `buildModel`, which makes it from the raw config. Each section of the
 * configuration reference resolves in its own module (sections/, tls/), with its part of the model's types; they are
 * re-exported here, so the rest of the program reads the model from this one module.
 */
export type { BuildOptions } from "./options";
export type { HostPort, ObservedClusterModel } from "./sections/clusters";
export type { Connection } from "./sections/connections";
export { toEnvoyDuration } from "./sections/envoy";
export type { EnvoyModel, ResourceList } from "./sections/envoy";
export type { ExistingGateway, FrontDoor, GatewayApiModel, IngressModel } from "./sections/front-doors";
export type { MonitoringModel } from "./sections/monitoring";
export type { ObserverMode } from "./sections/native";
export type { GeneratedTlsModel } from "./tls/generate";
export type { KeyPair, SuppliedMaterial } from "./tls/material";
export type { TlsModel } from "./tls/resolve";

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

export interface Model {
    renderDirectory?: string;
    clusterDomain: string;
    observer: {
        namespace: string;
        createNamespace: boolean;
        /** Import the per-cluster Services that already exist, leaving them as they are until the next `up` without it. */
        adoptServices: boolean;
        connection: Connection;
        mode: ObserverMode;
        querierVersion?: string;
    };
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
    checkEnvoyPorts(envoy, problems);

    const mode = input.observer?.mode ?? defaults.observer.mode;
    if (mode === "native") {
        checkNative(input, problems);
        checkNativeAddresses(clusters, input, problems);
    }
    const adoptServices = input.observer?.adoptServices ?? false;
    if (adoptServices) {
        checkAdoption(input, renderMode, problems);
    }
    const observer = {
        namespace: input.observer?.namespace ?? defaults.observer.namespace,
        // The querier's namespace, where native mode puts its Secret, exists before the program runs.
        createNamespace: input.observer?.createNamespace ?? (mode === "native" ? false : defaults.observer.createNamespace),
        adoptServices,
        connection: resolveConnection(input.observer ?? {}, "observer", renderMode, options, problems),
        mode,
        querierVersion: input.observer?.querierVersion,
    };
    const tls = resolveTls(input, clusters, options, problems);
    const monitoring = resolveMonitoring(input, tls, problems);
    const clientIdentity = resolveClientIdentity(input, tls, clusters, options, problems);
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
