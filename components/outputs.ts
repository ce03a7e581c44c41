import * as YAML from "yaml";
import type { Model } from "./config/model";
import { srvRecord } from "./names";
import { nativeEndpointSdFile, nativeQuerierFlags } from "./observer/native";

/**
 * What an operator wires into the Thanos querier, derived from the model alone (known at preview time):
 * Envoy's Services by DNS SRV in envoy mode, each cluster's front door with per-endpoint TLS in native mode.
 */

type OutputModel = Pick<Model, "clusters" | "observer" | "clusterDomain">;

/** Where the querier connects for each cluster, in config order. */
export function querierEndpoints(model: OutputModel): string[] {
    if (model.observer.mode === "native") {
        return model.clusters.map((c) => `${c.address.host}:${c.address.port}`);
    }
    return model.clusters.map((c) => `dnssrv+${srvRecord(c.portName, c.serviceName, model.observer.namespace, model.clusterDomain)}`);
}

/** Flags for `thanos query`: `--endpoint=...` per cluster (envoy mode), or the endpoint config file (native mode). */
export function querierFlags(model: OutputModel): string[] {
    return model.observer.mode === "native" ? nativeQuerierFlags() : querierEndpoints(model).map((endpoint) => `--endpoint=${endpoint}`);
}

/** The file `thanos query --endpoint.sd-config-file` reads (Thanos >= 0.38; with per-endpoint TLS in native mode). */
export function endpointSdFile(model: OutputModel): string {
    return model.observer.mode === "native" ? nativeEndpointSdFile(model.clusters) : endpointSdFileFor(querierEndpoints(model));
}

/** The SD file body for any list of endpoint addresses (`dnssrv+...` or `host:port`). */
export function endpointSdFileFor(addresses: string[]): string {
    return YAML.stringify({ endpoints: addresses.map((address) => ({ address })) });
}

export interface ClusterSummary {
    name: string;
    /** Envoy's Service and listener port for the cluster (envoy mode only). */
    service?: string;
    port?: number;
    host: string;
    /** Where Envoy connects for this cluster. */
    address: string;
    endpoint: string;
}

export function clusterSummaries(model: OutputModel): ClusterSummary[] {
    const endpoints = querierEndpoints(model);
    const envoy = model.observer.mode === "envoy";
    return model.clusters.map((c, i) => ({
        name: c.name,
        ...(envoy ? { service: `${c.serviceName}.${model.observer.namespace}`, port: c.port } : {}),
        host: c.host,
        address: `${c.address.host}:${c.address.port}`,
        endpoint: endpoints[i],
    }));
}
