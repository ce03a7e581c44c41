import { INGRESS_ANNOTATION } from "../names";

/**
 * The ingress-nginx annotations that could undo the front door's mTLS or send its traffic somewhere other than the
 * sidecar, and why. The program refuses them in `clusters[i].ingress.annotations`; the policy pack refuses them on
 * gRPC Ingresses. Both read this one list, so it imports nothing beyond names.ts (the policy pack has its own
 * node_modules and loads this file by path).
 */

export const NGINX_PREFIX = "nginx.ingress.kubernetes.io/";

interface Refusal {
    /** The annotation names (after the prefix) this entry covers. */
    matches(setting: string): boolean;
    /** Whether a value does no harm (the default); absent: every value is refused. */
    harmless?: (value: string) => boolean;
    why: string;
    /** What to do instead, given the cluster's config key (`clusters[0]`); default: remove the annotation. */
    fix?: (clusterKey: string) => string;
}

/** ingress-nginx reads booleans with Go's strconv.ParseBool and falls back to the default (false) on anything else. */
const isNotTrue = (value: string) => !["1", "t", "T", "true", "TRUE", "True"].includes(value);

const SET_BY_PROGRAM = new Set<string>(Object.values(INGRESS_ANNOTATION));
const timeouts = new Set<string>([INGRESS_ANNOTATION.proxyReadTimeout, INGRESS_ANNOTATION.proxySendTimeout]);
const exactly =
    (...names: string[]) =>
    (setting: string) =>
        names.includes(setting);

/** First match wins: the program's own annotations come first, so they keep their more specific message. */
const REFUSALS: readonly Refusal[] = [
    {
        matches: (setting) => timeouts.has(NGINX_PREFIX + setting),
        why: "is set by the program (the gRPC stream timeouts)",
        fix: (clusterKey) => `remove it and set ${clusterKey}.ingress.streamTimeoutSeconds instead`,
    },
    {
        matches: (setting) => SET_BY_PROGRAM.has(NGINX_PREFIX + setting),
        why: "is set by the program (client-certificate verification pinned to Envoy's identity, gRPC to the sidecar); another value would undo the mTLS or the gRPC forwarding",
    },
    {
        // Its only effect is an `ssl-client-cert` header to the upstream. The sidecar reads no header, and a backend that
        // trusted one would be trusting whatever sent it, which only nginx's verification (ours, not optional) prevents.
        matches: exactly("auth-tls-pass-certificate-to-upstream"),
        harmless: isNotTrue,
        why: "forwards Envoy's client certificate to the sidecar in the ssl-client-cert header; the Thanos sidecar reads no such header, so it only exposes the certificate to whatever sits behind the Ingress",
        fix: () => 'remove it (or set "false", the default)',
    },
    {
        matches: (setting) => setting.startsWith("auth-tls-"),
        why: "changes client-certificate verification, which the program owns (auth-tls-secret, auth-tls-verify-client on, auth-tls-verify-depth, auth-tls-match-cn)",
    },
    {
        // server-, configuration-, stream-, auth-, modsecurity-snippet and any later one: raw nginx configuration.
        matches: (setting) => setting.endsWith("-snippet"),
        why: "inserts raw nginx configuration into the server or location, which can switch off ssl_verify_client, proxy to another upstream or answer without the sidecar",
    },
    {
        matches: exactly("ssl-passthrough"),
        harmless: isNotTrue,
        why: "makes nginx pass the TLS connection through unterminated, so it verifies no client certificate (and the plaintext gRPC sidecar cannot answer TLS)",
    },
    {
        matches: (setting) => setting === "canary" || setting.startsWith("canary-"),
        why: "makes this Ingress a canary of another Ingress for the same host; a canary inherits that Ingress' annotations, client verification included",
    },
    {
        matches: exactly("default-backend", "custom-http-errors"),
        why: "sends requests to another Service (the default backend: for those status codes, or when the sidecar has no ready endpoint)",
    },
    {
        matches: exactly("rewrite-target", "app-root"),
        why: "rewrites or redirects the request path, which for gRPC is the method (/thanos.Store/Series)",
    },
    {
        matches: exactly("permanent-redirect", "temporal-redirect"),
        why: "answers every request with a redirect to another URL instead of forwarding it to the sidecar",
    },
    {
        matches: (setting) => setting.startsWith("mirror-"),
        why: "copies every request, queries included, to another URL",
    },
    {
        matches: exactly("server-alias"),
        why: "makes this server answer for other host names too, so requests whose :authority is not the cluster's host reach the sidecar",
    },
];

/**
 * Why `name: value` may not be on a front door's Ingress, and the fix; undefined when it may. `clusterKey` names the
 * cluster in a fix that points to another key (`clusters[0]`).
 */
export function annotationRefusal(name: string, value: string, clusterKey: string): { why: string; fix: string } | undefined {
    if (!name.startsWith(NGINX_PREFIX)) return undefined;
    const setting = name.slice(NGINX_PREFIX.length);
    const refusal = REFUSALS.find((r) => r.matches(setting));
    if (refusal === undefined || refusal.harmless?.(value) === true) return undefined;
    return { why: refusal.why, fix: refusal.fix?.(clusterKey) ?? "remove it" };
}

/** Whether the program itself sets `name` on every Ingress (the policy pack judges those values by its other rule). */
export function isSetByProgram(name: string): boolean {
    return SET_BY_PROGRAM.has(name);
}
