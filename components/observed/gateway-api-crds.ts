import type { ObservedClusterModel } from "../config/model";
import type { GetResult } from "../kube-api";
import { GATEWAY_API_GROUP } from "./gateway-api";

/**
 * A gateway-api front door needs the Gateway API CRDs with frontend client-certificate validation
 * (`spec.tls.frontend`, Gateway API v1.5.0). Without the CRDs a preview passes and `pulumi up` fails late; with older
 * ones the API server refuses the field, naming neither the cluster nor the fix. The program reads the Gateway CRD of
 * each such cluster first and says which cluster lacks what.
 */

export const GATEWAY_CRD = `gateways.${GATEWAY_API_GROUP}`;
export const GATEWAY_CRD_PATH = `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${GATEWAY_CRD}`;
/** The first Gateway API release whose Gateway has spec.tls.frontend. */
export const GATEWAY_API_MINIMUM = "v1.5.0";
/** The release the tests install (tools/envoy-gateway/go.mod; a unit test keeps the two equal). */
export const GATEWAY_API_TESTED = "v1.6.1";

/** What is wrong with the Gateway CRD a cluster returned; undefined when it is usable or could not be read (the provider then speaks). */
export function gatewayCrdProblem(result: GetResult): string | undefined {
    if ("unavailable" in result) return undefined;
    if (result.status === 404) return `has no Gateway API CRDs (no CustomResourceDefinition ${GATEWAY_CRD})`;
    if (result.status !== 200) return undefined;
    const crd = result.body as {
        metadata?: { annotations?: Record<string, string> };
        spec?: { versions?: { name: string; served?: boolean; schema?: { openAPIV3Schema?: unknown } }[] };
    };
    const annotations = crd.metadata?.annotations ?? {};
    const bundle = annotations[`${GATEWAY_API_GROUP}/bundle-version`];
    const channel = annotations[`${GATEWAY_API_GROUP}/channel`];
    const installed = `Gateway API ${bundle ?? "CRDs of unknown version"}${channel === undefined ? "" : ` (${channel} channel)`}`;
    const v1 = crd.spec?.versions?.find((v) => v.name === "v1" && v.served === true);
    if (v1 === undefined) return `has ${installed}, which does not serve Gateway as ${GATEWAY_API_GROUP}/v1`;
    const schema = v1.schema?.openAPIV3Schema as { properties?: Record<string, unknown> } | undefined;
    const at = (node: unknown, key: string) => (node as { properties?: Record<string, unknown> } | undefined)?.properties?.[key];
    if (at(at(at(schema, "spec"), "tls"), "frontend") === undefined) {
        return `has ${installed}, whose Gateway has no spec.tls.frontend (client-certificate validation, new in ${GATEWAY_API_MINIMUM})`;
    }
    return undefined;
}

/** The message for a cluster whose CRDs are missing or too old, naming it and the fix. */
export function gatewayCrdMessage(cluster: Pick<ObservedClusterModel, "name">, index: number, problem: string): string {
    return (
        `Observed cluster ${cluster.name} (clusters[${index}], front door gateway-api) ${problem}. ` +
        `Install the Gateway API CRDs ${GATEWAY_API_MINIMUM} or later, standard channel (${GATEWAY_API_TESTED} is the version the tests run): ` +
        `kubectl apply --server-side -f https://github.com/kubernetes-sigs/gateway-api/releases/download/${GATEWAY_API_TESTED}/standard-install.yaml ` +
        `(your Gateway API implementation may install them), or keep this cluster on ingress-nginx: clusters[${index}].frontDoor: ingress-nginx.`
    );
}
