import type { ObservedClusterModel } from "../config/model";
import { observedNames } from "../names";
import { CLIENT_IDENTITY } from "../pki/spec";

/**
 * The Gateway API front door of one observed cluster, as plain objects: a Gateway that terminates TLS for the
 * cluster's host and verifies Envoy's client certificate (Gateway API v1.5+ frontend validation), a GRPCRoute to the
 * sidecar Service and, for Envoy Gateway, the policies that keep long Series streams open and pin Envoy's identity.
 * The resource wiring is in gateway-api-front-door.ts.
 */

export const GATEWAY_API_GROUP = "gateway.networking.k8s.io";
export const GATEWAY_API_VERSION = `${GATEWAY_API_GROUP}/v1`;
export const ENVOY_GATEWAY_VERSION = "gateway.envoyproxy.io/v1alpha1";
/** ReferenceGrant is served as v1beta1 by every Gateway API release with frontend validation (v1.5.0 on). */
export const REFERENCE_GRANT_VERSION = `${GATEWAY_API_GROUP}/v1beta1`;
/** The Gateway's only listener; the policies target it by this section name. */
export const LISTENER_NAME = "thanos-grpc";

/**
 * `pulumi.com/waitFor` (Kubernetes provider >= 4.18) makes `pulumi up` wait for these conditions, so a cluster is
 * reported ready only when its implementation has programmed the Gateway and accepted the route and the policies.
 */
export const WAIT_FOR_ANNOTATION = "pulumi.com/waitFor";

type Cluster = Pick<ObservedClusterModel, "name" | "host" | "sidecar" | "gatewayApi">;

/** A `kubectl wait`-style JSONPath condition on the first parent (route) or ancestor (policy) status. */
function statusCondition(list: "parents" | "ancestors", type: string): string {
    return `jsonpath={.status.${list}[0].conditions[?(@.type=="${type}")].status}=True`;
}

export function waitFor(kind: "Gateway" | "GRPCRoute" | "Policy"): string {
    const conditions = {
        Gateway: ["condition=Accepted", "condition=Programmed"],
        GRPCRoute: [statusCondition("parents", "Accepted"), statusCondition("parents", "ResolvedRefs")],
        Policy: [statusCondition("ancestors", "Accepted")],
    }[kind];
    return JSON.stringify(conditions);
}

/** The CA ConfigMap's data: the CA certificate(s) that issued Envoy's client certificate (public, hence a ConfigMap). */
export function clientCaData(caCertificate: string): Record<string, string> {
    return { "ca.crt": caCertificate };
}

export function gatewaySpec(cluster: Cluster): Record<string, unknown> {
    const names = observedNames(cluster.name);
    return {
        gatewayClassName: cluster.gatewayApi.gatewayClassName,
        listeners: [
            {
                name: LISTENER_NAME,
                protocol: "HTTPS",
                port: 443,
                hostname: cluster.host,
                tls: { mode: "Terminate", certificateRefs: [{ group: "", kind: "Secret", name: names.serverTlsSecret }] },
                allowedRoutes: { namespaces: { from: "Same" }, kinds: [{ group: GATEWAY_API_GROUP, kind: "GRPCRoute" }] },
            },
        ],
        tls: {
            frontend: {
                default: {
                    validation: {
                        caCertificateRefs: [{ group: "", kind: "ConfigMap", name: names.clientCaConfigMap }],
                        mode: "AllowValidOnly",
                    },
                },
            },
        },
    };
}

/** The listener the route attaches to: the program's own Gateway's, or the named listener of the platform team's Gateway. */
function parentRef(cluster: Cluster): Record<string, string> {
    const existing = cluster.gatewayApi.existingGateway;
    if (existing === undefined) {
        return { group: GATEWAY_API_GROUP, kind: "Gateway", name: observedNames(cluster.name).gateway, sectionName: LISTENER_NAME };
    }
    return { group: GATEWAY_API_GROUP, kind: "Gateway", namespace: existing.namespace, name: existing.name, sectionName: existing.sectionName };
}

export function grpcRouteSpec(cluster: Cluster): Record<string, unknown> {
    const port = cluster.sidecar.port;
    if (typeof port !== "number") {
        // A GRPCRoute backendRef takes a port number; the component resolves a port name through the Service first.
        throw new Error(`grpcRouteSpec needs the sidecar Service's port number, got the port name ${port}`);
    }
    return {
        parentRefs: [parentRef(cluster)],
        hostnames: [cluster.host],
        rules: [{ backendRefs: [{ group: "", kind: "Service", name: cluster.sidecar.service, port }] }],
    };
}

/**
 * An existing Gateway in another namespace may use the server certificate Secret (its listener's certificateRefs) and
 * the CA ConfigMap (its frontend validation) only with this grant in their namespace, the sidecar's. Undefined when the
 * Gateway is in the sidecar's namespace (no grant needed) or the program creates its own.
 */
export function referenceGrantSpec(cluster: Cluster): Record<string, unknown> | undefined {
    const existing = cluster.gatewayApi.existingGateway;
    if (existing === undefined || existing.namespace === cluster.sidecar.namespace) return undefined;
    const names = observedNames(cluster.name);
    return {
        from: [{ group: GATEWAY_API_GROUP, kind: "Gateway", namespace: existing.namespace }],
        to: [
            { group: "", kind: "Secret", name: names.serverTlsSecret },
            { group: "", kind: "ConfigMap", name: names.clientCaConfigMap },
        ],
    };
}

/** Gateway API durations: whole seconds, at most five digits. */
function seconds(value: number): string {
    return `${value}s`;
}

/**
 * Envoy Gateway: no route timeout (its default is Envoy's 15 s, which cuts every Series stream that takes longer) and
 * the stream idle timeout of the route.
 */
export function backendTrafficPolicySpec(cluster: Cluster): Record<string, unknown> {
    return {
        targetRefs: [{ group: GATEWAY_API_GROUP, kind: "GRPCRoute", name: observedNames(cluster.name).route }],
        timeout: { http: { requestTimeout: "0s", streamIdleTimeout: seconds(cluster.gatewayApi.streamTimeoutSeconds) } },
    };
}

/**
 * Envoy Gateway: the listener's stream idle timeout (default 5 minutes), and client validation that accepts only
 * Envoy's identity. Envoy Gateway lets this policy's clientValidation replace the Gateway's frontend validation for the
 * listener, so it names the same CA ConfigMap; Envoy Gateway matches subjectAltNames only (no CN matcher). Behind an L4
 * hop that sends the PROXY protocol, the listener reads its header first; not `optional`, which would let a client that
 * reaches the listener directly name any source address.
 */
export function clientTrafficPolicySpec(cluster: Cluster): Record<string, unknown> {
    const names = observedNames(cluster.name);
    return {
        targetRefs: [{ group: GATEWAY_API_GROUP, kind: "Gateway", name: names.gateway, sectionName: LISTENER_NAME }],
        ...(cluster.gatewayApi.proxyProtocol ? { proxyProtocol: {} } : {}),
        timeout: { http: { streamIdleTimeout: seconds(cluster.gatewayApi.streamTimeoutSeconds) } },
        tls: {
            clientValidation: {
                caCertificateRefs: [{ group: "", kind: "ConfigMap", name: names.clientCaConfigMap }],
                subjectAltNames: { dnsNames: [{ type: "Exact", value: CLIENT_IDENTITY }] },
            },
        },
    };
}
