/**
 * Defaults of the stack configuration, in one place. `Pulumi.yaml` repeats the scalar ones
 * (a unit test keeps the two equal) so that `pulumi config` shows them.
 */
export const ENVOY_VERSION = "1.40.0";

/** Generate mode's CA slots: during a rotation the old CA lives in one and the new one in the other. */
export const CA_SLOTS = ["a", "b"] as const;
export type CaSlot = (typeof CA_SLOTS)[number];

export const defaults = {
    basePort: 10002,
    clusterDomain: "cluster.local",
    observer: {
        namespace: "envoy",
        createNamespace: true,
        mode: "envoy" as const,
    },
    /** Native mode: the first Thanos whose querier takes per-endpoint TLS in --endpoint.sd-config (PR #8594). */
    nativeMinimumQuerierVersion: [0, 42] as const,
    envoy: {
        image: `envoyproxy/envoy:v${ENVOY_VERSION}`,
        replicas: 2,
        logLevel: "info",
        adminPort: 9901,
        metricsPort: 9902,
        connectTimeout: "5s",
        streamIdleTimeout: "5m",
        http2Keepalive: { interval: "30s", timeout: "10s" },
        // A querier fans a query out as one HTTP/2 stream per Series/LabelValues call per store;
        // Envoy's default of 1024 concurrent requests per cluster is reachable by a busy querier. Retries (only of
        // streams nginx refused unprocessed) come in bursts when a connection is closed under load: allow many at once.
        circuitBreakers: { maxConnections: 1024, maxPendingRequests: 4096, maxRequests: 8192, maxRetries: 256 },
        maxDownstreamConnections: 10000,
        // Below ingress-nginx's keep-alive-requests (1000 streams per client connection): Envoy opens its next
        // connection before nginx's GOAWAY would refuse streams in flight (retried at the cost of a backoff).
        maxRequestsPerConnection: 900,
        // HTTP/2 flow-control windows, downstream and upstream. Envoy's default stream window (256 MiB) lets one
        // slow querier make nginx push a whole Series response into Envoy's memory; 1 MiB keeps a stream's buffer small
        // while a loopback or LAN link still fills it.
        http2Windows: { streamBytes: 1024 * 1024, connectionBytes: 4 * 1024 * 1024 },
        // The longest a Store API stream may run; Thanos' own --query.timeout defaults to 2m. A stopping pod drains this long.
        longestStream: "2m",
        // The heap Envoy may use, as a share of the container memory limit; the rest is for the allocator and stacks.
        heapPercentOfMemoryLimit: 80,
        accessLog: false,
        // Envoy writes nothing to disk (read-only root filesystem); its ephemeral storage is its log, which the kubelet
        // rotates at 10Mi × 5 files by default.
        resources: {
            requests: { cpu: "100m", memory: "128Mi", "ephemeral-storage": "64Mi" },
            limits: { cpu: "1", memory: "512Mi", "ephemeral-storage": "256Mi" },
        },
    },
    sidecar: {
        namespace: "monitoring",
        service: "prom-kube-prometheus-prometheus-thanos",
        port: "grpc" as string | number,
        /** gateway-api: a GRPCRoute names the Service port by number; kube-prometheus-stack's thanos Service serves grpc on 10901. */
        portNumber: 10901,
    },
    /** What a stack that names no front door gets, so that existing stacks keep their Ingresses (with a warning). */
    frontDoor: "ingress-nginx" as const,
    gatewayApi: {
        gatewayClassName: "eg",
        implementation: "envoy-gateway" as const,
        streamTimeoutSeconds: 3600,
        proxyProtocol: false,
    },
    ingress: {
        className: "nginx",
        streamTimeoutSeconds: 3600,
    },
    networkPolicy: {
        enabled: true,
        // kube-thanos and the Thanos Operator label the querier so; the Bitnami chart needs querierPodSelector set.
        querierPodSelector: { "app.kubernetes.io/name": "thanos-query" } as Record<string, string>,
        querierNamespaceSelector: {} as Record<string, string>,
        // Prometheus pods of kube-prometheus-stack and the Prometheus Operator.
        scraperPodSelector: { "app.kubernetes.io/name": "prometheus" } as Record<string, string>,
        scraperNamespaceSelector: {} as Record<string, string>,
        dnsPodSelector: { "k8s-app": "kube-dns" } as Record<string, string>,
        dnsNamespaceSelector: { "kubernetes.io/metadata.name": "kube-system" } as Record<string, string>,
    },
    monitoring: {
        // Below tls.earlyRenewalHours (30 days): a generated certificate is renewed by `pulumi up` before this fires.
        // Generate mode with a shorter lifetime: see expiryAlertDays.
        certificateExpiryDays: 14,
        prometheusRule: { enabled: false },
        serviceMonitor: { enabled: false, interval: "30s" },
        dashboard: { enabled: false },
        /** The label the kube-prometheus-stack Grafana sidecar looks for on ConfigMaps. */
        dashboardLabel: { grafana_dashboard: "1" } as Record<string, string>,
    },
    tls: {
        mode: "generate" as const,
        validityHours: 24 * 365,
        // A shorter lifetime gets a shorter window: see renewalWindowHours.
        earlyRenewalHours: 24 * 30,
        caValidityHours: 24 * 365 * 10,
        // Two CA slots make a rotation with overlap possible; one CA, slot a, in normal operation.
        ca: { issuing: "a" as CaSlot, trusted: ["a"] as CaSlot[] },
    },
} as const;

/**
 * Generate mode's defaults that guard the certificates' lifetime follow `tls.validityHours`, so that a short lifetime
 * needs no other key: `pulumi up` renews in the lifetime's last third, and the expiry alert fires in its last sixth
 * (half the renewal window, so a renewal comes first). From a 90-day lifetime up, the fixed defaults are the shorter.
 */
export function renewalWindowHours(validityHours: number): number {
    return Math.min(defaults.tls.earlyRenewalHours, Math.floor(validityHours / 3));
}

/** The expiry alert's default threshold in days; a fraction of a day for lifetimes under six days. See renewalWindowHours. */
export function expiryAlertDays(validityHours: number): number {
    return Math.min(defaults.monitoring.certificateExpiryDays, validityHours / 6 / 24);
}
