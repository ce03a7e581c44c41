import * as path from "node:path";
import * as YAML from "yaml";
import type { ObservedClusterModel } from "../config/model";
import { observerNames } from "../names";
import { TLS_KEYS } from "./bootstrap";

/**
 * `observer.mode: native`, as plain data: the querier itself presents the client certificate and verifies each
 * observed cluster's front door, through per-endpoint TLS in `--endpoint.sd-config-file` (Thanos >= v0.42).
 * The program creates the Secret and the endpoint config; the querier mounts them at these documented paths.
 */

export const NATIVE_MOUNTS = {
    /** The Secret `envoy-thanos-querier-tls`: `tls.crt`, `tls.key`, `ca.crt`. */
    tlsDirectory: "/etc/envoy-thanos/tls",
    /** The ConfigMap `envoy-thanos-querier-endpoints`, whose one key is the endpoint config file. */
    endpointsDirectory: "/etc/envoy-thanos/endpoints",
    endpointsFile: "endpoints.yaml",
} as const;

type EndpointTarget = Pick<ObservedClusterModel, "host" | "address">;

/**
 * One endpoint per observed cluster, at its front door's address. `server_name` sets both SNI and the gRPC
 * `:authority`, so the front door routes by host as it does for Envoy. No `min_version`: with per-endpoint
 * TLS Thanos defaults to TLS 1.3, which every supported front door offers.
 */
export function nativeEndpointConfig(clusters: EndpointTarget[], tlsDirectory: string = NATIVE_MOUNTS.tlsDirectory) {
    return {
        endpoints: clusters.map((c) => ({
            address: `${c.address.host}:${c.address.port}`,
            client_config: {
                server_name: c.host,
                tls_config: {
                    cert_file: path.posix.join(tlsDirectory, TLS_KEYS.certificate),
                    key_file: path.posix.join(tlsDirectory, TLS_KEYS.privateKey),
                    ca_file: path.posix.join(tlsDirectory, TLS_KEYS.ca),
                },
            },
        })),
    };
}

/** The body of the file `thanos query --endpoint.sd-config-file` reads in native mode. */
export function nativeEndpointSdFile(clusters: EndpointTarget[], tlsDirectory?: string): string {
    return YAML.stringify(nativeEndpointConfig(clusters, tlsDirectory));
}

export function nativeQuerierFlags(): string[] {
    return [`--endpoint.sd-config-file=${path.posix.join(NATIVE_MOUNTS.endpointsDirectory, NATIVE_MOUNTS.endpointsFile)}`];
}

/** What the querier's pod spec needs: the two volumes and their mounts, ready to paste. */
export function nativeQuerierMounts() {
    return {
        volumes: [
            { name: "envoy-thanos-tls", secret: { secretName: observerNames.querierTlsSecret } },
            { name: "envoy-thanos-endpoints", configMap: { name: observerNames.querierEndpointsConfigMap } },
        ],
        volumeMounts: [
            { name: "envoy-thanos-tls", mountPath: NATIVE_MOUNTS.tlsDirectory, readOnly: true },
            { name: "envoy-thanos-endpoints", mountPath: NATIVE_MOUNTS.endpointsDirectory, readOnly: true },
        ],
    };
}
