import { annotationRefusal } from "../../observed/ingress-annotations";
import { defaults } from "../defaults";
import { ConfigProblem } from "../errors";
import { ClusterInput, StackConfigInput } from "../schema";

/** The front door of an observed cluster: a Gateway API Gateway, or an ingress-nginx Ingress (end of life). */
export type FrontDoor = "gateway-api" | "ingress-nginx";

/** A Gateway the platform team owns, and the listener of it that serves the cluster's host. */
export interface ExistingGateway {
    namespace: string;
    name: string;
    sectionName: string;
}

export interface GatewayApiModel {
    /** Unused with `existingGateway`: that Gateway has its own class. */
    gatewayClassName: string;
    /** `envoy-gateway`: also its BackendTrafficPolicy and ClientTrafficPolicy; `other`: standard objects only. */
    implementation: "envoy-gateway" | "other";
    streamTimeoutSeconds: number;
    /** The listener reads a PROXY protocol header first (set on the program's ClientTrafficPolicy; Envoy Gateway only). */
    proxyProtocol: boolean;
    /** Attach to this Gateway's listener instead of creating a Gateway. */
    existingGateway?: ExistingGateway;
}

export interface IngressModel {
    className: string;
    annotations: Record<string, string>;
    streamTimeoutSeconds: number;
}

/**
 * The front door of the cluster at `key` (its own, else the stack's, else the default), with the problems of its
 * settings: a block for the other door, a refused Ingress annotation, a class next to an existing Gateway.
 */
export function resolveFrontDoor(c: ClusterInput, key: string, input: StackConfigInput, problems: ConfigProblem[]): FrontDoor {
    const frontDoor = c.frontDoor ?? input.frontDoor ?? defaults.frontDoor;
    const other = (block: "ingress" | "gatewayApi", door: FrontDoor) =>
        problems.push({
            key: `${key}.${block}`,
            message: `configures the ${door} front door, but this cluster's front door is ${frontDoor}; remove ${key}.${block}, or set ${key}.frontDoor to ${door}`,
        });
    if (frontDoor === "gateway-api" && c.ingress !== undefined) other("ingress", "ingress-nginx");
    if (frontDoor === "ingress-nginx" && c.gatewayApi !== undefined) other("gatewayApi", "gateway-api");
    for (const [annotation, value] of Object.entries(c.ingress?.annotations ?? {})) {
        const refusal = annotationRefusal(annotation, value, key);
        if (refusal !== undefined) {
            problems.push({ key: `${key}.ingress.annotations.${annotation}`, message: `${refusal.why}; ${refusal.fix}` });
        }
    }
    // The existing Gateway has its own class: a class next to it (in the same block) would be ignored, so it is refused.
    for (const [block, where] of [
        [c.gatewayApi, `${key}.gatewayApi`],
        [input.gatewayApi, "gatewayApi"],
    ] as const) {
        if (block?.existingGateway !== undefined && block.gatewayClassName !== undefined) {
            problems.push({
                key: `${where}.gatewayClassName`,
                message: `has no effect next to ${where}.existingGateway (that Gateway has its own class); remove one of the two`,
            });
        }
    }
    if (frontDoor === "gateway-api") checkProxyProtocol(c, key, input, problems);
    return frontDoor;
}

/**
 * The program sets the PROXY protocol on the ClientTrafficPolicy it creates for its own Gateway's listener: only with
 * Envoy Gateway, and not on an existing Gateway. A conflict between two stack-wide keys is named once; one that this
 * cluster's own keys take part in, at this cluster.
 */
function checkProxyProtocol(c: ClusterInput, key: string, input: StackConfigInput, problems: ConfigProblem[]): void {
    if (!(c.gatewayApi?.proxyProtocol ?? input.gatewayApi?.proxyProtocol ?? defaults.gatewayApi.proxyProtocol)) return;
    const conflict =
        (c.gatewayApi?.existingGateway ?? input.gatewayApi?.existingGateway) !== undefined
            ? {
                  field: "existingGateway" as const,
                  why: "an existing Gateway's listener is the platform team's, and the program creates no ClientTrafficPolicy for it",
                  fix: "have the platform team set proxyProtocol in its own ClientTrafficPolicy for that listener",
              }
            : (c.gatewayApi?.implementation ?? input.gatewayApi?.implementation) === "other"
              ? {
                    field: "implementation" as const,
                    why: "the program sets it on Envoy Gateway's ClientTrafficPolicy, which implementation: other does not get",
                    fix: "switch the PROXY protocol on in that implementation's own configuration",
                }
              : undefined;
    if (conflict === undefined) return;
    const ownProxyProtocol = c.gatewayApi?.proxyProtocol !== undefined;
    const ownConflict = c.gatewayApi?.[conflict.field] !== undefined;
    if (ownProxyProtocol || !ownConflict) {
        const where = ownProxyProtocol ? `${key}.gatewayApi.proxyProtocol` : "gatewayApi.proxyProtocol";
        if (problems.some((p) => p.key === where)) return;
        problems.push({ key: where, message: `has no effect here: ${conflict.why}; ${conflict.fix}, and remove it` });
        return;
    }
    problems.push({
        key: `${key}.gatewayApi.${conflict.field}`,
        message: `leaves gatewayApi.proxyProtocol without effect on this cluster: ${conflict.why}; ${conflict.fix}, and set ${key}.gatewayApi.proxyProtocol: false`,
    });
}

/** Gateway API settings: the cluster's own over the stack's over the defaults; an existing Gateway defaults to the sidecar's namespace. */
export function gatewayApiModel(c: ClusterInput, input: StackConfigInput, sidecarNamespace: string): GatewayApiModel {
    const existing = c.gatewayApi?.existingGateway ?? input.gatewayApi?.existingGateway;
    return {
        gatewayClassName: c.gatewayApi?.gatewayClassName ?? input.gatewayApi?.gatewayClassName ?? defaults.gatewayApi.gatewayClassName,
        implementation: c.gatewayApi?.implementation ?? input.gatewayApi?.implementation ?? defaults.gatewayApi.implementation,
        streamTimeoutSeconds: c.gatewayApi?.streamTimeoutSeconds ?? input.gatewayApi?.streamTimeoutSeconds ?? defaults.gatewayApi.streamTimeoutSeconds,
        proxyProtocol: c.gatewayApi?.proxyProtocol ?? input.gatewayApi?.proxyProtocol ?? defaults.gatewayApi.proxyProtocol,
        ...(existing === undefined ? {} : { existingGateway: { ...existing, namespace: existing.namespace ?? sidecarNamespace } }),
    };
}

export function ingressModel(c: ClusterInput): IngressModel {
    return {
        className: c.ingress?.className ?? defaults.ingress.className,
        annotations: c.ingress?.annotations ?? {},
        streamTimeoutSeconds: c.ingress?.streamTimeoutSeconds ?? defaults.ingress.streamTimeoutSeconds,
    };
}

/** A stack that names no front door keeps its Ingresses (as before front doors were a choice), with one warning. */
export function frontDoorWarnings(input: StackConfigInput): string[] {
    const unnamed = input.clusters.flatMap((c, i) => (c.frontDoor === undefined ? [i] : []));
    if (input.frontDoor !== undefined || unnamed.length === 0) return [];
    const which = unnamed.map((i) => input.clusters[i].name).join(", ");
    return [
        `No front door is configured for ${which}, so ${unnamed.length === 1 ? "it keeps its" : "they keep their"} ingress-nginx Ingress. ` +
            "ingress-nginx reached end of life in March 2026 (no more releases or security fixes). Switch with " +
            "`pulumi config set --path frontDoor gateway-api` (or per cluster: `pulumi config set --path 'clusters[0].frontDoor' gateway-api`); " +
            "keep the Ingresses and silence this warning with `pulumi config set --path frontDoor ingress-nginx`. " +
            'docs/front-doors.md, "Migrating a cluster from ingress-nginx to gateway-api", explains the migration.',
    ];
}
