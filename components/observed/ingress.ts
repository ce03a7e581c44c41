import type * as k8s from "@pulumi/kubernetes";
import type { ObservedClusterModel } from "../config/model";
import { INGRESS_ANNOTATION, observedNames } from "../names";

export interface AnnotationInput {
    cluster: Pick<ObservedClusterModel, "name" | "sidecar" | "ingress">;
    /** How many CA levels may stand between Envoy's client certificate and the trusted CA (1: issued directly). */
    verifyDepth: number;
    /** The CN of Envoy's client certificate: the only client identity nginx lets through (`Model.clientIdentity`). */
    clientIdentity: string;
}

/**
 * ingress-nginx's `auth-tls-match-cn` is a regex over the client's subject DN (RFC 2253, `CN=...,O=...`) that must start
 * with `CN=`; the CN is matched literally and must end at a comma or the end of the DN, so `envoy-thanos-client-2` fails.
 */
export function matchCnPattern(commonName: string): string {
    return `CN=${commonName.replace(/[\\^$.*+?()[\]{}|/]/g, "\\$&")}(,|$)`;
}

export function ingressAnnotations({ cluster, verifyDepth, clientIdentity }: AnnotationInput): Record<string, string> {
    const timeout = String(cluster.ingress.streamTimeoutSeconds);
    return {
        ...cluster.ingress.annotations,
        [INGRESS_ANNOTATION.backendProtocol]: "GRPC",
        [INGRESS_ANNOTATION.authTlsSecret]: `${cluster.sidecar.namespace}/${observedNames(cluster.name).clientCaSecret}`,
        [INGRESS_ANNOTATION.authTlsVerifyClient]: "on",
        [INGRESS_ANNOTATION.authTlsVerifyDepth]: String(verifyDepth),
        [INGRESS_ANNOTATION.authTlsMatchCn]: matchCnPattern(clientIdentity),
        // ingress-nginx renders these as grpc_read_timeout / grpc_send_timeout for GRPC backends; the 60 s default
        // would close a Series stream that is silent for a minute.
        [INGRESS_ANNOTATION.proxyReadTimeout]: timeout,
        [INGRESS_ANNOTATION.proxySendTimeout]: timeout,
    };
}

export function ingressSpec(cluster: Pick<ObservedClusterModel, "name" | "host" | "sidecar" | "ingress">): k8s.types.input.networking.v1.IngressSpec {
    const port = typeof cluster.sidecar.port === "number" ? { number: cluster.sidecar.port } : { name: cluster.sidecar.port };
    return {
        ingressClassName: cluster.ingress.className,
        tls: [{ hosts: [cluster.host], secretName: observedNames(cluster.name).serverTlsSecret }],
        rules: [
            {
                host: cluster.host,
                http: {
                    paths: [{ path: "/", pathType: "Prefix", backend: { service: { name: cluster.sidecar.service, port } } }],
                },
            },
        ],
    };
}
