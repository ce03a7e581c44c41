import { annotationRefusal, isSetByProgram } from "../../components/observed/ingress-annotations";
import { at, entries, isMissing, list, str, UNKNOWN } from "./values";

/** Rules on Kubernetes objects. Each takes the object's props (or a pod spec) and returns one message per problem. */

const NGINX = "nginx.ingress.kubernetes.io/";

/** Rule 4: an ingress in front of a gRPC backend (a Thanos sidecar) must require a client certificate from our CA. */
export function grpcIngressMtlsViolations(ingress: unknown): string[] {
    const annotation = (key: string) => at(ingress, "metadata", "annotations", NGINX + key);
    const protocol = annotation("backend-protocol");
    // ingress-nginx reads the value case-insensitively; GRPCS is gRPC over TLS to the backend.
    if (typeof protocol !== "string" || !/^grpcs?$/i.test(protocol)) {
        return [];
    }
    const why = `this Ingress forwards gRPC (backend-protocol: ${protocol}) to the backend`;
    const problems: string[] = [];
    const verify = annotation("auth-tls-verify-client");
    if (verify !== "on" && verify !== UNKNOWN) {
        const actual = verify === undefined ? "is not set" : `is ${JSON.stringify(verify)}`;
        problems.push(
            `${why} but ${NGINX}auth-tls-verify-client ${actual}, so a client without a valid certificate reaches the sidecar. ` +
                `Fix: set ${NGINX}auth-tls-verify-client: "on".`,
        );
    }
    if (isMissing(annotation("auth-tls-secret"))) {
        problems.push(
            `${why} but ${NGINX}auth-tls-secret is not set, so ingress-nginx has no CA to verify client certificates against. ` +
                `Fix: set ${NGINX}auth-tls-secret: <namespace>/<Secret with ca.crt> (the CA that signs Envoy's client certificate).`,
        );
    }
    return problems;
}

/**
 * Rule 4a: a gRPC Ingress carries none of the ingress-nginx annotations that undo client verification or send its
 * traffic elsewhere (snippets, ssl-passthrough, canary, default backends, rewrites, redirects, mirrors, aliases, other
 * auth-tls-* settings). The list is the program's own (components/observed/ingress-annotations.ts); the annotations
 * the program sets are judged by rule 4.
 */
export function grpcIngressAnnotationViolations(ingress: unknown): string[] {
    const protocol = at(ingress, "metadata", "annotations", NGINX + "backend-protocol");
    if (typeof protocol !== "string" || !/^grpcs?$/i.test(protocol)) {
        return [];
    }
    return entries(ingress, "metadata", "annotations").flatMap(([name, value]) => {
        // A value computed during preview is judged once it is known.
        if (typeof value !== "string" || isSetByProgram(name)) return [];
        const refusal = annotationRefusal(name, value, "the cluster");
        return refusal === undefined ? [] : [`annotation ${name} ${refusal.why}. Fix: ${refusal.fix}.`];
    });
}

/**
 * Rule 4b: a Gateway API Gateway that terminates TLS must verify client certificates on every such listener (frontend
 * validation, Gateway API >= v1.5): the default or a perPort entry for its port, with a CA and without the insecure fallback.
 */
export function gatewayMtlsViolations(gateway: unknown): string[] {
    const frontend = at(gateway, "spec", "tls", "frontend");
    if (frontend === UNKNOWN) return [];
    const problems: string[] = [];
    for (const listener of list(gateway, "spec", "listeners")) {
        if (at(listener, "protocol") !== "HTTPS" || at(listener, "tls", "mode") === "Passthrough") continue;
        const port = at(listener, "port");
        const perPort = list(frontend, "perPort").find((p) => at(p, "port") === port);
        const validation = perPort === undefined ? at(frontend, "default", "validation") : at(perPort, "tls", "validation");
        const name = str(at(listener, "name")) ?? "?";
        if (validation === UNKNOWN) continue;
        if (list(validation, "caCertificateRefs").length === 0) {
            problems.push(
                `listener ${name} (port ${String(port)}) terminates TLS without client-certificate validation, so any client reaches the backend. ` +
                    "Fix: set spec.tls.frontend.default.validation.caCertificateRefs to a ConfigMap with ca.crt (the CA that signs Envoy's client certificate).",
            );
        } else if (at(validation, "mode") === "AllowInsecureFallback") {
            problems.push(
                `listener ${name} (port ${String(port)}) validates client certificates with mode AllowInsecureFallback, which lets clients without a valid certificate through. ` +
                    "Fix: set the validation mode to AllowValidOnly (or leave it unset).",
            );
        }
    }
    return problems;
}

const PRIVATE_KEY = "PRIVATE KEY-----";

/** Rule 5: ConfigMaps are not secret; a PEM private key in one is readable by anyone who may read ConfigMaps. */
export function configMapPrivateKeyViolations(configMap: unknown): string[] {
    const text = (value: unknown, base64: boolean) => (typeof value !== "string" ? "" : base64 ? Buffer.from(value, "base64").toString("latin1") : value);
    const keys = [
        ...entries(configMap, "data")
            .filter(([, v]) => text(v, false).includes(PRIVATE_KEY))
            .map(([k]) => `data.${k}`),
        ...entries(configMap, "binaryData")
            .filter(([, v]) => text(v, true).includes(PRIVATE_KEY))
            .map(([k]) => `binaryData.${k}`),
    ];
    return keys.map(
        (key) =>
            `ConfigMap ${key} contains a PEM private key; ConfigMaps are not secret (anyone allowed to read ConfigMaps in the namespace, ` +
            "and every tool that dumps them, sees it). Fix: move the key to a Secret (type kubernetes.io/tls) and mount that instead.",
    );
}

/** Every container of a pod spec, init containers included, with a label for messages. */
function containers(podSpec: unknown): { label: string; container: unknown }[] {
    const labelled = (kind: string) => (c: unknown) => ({ label: `${kind} ${JSON.stringify(str(at(c, "name")) ?? "(unnamed)")}`, container: c });
    return [...list(podSpec, "initContainers").map(labelled("init container")), ...list(podSpec, "containers").map(labelled("container"))];
}

/** Rule 6a: without limits one container can take a node's CPU or memory. */
export function resourceLimitViolations(podSpec: unknown): string[] {
    return containers(podSpec).flatMap(({ label, container }) => {
        const missing = ["cpu", "memory"].filter((r) => isMissing(at(container, "resources", "limits", r)));
        if (missing.length === 0) {
            return [];
        }
        return [
            `${label} has no ${missing.join(" or ")} limit, so it can starve everything else on its node. ` +
                "Fix: set resources.limits.cpu and resources.limits.memory (and requests).",
        ];
    });
}

/** Rule 6b: a container escape from a root container is root on the node. */
export function nonRootViolations(podSpec: unknown): string[] {
    const pod = at(podSpec, "securityContext");
    // A container's securityContext overrides the pod's, field by field.
    const effective = (container: unknown, field: string) => {
        const own = at(container, "securityContext", field);
        return own !== undefined ? own : at(pod, field);
    };
    return containers(podSpec).flatMap(({ label, container }) => {
        const problems: string[] = [];
        if (effective(container, "runAsUser") === 0) {
            problems.push(
                `${label} runs as UID 0 (root). Fix: set securityContext.runAsUser to a non-zero UID (the image's user, e.g. 101 for envoyproxy/envoy).`,
            );
        }
        const nonRoot = effective(container, "runAsNonRoot");
        if (nonRoot !== true && nonRoot !== UNKNOWN) {
            problems.push(
                `${label} does not set runAsNonRoot: true, so an image whose user is root runs as root. ` +
                    "Fix: set securityContext.runAsNonRoot: true on the pod or the container.",
            );
        }
        return problems;
    });
}

/** What is wrong with an image reference's version, or undefined when it is pinned. */
export function imagePinProblem(image: string): string | undefined {
    if (image.includes("@")) {
        return undefined; // a digest pins the exact content, whatever the tag says
    }
    // A colon before the last slash belongs to a registry port (registry:5000/envoy), not a tag.
    const colon = image.lastIndexOf(":");
    const tag = colon > image.lastIndexOf("/") ? image.slice(colon + 1) : undefined;
    if (tag === undefined || tag === "") {
        return "has no tag, so Kubernetes pulls :latest";
    }
    return tag === "latest" ? "uses the :latest tag" : undefined;
}

/**
 * Rule 6d (advisory): even a version tag can be re-pushed; only a digest names the exact image. The program pins a
 * tag by default because a digest cannot be verified offline, so this warns rather than refuses.
 */
export function imageDigestViolations(podSpec: unknown): string[] {
    return containers(podSpec).flatMap(({ label, container }) => {
        const image = str(at(container, "image"));
        if (image === undefined || image.includes("@sha256:")) {
            return [];
        }
        return [
            `${label} image ${JSON.stringify(image)} has no digest, so a re-pushed tag changes what runs. ` +
                'Fix: pin the digest you verified, e.g. envoy.image: envoyproxy/envoy:v1.40.0@sha256:<digest> (docs/security.md, "Envoy and its pod").',
        ];
    });
}

/** Rule 6c: a moving tag makes what runs depend on the last push, and rollbacks unreproducible. */
export function imagePinViolations(podSpec: unknown): string[] {
    return containers(podSpec).flatMap(({ label, container }) => {
        const image = str(at(container, "image"));
        const problem = image === undefined ? undefined : imagePinProblem(image);
        if (problem === undefined) {
            return [];
        }
        return [
            `${label} image ${JSON.stringify(image)} ${problem}: pods started at different times can run different code and a rollback does not restore the old one. ` +
                "Fix: pin a version tag (e.g. envoyproxy/envoy:v1.40.0) or a digest (image@sha256:...).",
        ];
    });
}
