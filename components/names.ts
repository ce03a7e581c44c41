/**
 * Every name the program gives to a Kubernetes object or an Envoy resource, derived from the cluster name.
 * Kept here so that the gateway, the observed clusters, the outputs and the tests agree by construction.
 */

export const APP_NAME = "envoy-thanos";

/** Labels on the Envoy pods; the per-cluster Services select them. */
export const gatewaySelector = {
    "app.kubernetes.io/name": APP_NAME,
    "app.kubernetes.io/component": "gateway",
} as const;

export const commonLabels = {
    "app.kubernetes.io/part-of": APP_NAME,
    "app.kubernetes.io/managed-by": "pulumi",
} as const;

/** The Service and its port carry the same name, so the querier's SRV record is `_envoy-<name>._tcp.envoy-<name>.<ns>.svc`. */
export function serviceName(cluster: string): string {
    return `envoy-${cluster}`;
}

export function defaultPortName(cluster: string): string {
    return `envoy-${cluster}`;
}

export function srvRecord(portName: string, service: string, namespace: string, clusterDomain: string): string {
    return `_${portName}._tcp.${service}.${namespace}.svc.${clusterDomain}`;
}

/** Envoy listener, route, stat prefix and upstream cluster for one observed cluster. */
export function envoyName(cluster: string): string {
    return `thanos_${cluster}`;
}

/** Name of the Envoy container's metrics port; cluster port names share the container's port list, so it is reserved. */
export const METRICS_PORT_NAME = "metrics";

export const observerNames = {
    bootstrapConfigMap: "envoy-thanos-bootstrap",
    tlsSecret: "envoy-thanos-client-tls",
    deployment: "envoy-thanos",
    disruptionBudget: "envoy-thanos",
    metricsService: "envoy-thanos-metrics",
    prometheusRule: "envoy-thanos",
    serviceMonitor: "envoy-thanos",
    dashboardConfigMap: "envoy-thanos-dashboard",
    networkPolicy: "envoy-thanos",
    /** Native mode: the querier's client certificate, key and CA bundle, and its endpoint config. */
    querierTlsSecret: "envoy-thanos-querier-tls",
    querierEndpointsConfigMap: "envoy-thanos-querier-endpoints",
} as const;

/** Per observed cluster; suffixed with the cluster name so two entries may share one physical cluster. */
export function observedNames(cluster: string) {
    return {
        serverTlsSecret: `envoy-thanos-${cluster}-server-tls`,
        clientCaSecret: `envoy-thanos-${cluster}-client-ca`,
        ingress: `envoy-thanos-${cluster}`,
        /** gateway-api: the CA ConfigMap (`ca.crt`) for frontend validation, and the Gateway, GRPCRoute and policies. */
        clientCaConfigMap: `envoy-thanos-${cluster}-client-ca`,
        gateway: `envoy-thanos-${cluster}`,
        route: `envoy-thanos-${cluster}`,
        backendTrafficPolicy: `envoy-thanos-${cluster}`,
        clientTrafficPolicy: `envoy-thanos-${cluster}`,
        /** gateway-api with an existing Gateway in another namespace: lets it use the server Secret and the CA ConfigMap. */
        referenceGrant: `envoy-thanos-${cluster}`,
    };
}

/** ingress-nginx annotations the program sets on every Ingress, by the name of the setting they control. */
export const INGRESS_ANNOTATION = {
    backendProtocol: "nginx.ingress.kubernetes.io/backend-protocol",
    authTlsSecret: "nginx.ingress.kubernetes.io/auth-tls-secret",
    authTlsVerifyClient: "nginx.ingress.kubernetes.io/auth-tls-verify-client",
    authTlsVerifyDepth: "nginx.ingress.kubernetes.io/auth-tls-verify-depth",
    authTlsMatchCn: "nginx.ingress.kubernetes.io/auth-tls-match-cn",
    proxyReadTimeout: "nginx.ingress.kubernetes.io/proxy-read-timeout",
    proxySendTimeout: "nginx.ingress.kubernetes.io/proxy-send-timeout",
} as const;
