import * as YAML from "yaml";
import type { EnvoyModel, ObservedClusterModel } from "../config/model";
import { envoyName } from "../names";

/**
 * The Envoy v3 configuration as plain data, in files Envoy watches so that a change applies without a
 * restart: listeners (LDS) and upstream clusters (CDS), one of each per observed cluster, and TLS material
 * through file-based SDS. The bootstrap itself holds only what Envoy reads once at start (admin, the
 * metrics listener, the overload manager, where the watched files are). Pure: no Pulumi, no I/O.
 */

const TYPE = {
    hcm: "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
    router: "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router",
    upstreamTls: "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
    httpProtocolOptions: "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
    secret: "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret",
    listener: "type.googleapis.com/envoy.config.listener.v3.Listener",
    cluster: "type.googleapis.com/envoy.config.cluster.v3.Cluster",
    downstreamConnections: "type.googleapis.com/envoy.extensions.resource_monitors.downstream_connections.v3.DownstreamConnectionsConfig",
    fixedHeap: "type.googleapis.com/envoy.extensions.resource_monitors.fixed_heap.v3.FixedHeapConfig",
    stdoutLog: "type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog",
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
    listeners: "listeners.yaml",
    clusters: "clusters.yaml",
    clientCertificateSds: "sds-client-certificate.yaml",
    trustedCaSds: "sds-trusted-ca.yaml",
} as const;

export const TLS_KEYS = { certificate: "tls.crt", privateKey: "tls.key", ca: "ca.crt" } as const;

const SECRET_NAMES = { clientCertificate: "client_certificate", trustedCa: "trusted_ca" } as const;
const ADMIN_CLUSTER = "envoy_admin";

/** Paths the metrics listener serves. Readiness asks the admin interface; liveness only needs a worker thread to answer. */
export const HEALTH_PATHS = { ready: "/ready", live: "/live", metrics: "/stats/prometheus" } as const;

const HEAP_MONITOR = "envoy.resource_monitors.fixed_heap";

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

/** A file in the ConfigMap that Envoy re-reads whenever Kubernetes swaps the ConfigMap's `..data` directory. */
function watchedFile(paths: BootstrapPaths, file: string) {
    return {
        // Watching the directory, not the file: kubelet replaces the `..data` symlink, never the file itself.
        path_config_source: { path: join(paths.configDir, file), watched_directory: { path: paths.configDir } },
        resource_api_version: "V3",
    };
}

function http2Windows(envoy: EnvoyModel) {
    return {
        initial_stream_window_size: envoy.http2Windows.streamBytes,
        initial_connection_window_size: envoy.http2Windows.connectionBytes,
    };
}

function stdoutAccessLog() {
    return { name: "envoy.access_loggers.stdout", typed_config: { "@type": TYPE.stdoutLog } };
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
                            http2_protocol_options: http2Windows(envoy),
                            ...(envoy.accessLog ? { access_log: [stdoutAccessLog()] } : {}),
                            route_config: {
                                name,
                                // Listeners and clusters arrive in two files swapped at once but applied one after
                                // the other; a new listener must not be refused because its cluster comes second.
                                validate_clusters: false,
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
                                                    // A front door that ends a connection (nginx reloading, or a stream limit
                                                    // below maxRequestsPerConnection) refuses the streams in flight; those
                                                    // never reached the sidecar, so retrying them is safe.
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
                // Rotating before the front door's own stream limit means its GOAWAY never refuses streams in flight.
                common_http_protocol_options: { max_requests_per_connection: envoy.maxRequestsPerConnection },
                explicit_http_config: {
                    http2_protocol_options: {
                        connection_keepalive: { interval: envoy.http2Keepalive.interval, timeout: envoy.http2Keepalive.timeout },
                        ...http2Windows(envoy),
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
        transport_socket: {
            name: "envoy.transport_sockets.tls",
            typed_config: {
                "@type": TYPE.upstreamTls,
                sni: c.host,
                common_tls_context: {
                    // Envoy's client default maximum is TLS 1.2; allow 1.3 where the ingress offers it.
                    tls_params: { tls_minimum_protocol_version: "TLSv1_2", tls_maximum_protocol_version: "TLSv1_3" },
                    alpn_protocols: ["h2"],
                    tls_certificate_sds_secret_configs: [{ name: SECRET_NAMES.clientCertificate, sds_config: watchedFile(paths, FILES.clientCertificateSds) }],
                    combined_validation_context: {
                        // Per cluster: the remote certificate must name this cluster's host.
                        default_validation_context: {
                            match_typed_subject_alt_names: [{ san_type: "DNS", matcher: { exact: c.host } }],
                        },
                        // Shared: the CA that signs every remote server certificate.
                        validation_context_sds_secret_config: { name: SECRET_NAMES.trustedCa, sds_config: watchedFile(paths, FILES.trustedCaSds) },
                    },
                },
            },
        },
    };
}

/**
 * Exposes only `/stats/prometheus` and `/ready` of the loopback-bound admin interface, and answers `/live` itself.
 * Outside the global connection limit: when queriers use every allowed connection, the kubelet's probes still get in.
 */
function metricsListener(envoy: EnvoyModel, listenAddress: string) {
    const toAdmin = (path: string) => ({ match: { path }, route: { cluster: ADMIN_CLUSTER } });
    return {
        name: "metrics",
        address: socketAddress(listenAddress, envoy.metricsPort),
        ignore_global_conn_limit: true,
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
                                        routes: [
                                            toAdmin(HEALTH_PATHS.metrics),
                                            toAdmin(HEALTH_PATHS.ready),
                                            // Answered by the worker itself: proves the process serves, even while draining.
                                            { match: { path: HEALTH_PATHS.live }, direct_response: { status: 200 } },
                                            { match: { prefix: "/" }, direct_response: { status: 404 } },
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

/** Only what Envoy reads once at start; everything per observed cluster lives in the watched LDS and CDS files. */
export function buildBootstrap(input: Omit<BootstrapInput, "clusters">): object {
    const paths = input.paths ?? POD_PATHS;
    const listenAddress = input.listenAddress ?? "0.0.0.0";
    const { envoy } = input;
    return {
        node: { id: "envoy-thanos", cluster: "envoy-thanos" },
        admin: { address: socketAddress("127.0.0.1", envoy.adminPort) },
        static_resources: {
            listeners: [metricsListener(envoy, listenAddress)],
            clusters: [adminCluster(envoy)],
        },
        dynamic_resources: {
            lds_config: watchedFile(paths, FILES.listeners),
            cds_config: watchedFile(paths, FILES.clusters),
        },
        overload_manager: {
            refresh_interval: "0.25s",
            resource_monitors: [
                {
                    name: "envoy.resource_monitors.global_downstream_max_connections",
                    typed_config: { "@type": TYPE.downstreamConnections, max_active_downstream_connections: envoy.maxDownstreamConnections },
                },
                { name: HEAP_MONITOR, typed_config: { "@type": TYPE.fixedHeap, max_heap_size_bytes: envoy.maxHeapBytes } },
            ],
            // Below the container's memory limit: give freed memory back first, then refuse new work rather than be OOM-killed.
            actions: [
                { name: "envoy.overload_actions.shrink_heap", triggers: [{ name: HEAP_MONITOR, threshold: { value: 0.9 } }] },
                { name: "envoy.overload_actions.stop_accepting_requests", triggers: [{ name: HEAP_MONITOR, threshold: { value: 0.95 } }] },
            ],
        },
    };
}

/** The LDS file: one listener per observed cluster. */
export function buildListeners(input: BootstrapInput): object {
    const listenAddress = input.listenAddress ?? "0.0.0.0";
    return { resources: input.clusters.map((c) => ({ "@type": TYPE.listener, ...observedListener(c, input.envoy, listenAddress) })) };
}

/** The CDS file: one upstream cluster per observed cluster. */
export function buildClusters(input: BootstrapInput): object {
    const paths = input.paths ?? POD_PATHS;
    return { resources: input.clusters.map((c) => ({ "@type": TYPE.cluster, ...observedCluster(c, input.envoy, paths) })) };
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

/** Every document of the Envoy ConfigMap by file name: the bootstrap, LDS, CDS and the SDS resources. */
export function buildEnvoyDocuments(input: BootstrapInput): Record<string, object> {
    return {
        [FILES.bootstrap]: buildBootstrap(input),
        [FILES.listeners]: buildListeners(input),
        [FILES.clusters]: buildClusters(input),
        ...buildSdsResources(input.paths ?? POD_PATHS),
    };
}

/** Every file of the Envoy ConfigMap, serialized. */
export function renderEnvoyFiles(input: BootstrapInput): Record<string, string> {
    return Object.fromEntries(Object.entries(buildEnvoyDocuments(input)).map(([name, doc]) => [name, toYaml(doc)]));
}
