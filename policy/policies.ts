import * as k8s from "@pulumi/kubernetes";
import { ReportViolation, ResourceValidation, ResourceValidationPolicy, validateResourceOfType } from "@pulumi/policy";
import { adminAddressViolations, routeTimeoutViolations, upstreamTlsViolations } from "./rules/envoy";
import {
    configMapPrivateKeyViolations,
    gatewayMtlsViolations,
    grpcIngressAnnotationViolations,
    grpcIngressMtlsViolations,
    imageDigestViolations,
    imagePinViolations,
    nonRootViolations,
    resourceLimitViolations,
} from "./rules/kubernetes";
import { at, knownOnly } from "./rules/values";

/**
 * The policies of the pack: thin wrappers that hand a plain, preview-safe copy of a resource's inputs
 * to a rule function and report each message it returns. Kept apart from index.ts so tests can load
 * them without starting the policy server that `new PolicyPack` starts.
 */

type Rule = (props: unknown) => string[];

function reportAll(rule: Rule) {
    return (props: unknown, _args: unknown, reportViolation: ReportViolation) => {
        for (const message of rule(knownOnly(props))) {
            reportViolation(message);
        }
    };
}

/** The same pod-spec rule on every workload kind that carries one. */
function onPods(rule: Rule): ResourceValidation[] {
    const template = reportAll((props) => rule(at(props, "spec", "template", "spec")));
    return [
        validateResourceOfType(k8s.apps.v1.Deployment, template),
        validateResourceOfType(k8s.apps.v1.StatefulSet, template),
        validateResourceOfType(k8s.apps.v1.DaemonSet, template),
        validateResourceOfType(
            k8s.core.v1.Pod,
            reportAll((props) => rule(at(props, "spec"))),
        ),
    ];
}

const mandatory = "mandatory" as const;
/** The Kubernetes provider's type token for a Gateway (a custom resource: no typed class to match). */
const GATEWAY_TYPE = "kubernetes:gateway.networking.k8s.io/v1:Gateway";

export const policies: ResourceValidationPolicy[] = [
    {
        name: "envoy-upstream-tls-verified",
        description: "Every Envoy upstream TLS cluster verifies the server certificate: a trusted CA and a SAN match.",
        enforcementLevel: mandatory,
        validateResource: validateResourceOfType(k8s.core.v1.ConfigMap, reportAll(upstreamTlsViolations)),
    },
    {
        name: "envoy-routes-no-stream-timeout",
        description: "Envoy routes set timeout: 0s, so long gRPC streams are not cut after 15 s.",
        enforcementLevel: mandatory,
        validateResource: validateResourceOfType(k8s.core.v1.ConfigMap, reportAll(routeTimeoutViolations)),
    },
    {
        name: "envoy-admin-loopback-only",
        description: "Envoy's admin interface listens on loopback only.",
        enforcementLevel: mandatory,
        validateResource: validateResourceOfType(k8s.core.v1.ConfigMap, reportAll(adminAddressViolations)),
    },
    {
        name: "grpc-ingress-requires-client-cert",
        description: "An ingress-nginx Ingress with a gRPC backend requires a client certificate verified against a CA Secret.",
        enforcementLevel: mandatory,
        validateResource: validateResourceOfType(k8s.networking.v1.Ingress, reportAll(grpcIngressMtlsViolations)),
    },
    {
        name: "grpc-ingress-no-bypass-annotations",
        description: "An ingress-nginx Ingress with a gRPC backend has no annotation that undoes client verification or sends its traffic elsewhere.",
        enforcementLevel: mandatory,
        validateResource: validateResourceOfType(k8s.networking.v1.Ingress, reportAll(grpcIngressAnnotationViolations)),
    },
    {
        name: "gateway-requires-client-cert",
        description: "A Gateway API Gateway that terminates TLS verifies client certificates on every such listener (frontend validation).",
        enforcementLevel: mandatory,
        validateResource: (args, reportViolation) => {
            if (args.type !== GATEWAY_TYPE) return;
            reportAll(gatewayMtlsViolations)(args.props, args, reportViolation);
        },
    },
    {
        name: "configmap-no-private-key",
        description: "No PEM private key in a ConfigMap; keys belong in Secrets.",
        enforcementLevel: mandatory,
        validateResource: validateResourceOfType(k8s.core.v1.ConfigMap, reportAll(configMapPrivateKeyViolations)),
    },
    {
        name: "containers-have-limits",
        description: "Every container of a Deployment, StatefulSet, DaemonSet or Pod has CPU and memory limits.",
        enforcementLevel: mandatory,
        validateResource: onPods(resourceLimitViolations),
    },
    {
        name: "containers-run-as-non-root",
        description: "Every container runs with runAsNonRoot: true and not as UID 0.",
        enforcementLevel: mandatory,
        validateResource: onPods(nonRootViolations),
    },
    {
        name: "images-pinned",
        description: "Every container image has a version tag other than latest, or a digest.",
        enforcementLevel: mandatory,
        validateResource: onPods(imagePinViolations),
    },
    {
        name: "images-by-digest",
        description: "Every container image names its digest (advisory: the program cannot verify one offline).",
        enforcementLevel: "advisory",
        validateResource: onPods(imageDigestViolations),
    },
];
