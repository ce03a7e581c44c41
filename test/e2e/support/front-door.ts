import type { ObservedClusterModel } from "../../../components/config/model";
import type { Issued } from "../../../tools/pki/openssl-ca";
import type { IngressNginxConfigMap } from "./ingress-nginx-configmap";
import type { ProcessGroup } from "./processes";

/**
 * The observed cluster's front door in the end-to-end tests, whichever program plays it: nginx rendered by our
 * translator from the program's Ingress, Traefik reading the program's Ingress from a real API server, or Envoy
 * Gateway translating the program's Gateway and GRPCRoute. The data-path checks are written once against this
 * interface and run against every kind.
 */

export type FrontDoorKind = "nginx" | "traefik" | "envoy-gateway";

/** One request as the front door itself recorded it (its access log). */
export interface FrontDoorRequest {
    /** The TLS server name the client sent; undefined where the front door cannot record it (the gap is named by `gaps`). */
    sni?: string;
    /** The request's :authority / Host. */
    host: string;
    /** HTTP status the front door answered or passed on (gRPC over HTTP/2: 200 unless the front door refused). */
    status: number;
    /**
     * Serial number of the verified client certificate, lower-case hex without leading zeros; "" when none; undefined
     * where the front door cannot record it (the gap is named by `gaps`, and `clientSubject` stands in).
     */
    clientSerial?: string;
    /** Subject of the verified client certificate (RFC 2253 or Go's form, CN first or last), where that is what the front door records. */
    clientSubject?: string;
    /** The client's address:port as the front door saw it (behind a PROXY protocol hop: the one in its header), where it records it. */
    client?: string;
}

/** Why a front door must refuse a connection or request in the rejection checks. */
export type Refusal = "no-client-certificate" | "client-certificate-from-another-ca" | "client-identity-not-envoy";

/** What a topology hands a front door for one observed cluster. */
export interface FrontDoorCluster {
    /** The validated cluster, as the program sees it (name, host, sidecar Service, timeouts). */
    cluster: ObservedClusterModel;
    /** The client identity the program pins (model.clientIdentity). */
    clientIdentity: string;
    /** The front door's server certificate for `cluster.host`. */
    server: Issued;
    /** PEM bundle the front door verifies client certificates against. */
    clientCa: string;
    /** Where the sidecar (gRPC test backend or real Thanos sidecar) listens on the machine's loopback: host:port. */
    backendAddress: string;
    /** The port on the machine's 127.0.0.1 the front door must serve this cluster on (the cluster's 443). */
    port: number;
    /** ingress-nginx's controller ConfigMap (e.g. `ssl-protocols` for the TLS minimum's negative test); only nginx honours it. */
    ingressNginxConfigMap?: IngressNginxConfigMap;
    /** Fields merged into the program's Envoy Gateway policy specs (settings the program leaves at Envoy Gateway's defaults); only Envoy Gateway honours them. */
    envoyGatewayPolicies?: EnvoyGatewayPolicyChanges;
}

/** Top-level fields added to, or replacing those of, the program's BackendTrafficPolicy and ClientTrafficPolicy specs. */
export interface EnvoyGatewayPolicyChanges {
    backendTrafficPolicy?: Record<string, unknown>;
    clientTrafficPolicy?: Record<string, unknown>;
}

/** How far a side's records went at one moment, so a check can look only at what came after. */
export interface Checkpoint {
    requests: number;
    logLength: number;
}

/** One cluster served by a front door. */
export interface FrontDoorSide {
    /** Every request recorded so far, oldest first. */
    requests(): FrontDoorRequest[];
    /** The front door's own log text, where refusals are reported. */
    log(): string;
    /** Where the records stand now. */
    checkpoint(): Checkpoint;
    /** Asserts that the front door itself refused for `reason` after `since` (from its logs or counters); throws otherwise. */
    assertRefused(reason: Refusal, since: Checkpoint): Promise<void>;
    /** The front door's own processes on this cluster's data path, for a benchmark's /proc CPU; absent where unknown. */
    processes?(): number[];
    /**
     * What the test harness itself puts on this cluster's data path besides the front door (relays into a network
     * namespace), which a benchmark's wall time includes; absent when nothing.
     */
    readonly harnessOnPath?: string;
    /** Replaces the server certificate and client CA bundle, as a Secret update would, and waits until they serve. */
    updateTls(tls: { server: Issued; clientCa: string }): Promise<void>;
}

/** Where a front door keeps its files and processes: the topology's. */
export interface FrontDoorContext {
    dir: string;
    group: ProcessGroup;
}

/** A front door serving one or more observed clusters. */
export interface RunningFrontDoor {
    readonly kind: FrontDoorKind;
    /** Behaviours of ours this front door does not honour, each a short sentence; the checks skip exactly these. */
    readonly gaps: readonly string[];
    add(cluster: FrontDoorCluster): Promise<FrontDoorSide>;
    stop(): Promise<void>;
}
