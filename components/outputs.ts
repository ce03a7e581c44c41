import * as YAML from "yaml";
import type { Model } from "./config/model";
import { srvRecord } from "./names";

/** What an operator wires into the Thanos querier, derived from the model alone (known at preview time). */

export function querierEndpoints(model: Pick<Model, "clusters" | "observer" | "clusterDomain">): string[] {
    return model.clusters.map((c) => `dnssrv+${srvRecord(c.portName, c.serviceName, model.observer.namespace, model.clusterDomain)}`);
}

/** `--endpoint=...` flags for `thanos query`, in config order. */
export function querierFlags(model: Pick<Model, "clusters" | "observer" | "clusterDomain">): string[] {
    return querierEndpoints(model).map((endpoint) => `--endpoint=${endpoint}`);
}

/** The file `thanos query --endpoint.sd-config-file` reads (Thanos >= 0.38), listing the same endpoints. */
export function endpointSdFile(model: Pick<Model, "clusters" | "observer" | "clusterDomain">): string {
    return endpointSdFileFor(querierEndpoints(model));
}

/** The SD file body for any list of endpoint addresses (`dnssrv+...` or `host:port`). */
export function endpointSdFileFor(addresses: string[]): string {
    return YAML.stringify({ endpoints: addresses.map((address) => ({ address })) });
}

export interface ClusterSummary {
    name: string;
    service: string;
    port: number;
    host: string;
    /** Where Envoy connects for this cluster. */
    address: string;
    endpoint: string;
}

export function clusterSummaries(model: Pick<Model, "clusters" | "observer" | "clusterDomain">): ClusterSummary[] {
    const endpoints = querierEndpoints(model);
    return model.clusters.map((c, i) => ({
        name: c.name,
        service: `${c.serviceName}.${model.observer.namespace}`,
        port: c.port,
        host: c.host,
        address: `${c.address.host}:${c.address.port}`,
        endpoint: endpoints[i],
    }));
}
