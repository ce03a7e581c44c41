import { z } from "zod";
import { CA_SLOTS } from "./defaults";

/**
 * The stack configuration under the `envoy-thanos` namespace, as a zod schema.
 * Every object is strict so that a typo (`clusters[0].hots`) is an error, not a silently ignored key.
 * Cross-field rules (uniqueness, port collisions, TLS material per cluster) live in `model.ts`.
 */

/** DNS-1123 label: what Kubernetes accepts as a namespace or Service name segment. */
const dnsLabel = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
/** RFC 1123 hostname, lowercase, at least one dot-free label, no wildcard. */
const hostnamePattern = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$/;
/** A duration as users write it (`5s`, `500ms`, `2m`, `1h`); converted to Envoy's seconds form in the model. */
const durationPattern = /^\d+(\.\d+)?(ms|s|m|h)$/;
/** Kubernetes label keys/values are validated by the API server; here only their shape as a string map. */
const labelMap = z.record(z.string().min(1), z.string());

export const dnsLabelSchema = z
    .string()
    .max(63, "must be at most 63 characters (a DNS-1123 label)")
    .regex(dnsLabel, "must be a DNS-1123 label: lowercase letters, digits and '-', starting and ending with a letter or digit");

export const hostnameSchema = z
    .string()
    .regex(hostnamePattern, "must be a lowercase DNS hostname such as cl1m.example.com (no scheme, port, wildcard or uppercase)");

export const durationSchema = z.string().regex(durationPattern, "must be a duration such as 500ms, 5s, 2m or 1h");

const portNumber = z.int("must be a whole number").min(1, "must be between 1 and 65535").max(65535, "must be between 1 and 65535");

/** Envoy runs without capabilities, so it cannot bind privileged ports. */
const listenPort = z
    .int("must be a whole number")
    .min(1024, "must be between 1024 and 65535 (Envoy runs as non-root without NET_BIND_SERVICE)")
    .max(65535, "must be between 1024 and 65535");

const pemSecret = z.string().min(1, "must be PEM text (set it with `pulumi config set --secret --path ...`)");

export const sidecarSchema = z.strictObject({
    /** Namespace of the Thanos sidecar Service; the TLS Secrets and the Ingress go there too. */
    namespace: dnsLabelSchema.optional(),
    /** Name of the Service that exposes the sidecar's gRPC port. */
    service: dnsLabelSchema.optional(),
    /** Port of that Service: its name (`grpc`) or its number. */
    port: z.union([dnsLabelSchema.max(15, "a port name has at most 15 characters"), portNumber]).optional(),
});

const ingressSchema = z.strictObject({
    /** IngressClass of the observed cluster's ingress-nginx. */
    className: dnsLabelSchema.optional(),
    /** Extra annotations, merged over ours (a user value wins). */
    annotations: z.record(z.string().min(1), z.string()).optional(),
    /** Seconds nginx waits between two reads/writes of a gRPC stream. */
    streamTimeoutSeconds: z.int().min(61, "must be more than 60 seconds, or idle Series streams are cut").optional(),
});

/** The front door in front of an observed cluster's sidecar: a Gateway API Gateway, or an ingress-nginx Ingress (end of life). */
export const frontDoorSchema = z.enum(["gateway-api", "ingress-nginx"], "must be gateway-api or ingress-nginx");

export const gatewayApiSchema = z.strictObject({
    /** GatewayClass of the observed cluster's Gateway API implementation (Envoy Gateway's is often `eg`). */
    gatewayClassName: dnsLabelSchema.optional(),
    /** `envoy-gateway` adds its BackendTrafficPolicy and ClientTrafficPolicy; `other` creates only standard Gateway API objects. */
    implementation: z.enum(["envoy-gateway", "other"], "must be envoy-gateway or other").optional(),
    /** Seconds a gRPC stream may be silent before the gateway resets it (Envoy Gateway's default is 5 minutes). */
    streamTimeoutSeconds: z
        .int()
        .min(61, "must be more than 60 seconds, or idle Series streams are cut")
        .max(99999, "must be at most 99999 seconds")
        .optional(),
});

export const clusterSchema = z.strictObject({
    /** Short name of the observed cluster; becomes the Envoy listener, the Service `envoy-<name>` and its port name. */
    name: dnsLabelSchema,
    /** Public hostname of the observed cluster's ingress for the sidecar: SNI, :authority and the certificate's SAN. */
    host: hostnameSchema,
    /** Envoy listener port for this cluster; default: basePort + the cluster's position in the list. */
    port: listenPort.optional(),
    /** Where Envoy connects (`lb.example.net:8443`); default `<host>:443`. SNI and :authority stay `host`. */
    address: z.string().min(1).optional(),
    /** Name of the Service port; default `envoy-<name>` (Kubernetes allows 15 characters). */
    portName: z.string().optional(),
    /** kubeconfig context of this observed cluster. */
    context: z.string().min(1).optional(),
    /** kubeconfig content (secret) for this observed cluster. */
    kubeconfig: z.string().min(1).optional(),
    sidecar: sidecarSchema.optional(),
    /** This cluster's front door; default: the stack's frontDoor. */
    frontDoor: frontDoorSchema.optional(),
    /** Gateway API settings of this cluster, over the stack's gatewayApi (frontDoor: gateway-api). */
    gatewayApi: gatewayApiSchema.optional(),
    /** ingress-nginx settings (frontDoor: ingress-nginx). */
    ingress: ingressSchema.optional(),
});

const resourceListSchema = z.strictObject({
    cpu: z.string().min(1).optional(),
    memory: z.string().min(1).optional(),
    "ephemeral-storage": z.string().min(1).optional(),
});

export const envoySchema = z.strictObject({
    /** Container image; its tag must be a version the test suite runs (see README). */
    image: z
        .string()
        .regex(/^[^\s:@]+(:[\w][\w.-]{0,127})?(@sha256:[a-f0-9]{64})?$/, "must be an image reference such as envoyproxy/envoy:v1.40.0")
        .optional(),
    replicas: z.int().min(1, "must be at least 1").max(50).optional(),
    logLevel: z.enum(["trace", "debug", "info", "warning", "error", "critical", "off"]).optional(),
    /** Envoy's admin interface; bound to 127.0.0.1 inside the pod, never exposed. */
    adminPort: listenPort.optional(),
    /** The only port that exposes admin data: `/stats/prometheus` and `/ready`. */
    metricsPort: listenPort.optional(),
    connectTimeout: durationSchema.optional(),
    /** How long a stream may be silent before Envoy resets it (HCM `stream_idle_timeout`); `0s` disables. */
    streamIdleTimeout: durationSchema.optional(),
    http2Keepalive: z
        .strictObject({
            interval: durationSchema.optional(),
            timeout: durationSchema.optional(),
        })
        .optional(),
    circuitBreakers: z
        .strictObject({
            maxConnections: z.int().min(1).optional(),
            maxPendingRequests: z.int().min(1).optional(),
            maxRequests: z.int().min(1).optional(),
            maxRetries: z.int().min(0).optional(),
        })
        .optional(),
    maxDownstreamConnections: z.int().min(1).optional(),
    /** HTTP/2 flow-control windows in bytes, for the querier side and the ingress side; bounds Envoy's buffer per stream. */
    http2Windows: z
        .strictObject({
            streamBytes: z
                .int("must be a whole number of bytes")
                .min(65535, "must be between 65535 (HTTP/2's minimum) and 16777216 (16 MiB)")
                .max(16 * 1024 * 1024, "must be between 65535 and 16777216 (16 MiB); larger windows let a slow reader fill Envoy's memory")
                .optional(),
            connectionBytes: z
                .int("must be a whole number of bytes")
                .min(65535, "must be between 65535 (HTTP/2's minimum) and 268435456 (256 MiB)")
                .max(256 * 1024 * 1024, "must be between 65535 and 268435456 (256 MiB)")
                .optional(),
        })
        .optional(),
    /** The longest Store API stream to let finish when a pod stops: sizes the drain and the termination grace period. */
    longestStream: durationSchema.optional(),
    /** Share of the container memory limit the overload manager lets Envoy's heap reach. */
    heapPercentOfMemoryLimit: z.int("must be a whole percentage").min(10, "must be between 10 and 95").max(95, "must be between 10 and 95").optional(),
    /** Log one line per request to stdout. */
    accessLog: z.boolean().optional(),
    resources: z
        .strictObject({
            requests: resourceListSchema.optional(),
            limits: resourceListSchema.optional(),
        })
        .optional(),
});

export const observerSchema = z.strictObject({
    context: z.string().min(1).optional(),
    kubeconfig: z.string().min(1).optional(),
    namespace: dnsLabelSchema.optional(),
    /** Create the namespace, or expect it to exist. */
    createNamespace: z.boolean().optional(),
    /** `envoy`: Envoy holds the client certificate and proxies every query; `native`: the querier does the mTLS itself. */
    mode: z.enum(["envoy", "native"]).optional(),
    /** The querier's Thanos version, when known (`v0.42.4`); native mode needs per-endpoint TLS, new in v0.42. */
    querierVersion: z
        .string()
        .regex(/^v?\d+\.\d+(\.\d+)?([-+].*)?$/, "must be a Thanos version such as v0.42.4")
        .optional(),
});

export const networkPolicySchema = z.strictObject({
    enabled: z.boolean().optional(),
    /** Pods of the Thanos querier allowed to reach the listener ports. */
    querierPodSelector: labelMap.optional(),
    /** Namespaces of the querier (labels); `{}` is every namespace. */
    querierNamespaceSelector: labelMap.optional(),
    /** Pods (and their namespaces) allowed to scrape the metrics port. */
    scraperPodSelector: labelMap.optional(),
    scraperNamespaceSelector: labelMap.optional(),
    /** The cluster DNS pods Envoy may query (egress, port 53). */
    dnsPodSelector: labelMap.optional(),
    dnsNamespaceSelector: labelMap.optional(),
});

/** An optional monitoring object of the observer: on or off, and labels for whatever selects it. */
const monitoringObject = z.strictObject({
    enabled: z.boolean().optional(),
    /** Extra labels on the object, e.g. the `release` label a Prometheus' ruleSelector or serviceMonitorSelector matches. */
    labels: labelMap.optional(),
});

export const monitoringSchema = z.strictObject({
    /** The certificate-expiry alert fires this many days before Envoy's client certificate or the CA expires. */
    certificateExpiryDays: z.int("must be a whole number of days").min(1, "must be at least 1 day").optional(),
    /** A PrometheusRule (prometheus-operator) with the alerts. */
    prometheusRule: monitoringObject.optional(),
    /** A ServiceMonitor (prometheus-operator) for Envoy's metrics port. */
    serviceMonitor: monitoringObject.extend({ interval: durationSchema.optional() }).optional(),
    /** A Grafana dashboard ConfigMap, labelled for the kube-prometheus-stack Grafana sidecar. */
    dashboard: monitoringObject.optional(),
});

const keyPair = z.strictObject({
    certificate: pemSecret,
    privateKey: pemSecret,
});

/** A path to a PEM file, relative to the project directory (where Pulumi.yaml is) unless absolute. */
const pemFilePath = z.string().min(1, "must be a path to a PEM file");

const keyPairFiles = z.strictObject({
    certificate: pemFilePath.optional(),
    privateKey: pemFilePath.optional(),
});

export const tlsSchema = z.strictObject({
    mode: z.enum(["generate", "provided", "files"]).optional(),
    /** generate: lifetime of the issued certificates, and how long before expiry `pulumi up` renews them. */
    validityHours: z.int().min(1).optional(),
    earlyRenewalHours: z.int().min(0).optional(),
    caValidityHours: z.int().min(1).optional(),
    /** generate: which CA slot signs the certificates and which slots both sides trust (a rotation with overlap, see README). */
    ca: z
        .strictObject({
            issuing: z.enum(CA_SLOTS, "must be a or b, the CA slot that signs the certificates").optional(),
            trusted: z
                .array(z.enum(CA_SLOTS, "must be a or b"))
                .min(1, "must list at least one CA slot (a, b or both)")
                .max(2, "lists at most the two slots a and b")
                .optional(),
        })
        .optional(),
    /** provided: CA certificates that verify the servers (in Envoy) and the client (in nginx). */
    caBundle: pemSecret.optional(),
    /** provided: Envoy's client certificate. */
    client: keyPair.optional(),
    /** provided: server certificate per cluster name. */
    servers: z.record(z.string(), keyPair).optional(),
    /** provided: one certificate used on every side, as in the manual recipe's fullchain.pem/privkey.pem. */
    shared: keyPair.optional(),
    /** files: a directory with the documented file names (README "Certificates from files"). */
    directory: z.string().min(1, "must be a directory path").optional(),
    /** files: per-item paths, each overriding the directory's file name for that item. */
    files: z
        .strictObject({
            caBundle: pemFilePath.optional(),
            client: keyPairFiles.optional(),
            servers: z.record(z.string(), keyPairFiles).optional(),
        })
        .optional(),
});

export const stackConfigSchema = z.strictObject({
    renderDirectory: z.string().min(1).optional(),
    basePort: listenPort.optional(),
    clusterDomain: hostnameSchema.optional(),
    observer: observerSchema.optional(),
    envoy: envoySchema.optional(),
    sidecar: sidecarSchema.optional(),
    /** Front door of every observed cluster that names none. */
    frontDoor: frontDoorSchema.optional(),
    gatewayApi: gatewayApiSchema.optional(),
    networkPolicy: networkPolicySchema.optional(),
    tls: tlsSchema.optional(),
    monitoring: monitoringSchema.optional(),
    clusters: z.array(clusterSchema).min(1, "list at least one observed cluster"),
});

export type StackConfigInput = z.infer<typeof stackConfigSchema>;
export type ClusterInput = z.infer<typeof clusterSchema>;
export type KeyPairInput = z.infer<typeof keyPair>;
