import { z } from "zod";
import { imagePinRefusal, imageReferenceProblem } from "./formats";
import { tlsSchema } from "./tls-schema";
import {
    check,
    dnsLabelSchema,
    dnsSubdomainSchema,
    durationSchema,
    hostnameSchema,
    kubeconfigContent,
    labelMap,
    listenPort,
    nonEmpty,
    portNameSchema,
    portNumber,
    quantitySchema,
    threshold,
    wholeNumber,
} from "./value-schemas";

/**
 * The stack configuration under the `envoy-thanos` namespace, as a zod schema.
 * Every object is strict so that a typo (`clusters[0].hots`) is an error, not a silently ignored key.
 * Rules on one value live here and in value-schemas.ts with the message the user reads; `describe` names the expected
 * form, which type errors quote. Cross-field rules (uniqueness, port collisions, requests ≤ limits, TLS material per
 * cluster) live in the section modules under sections/ and tls/.
 */

export const sidecarSchema = z.strictObject({
    /** Namespace of the Thanos sidecar Service; the TLS Secrets and the Ingress go there too. */
    namespace: dnsLabelSchema.optional(),
    /** Name of the Service that exposes the sidecar's gRPC port. */
    service: dnsLabelSchema.optional(),
    /** Port of that Service: its name (`grpc`) or its number. */
    port: z.union([portNameSchema, portNumber]).describe("a Service port name such as grpc, or a port number such as 10901").optional(),
});

const ingressSchema = z.strictObject({
    /** IngressClass of the observed cluster's ingress-nginx. */
    className: dnsLabelSchema.optional(),
    /** Extra annotations, merged over ours (a user value wins). */
    annotations: z
        .record(z.string().min(1, "has an empty annotation name; remove it"), z.string())
        .describe("a map of annotation names to text values")
        .optional(),
    /** Seconds nginx waits between two reads/writes of a gRPC stream. */
    streamTimeoutSeconds: wholeNumber("seconds, more than 60").min(61, "must be more than 60 seconds, or idle Series streams are cut").optional(),
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
    /** The Gateway's listener reads a PROXY protocol header first, as an L4 hop in front sends it (Envoy Gateway's ClientTrafficPolicy). */
    proxyProtocol: z.boolean().describe("true or false").optional(),
    /** A Gateway the platform team owns: the route attaches to its listener `sectionName` and the program creates no Gateway. */
    existingGateway: z
        .strictObject({
            name: dnsSubdomainSchema,
            /** Default: the sidecar's namespace. */
            namespace: dnsLabelSchema.optional(),
            /** The listener (its `name`) that serves this cluster's host. */
            sectionName: dnsSubdomainSchema,
        })
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
    address: nonEmpty("host or host:port, e.g. lb.example.net:8443").optional(),
    /** Name of the Service port; default `envoy-<name>` (Kubernetes allows 15 characters). */
    portName: portNameSchema.optional(),
    /** kubeconfig context of this observed cluster. */
    context: nonEmpty("a kubeconfig context name").optional(),
    /** kubeconfig content (secret) for this observed cluster. */
    kubeconfig: kubeconfigContent.optional(),
    sidecar: sidecarSchema.optional(),
    /** This cluster's front door; default: the stack's frontDoor. */
    frontDoor: frontDoorSchema.optional(),
    /** Gateway API settings of this cluster, over the stack's gatewayApi (frontDoor: gateway-api). */
    gatewayApi: gatewayApiSchema.optional(),
    /** ingress-nginx settings (frontDoor: ingress-nginx). */
    ingress: ingressSchema.optional(),
});

const resourceListSchema = z.strictObject({
    cpu: quantitySchema("cpu").optional(),
    memory: quantitySchema("memory").optional(),
    "ephemeral-storage": quantitySchema("ephemeral-storage").optional(),
});

export const envoySchema = z.strictObject({
    /** Container image; its tag must be a version the test suite runs (see docs/configuration.md). */
    image: z
        .string()
        .superRefine(check((image: string) => imageReferenceProblem(image) ?? imagePinRefusal(image)))
        .describe("an image reference such as envoyproxy/envoy:v1.40.0")
        .optional(),
    replicas: wholeNumber("1-50").min(1, "must be at least 1").max(50, "must be at most 50; more replicas add upstream connections, not capacity").optional(),
    logLevel: z.enum(["trace", "debug", "info", "warning", "error", "critical", "off"]).optional(),
    /** Envoy's admin interface; bound to 127.0.0.1 inside the pod, never exposed. */
    adminPort: listenPort.optional(),
    /** The only port that exposes admin data: `/stats/prometheus` and `/ready`. */
    metricsPort: listenPort.optional(),
    /** Envoy requires a connect timeout above 0. */
    connectTimeout: durationSchema({ reader: "Envoy" }).optional(),
    /** How long a stream may be silent before Envoy resets it (HCM `stream_idle_timeout`); `0s` disables. */
    streamIdleTimeout: durationSchema({ reader: "Envoy", zero: "no idle timeout" }).optional(),
    /** Envoy requires both at 1ms or more. */
    http2Keepalive: z
        .strictObject({
            interval: durationSchema({ reader: "Envoy" }).optional(),
            timeout: durationSchema({ reader: "Envoy" }).optional(),
        })
        .optional(),
    circuitBreakers: z
        .strictObject({
            maxConnections: threshold(1).optional(),
            maxPendingRequests: threshold(1).optional(),
            maxRequests: threshold(1).optional(),
            maxRetries: threshold(0).optional(),
        })
        .optional(),
    maxDownstreamConnections: threshold(1).optional(),
    /** Streams Envoy sends on one upstream connection before it opens the next; below the front door's own limit. */
    maxRequestsPerConnection: threshold(1).optional(),
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
    longestStream: durationSchema({ reader: "Envoy" }).optional(),
    /** Share of the container memory limit the overload manager lets Envoy's heap reach. */
    heapPercentOfMemoryLimit: z.int("must be a whole percentage").min(10, "must be between 10 and 95").max(95, "must be between 10 and 95").optional(),
    /** Log one line per request to stdout. */
    accessLog: z.boolean().describe("true or false").optional(),
    resources: z
        .strictObject({
            requests: resourceListSchema.optional(),
            limits: resourceListSchema.optional(),
        })
        .optional(),
});

export const observerSchema = z.strictObject({
    context: nonEmpty("a kubeconfig context name").optional(),
    kubeconfig: kubeconfigContent.optional(),
    namespace: dnsLabelSchema.optional(),
    /** Create the namespace, or expect it to exist. */
    createNamespace: z.boolean().describe("true or false").optional(),
    /** Take over existing Services of the same names (the manual recipe's) unchanged, keeping their ClusterIPs; see sections/adoption.ts. */
    adoptServices: z.boolean().describe("true or false").optional(),
    /** `envoy`: Envoy holds the client certificate and proxies every query; `native`: the querier does the mTLS itself. */
    mode: z.enum(["envoy", "native"]).optional(),
    /** The querier's Thanos version, when known (`v0.42.4`); native mode needs per-endpoint TLS, new in v0.42. */
    querierVersion: z
        .string()
        .regex(/^v?\d+\.\d+(\.\d+)?([-+].*)?$/, "must be a Thanos version such as v0.42.4")
        .describe("a Thanos version such as v0.42.4")
        .optional(),
});

export const networkPolicySchema = z.strictObject({
    enabled: z.boolean().describe("true or false").optional(),
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
    enabled: z.boolean().describe("true or false").optional(),
    /** Extra labels on the object, e.g. the `release` label a Prometheus' ruleSelector or serviceMonitorSelector matches. */
    labels: labelMap.optional(),
});

export const monitoringSchema = z.strictObject({
    /** The certificate-expiry alert fires this many days before Envoy's client certificate or the CA expires. */
    certificateExpiryDays: wholeNumber("days, 1 or more").min(1, "must be at least 1 day").optional(),
    /** A PrometheusRule (prometheus-operator) with the alerts. */
    prometheusRule: monitoringObject.optional(),
    /** A ServiceMonitor (prometheus-operator) for Envoy's metrics port. */
    serviceMonitor: monitoringObject.extend({ interval: durationSchema({ reader: "Prometheus" }).optional() }).optional(),
    /** A Grafana dashboard ConfigMap, labelled for the kube-prometheus-stack Grafana sidecar. */
    dashboard: monitoringObject.optional(),
});

export const stackConfigSchema = z.strictObject({
    renderDirectory: nonEmpty("a directory path such as rendered").optional(),
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
    clusters: z
        .array(clusterSchema)
        .min(1, "is empty; list at least one observed cluster, each with a name and a host")
        .describe("a list of observed clusters (entries like - name: cl1, host: cl1m.example.com)"),
});

export type StackConfigInput = z.infer<typeof stackConfigSchema>;
export type ClusterInput = z.infer<typeof clusterSchema>;
