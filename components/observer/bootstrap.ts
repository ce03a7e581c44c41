import * as YAML from "yaml";
import type { EnvoyModel, ObservedClusterModel } from "../config/model";
import { envoyName } from "../names";

/**
 * The Envoy v3 bootstrap as plain data: one listener and one upstream cluster per observed cluster,
 * a metrics listener, and TLS material read through file-based SDS so a rotated Secret takes effect
 * without a restart. Pure: no Pulumi, no I/O.
 */

const TYPE = {
    hcm: "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
    router: "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router",
    upstreamTls: "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
    httpProtocolOptions: "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
    secret: "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret",
    downstreamConnections: "type.googleapis.com/envoy.extensions.resource_monitors.downstream_connections.v3.DownstreamConnectionsConfig",
} as const;

/** Where files live inside the Envoy container; tests point these at temporary directories. */
export interface BootstrapPaths {
    /** The ConfigMap mount: bootstrap and SDS resource files. */
    configDir: string;
    /** The Secret mount: `tls.crt`, `tls.key` (Envoy's client certificate) and `ca.crt` (verifies remote servers). */
    tlsDir: string;
}

export const POD_PATHS: BootstrapPaths = { configDir: "/etc/envoy", tlsDir: "/etc/envoy-tls" };

export const FILES = {
    bootstrap: "envoy.yaml",
    clientCertificateSds: "sds-client-certificate.yaml",
    trustedCaSds: "sds-trusted-ca.yaml",
} as const;

export const TLS_KEYS = { certificate: "tls.crt", privateKey: "tls.key", ca: "ca.crt" } as const;

const SECRET_NAMES = { clientCertificate: "client_certificate", trustedCa: "trusted_ca" } as const;
const ADMIN_CLUSTER = "envoy_admin";

export interface BootstrapInput {
    envoy: EnvoyModel;
    clusters: ObservedClusterModel[];
    paths?: BootstrapPaths;
    /** Address the listeners bind; the pod binds all interfaces, tests bind loopback. */
    listenAddress?: string;
}

function join(dir: string, file: string): string {
    return `${dir.replace(/\/+$/, "")}/${file}`;
}

function socketAddress(address: string, port: number) {
    return { socket_address: { address, port_value: port } };
}

function sdsConfig(paths: BootstrapPaths, file: string) {
    return {
        // Watching the ConfigMap's directory sees Kubernetes' atomic `..data` swap of the SDS file itself.
        path_config_source: { path: join(paths.configDir, file), watched_directory: { path: paths.configDir } },
        resource_api_version: "V3",
    };
}

function router() {
    return { name: "envoy.filters.http.router", typed_config: { "@type": TYPE.router } };
}

function observedListener(c: ObservedClusterModel, envoy: EnvoyModel, listenAddress: string) {
    const name = envoyName(c.name);
    return {
        name,
        address: socketAddress(listenAddress, c.port),
        filter_chains: [
            {
                filters: [
                    {
                        name: "envoy.filters.network.http_connection_manager",
                        typed_config: {
                            "@type": TYPE.hcm,
                            stat_prefix: name,
                            codec_type: "AUTO",
                            stream_idle_timeout: envoy.streamIdleTimeout,
                            route_config: {
                                name,
                                virtual_hosts: [
                                    {
                                        name,
                                        domains: ["*"],
                                        routes: [
                                            {
                                                match: { prefix: "/" },
                                                route: {
                                                    cluster: name,
                                                    // Thanos dials the Envoy Service by IP; the remote ingress routes by host.
                                                    host_rewrite_literal: c.host,
                                                    // Series streams run as long as a query needs; the default 15 s would cut them.
                                                    timeout: "0s",
                                                    // nginx ends an HTTP/2 connection after keepalive_requests (1000) streams
                                                    // and refuses the ones in flight; those never reached the sidecar, so
                                                    // retrying them is safe.
                                                    retry_policy: { retry_on: "refused-stream", num_retries: 3 },
                                                },
                                            },
                                        ],
                                    },
                                ],
                            },
                            http_filters: [router()],
                        },
                    },
                ],
            },
        ],
    };
}

function observedCluster(c: ObservedClusterModel, envoy: EnvoyModel, paths: BootstrapPaths) {
    const name = envoyName(c.name);
    return {
        name,
        type: "LOGICAL_DNS",
        dns_lookup_family: "V4_PREFERRED",
        connect_timeout: envoy.connectTimeout,
        load_assignment: {
            cluster_name: name,
            endpoints: [{ lb_endpoints: [{ endpoint: { address: socketAddress(c.address.host, c.address.port) } }] }],
        },
        typed_extension_protocol_options: {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": TYPE.httpProtocolOptions,
                explicit_http_config: {
                    http2_protocol_options: {
                        connection_keepalive: { interval: envoy.http2Keepalive.interval, timeout: envoy.http2Keepalive.timeout },
                    },
                },
            },
        },
        circuit_breakers: {
            thresholds: [
                {
                    priority: "DEFAULT",
                    max_connections: envoy.circuitBreakers.maxConnections,
                    max_pending_requests: envoy.circuitBreakers.maxPendingRequests,
                    max_requests: envoy.circuitBreakers.maxRequests,
                    max_retries: envoy.circuitBreakers.maxRetries,
                },
            ],
        },
        outlier_detection: {
            consecutive_5xx: 5,
            consecutive_gateway_failure: 5,
            interval: "10s",
            base_ejection_time: "30s",
            max_ejection_percent: 100,
        },
        transport_socket: {
            name: "envoy.transport_sockets.tls",
            typed_config: {
                "@type": TYPE.upstreamTls,
                sni: c.host,
                common_tls_context: {
                    // Envoy's client default maximum is TLS 1.2; allow 1.3 where the ingress offers it.
                    tls_params: { tls_minimum_protocol_version: "TLSv1_2", tls_maximum_protocol_version: "TLSv1_3" },
                    alpn_protocols: ["h2"],
                    tls_certificate_sds_secret_configs: [{ name: SECRET_NAMES.clientCertificate, sds_config: sdsConfig(paths, FILES.clientCertificateSds) }],
                    combined_validation_context: {
                        // Per cluster: the remote certificate must name this cluster's host.
                        default_validation_context: {
                            match_typed_subject_alt_names: [{ san_type: "DNS", matcher: { exact: c.host } }],
                        },
                        // Shared: the CA that signs every remote server certificate.
                        validation_context_sds_secret_config: { name: SECRET_NAMES.trustedCa, sds_config: sdsConfig(paths, FILES.trustedCaSds) },
                    },
                },
            },
        },
    };
}

/** Exposes only `/stats/prometheus` and `/ready` of the loopback-bound admin interface. */
function metricsListener(envoy: EnvoyModel, listenAddress: string) {
    const toAdmin = (path: string) => ({ match: { path }, route: { cluster: ADMIN_CLUSTER } });
    return {
        name: "metrics",
        address: socketAddress(listenAddress, envoy.metricsPort),
        filter_chains: [
            {
                filters: [
                    {
                        name: "envoy.filters.network.http_connection_manager",
                        typed_config: {
                            "@type": TYPE.hcm,
                            stat_prefix: "metrics",
                            codec_type: "AUTO",
                            route_config: {
                                name: "metrics",
                                virtual_hosts: [
                                    {
                                        name: "metrics",
                                        domains: ["*"],
                                        routes: [toAdmin("/stats/prometheus"), toAdmin("/ready"), { match: { prefix: "/" }, direct_response: { status: 404 } }],
                                    },
                                ],
                            },
                            http_filters: [router()],
                        },
                    },
                ],
            },
        ],
    };
}

function adminCluster(envoy: EnvoyModel) {
    return {
        name: ADMIN_CLUSTER,
        type: "STATIC",
        connect_timeout: "1s",
        load_assignment: {
            cluster_name: ADMIN_CLUSTER,
            endpoints: [{ lb_endpoints: [{ endpoint: { address: socketAddress("127.0.0.1", envoy.adminPort) } }] }],
        },
    };
}

export function buildBootstrap(input: BootstrapInput): object {
    const paths = input.paths ?? POD_PATHS;
    const listenAddress = input.listenAddress ?? "0.0.0.0";
    const { envoy, clusters } = input;
    return {
        node: { id: "envoy-thanos", cluster: "envoy-thanos" },
        admin: { address: socketAddress("127.0.0.1", envoy.adminPort) },
        static_resources: {
            listeners: [...clusters.map((c) => observedListener(c, envoy, listenAddress)), metricsListener(envoy, listenAddress)],
            clusters: [...clusters.map((c) => observedCluster(c, envoy, paths)), adminCluster(envoy)],
        },
        overload_manager: {
            resource_monitors: [
                {
                    name: "envoy.resource_monitors.global_downstream_max_connections",
                    typed_config: { "@type": TYPE.downstreamConnections, max_active_downstream_connections: envoy.maxDownstreamConnections },
                },
            ],
        },
    };
}

/** The SDS resource files the bootstrap points at; they reference the Secret's files, never their content. */
export function buildSdsResources(paths: BootstrapPaths = POD_PATHS): Record<string, object> {
    // Watching the Secret's directory makes Envoy re-read certificate and key together after an atomic swap.
    const watched = { path: paths.tlsDir };
    return {
        [FILES.clientCertificateSds]: {
            resources: [
                {
                    "@type": TYPE.secret,
                    name: SECRET_NAMES.clientCertificate,
                    tls_certificate: {
                        certificate_chain: { filename: join(paths.tlsDir, TLS_KEYS.certificate) },
                        private_key: { filename: join(paths.tlsDir, TLS_KEYS.privateKey) },
                        watched_directory: watched,
                    },
                },
            ],
        },
        [FILES.trustedCaSds]: {
            resources: [
                {
                    "@type": TYPE.secret,
                    name: SECRET_NAMES.trustedCa,
                    validation_context: {
                        trusted_ca: { filename: join(paths.tlsDir, TLS_KEYS.ca) },
                        watched_directory: watched,
                    },
                },
            ],
        },
    };
}

export function toYaml(document: object): string {
    return YAML.stringify(document, { lineWidth: 0 });
}

/** Every file of the Envoy ConfigMap, serialized: the bootstrap and the SDS resources. */
export function renderEnvoyFiles(input: BootstrapInput): Record<string, string> {
    const files: Record<string, string> = { [FILES.bootstrap]: toYaml(buildBootstrap(input)) };
    for (const [name, doc] of Object.entries(buildSdsResources(input.paths ?? POD_PATHS))) {
        files[name] = toYaml(doc);
    }
    return files;
}
