import * as YAML from "yaml";
import { at, isMissing, list, str } from "./values";

/**
 * Rules on an Envoy v3 bootstrap carried in a ConfigMap (data key `envoy.yaml`), and on the listeners and
 * clusters of the LDS/CDS files it reads from the same ConfigMap (`dynamic_resources` with a
 * `path_config_source` whose file name is another data key). Each takes the ConfigMap's props and returns
 * one message per problem; a ConfigMap without the key passes.
 */

export const ENVOY_CONFIG_KEY = "envoy.yaml";

/** A listener or cluster, and the data key of the file it came from (for the message). */
interface Located {
    resource: unknown;
    key: string;
}

/** The parsed bootstrap and where its listeners and clusters are. */
interface EnvoyConfig {
    doc: unknown;
    listeners: Located[];
    clusters: Located[];
}

function parse(text: string, key: string): { doc: unknown } | { problem: string } {
    try {
        return { doc: YAML.parse(text) };
    } catch (err) {
        const reason = (err instanceof Error ? err.message : String(err)).split("\n")[0];
        return { problem: `data.${key} is not valid YAML (${reason}), so it cannot be checked. Fix the YAML; Envoy would refuse it too.` };
    }
}

/** Parses the bootstrap and the LDS/CDS files it reads from this ConfigMap, and runs `check`; an unparseable file is itself a violation. */
function withBootstrap(configMap: unknown, check: (config: EnvoyConfig) => string[]): string[] {
    const text = str(at(configMap, "data", ENVOY_CONFIG_KEY));
    if (text === undefined) {
        return [];
    }
    const bootstrap = parse(text, ENVOY_CONFIG_KEY);
    if ("problem" in bootstrap) {
        return [bootstrap.problem];
    }
    const doc = bootstrap.doc;
    const problems: string[] = [];
    const collect = (kind: "listeners" | "clusters", source: "lds_config" | "cds_config"): Located[] => {
        const found = list(doc, "static_resources", kind).map((resource) => ({ resource, key: ENVOY_CONFIG_KEY }));
        const file = str(at(doc, "dynamic_resources", source, "path_config_source", "path")) ?? str(at(doc, "dynamic_resources", source, "path"));
        const key = file?.split("/").pop();
        const dynamicText = key === undefined ? undefined : str(at(configMap, "data", key));
        if (key !== undefined && dynamicText !== undefined) {
            const parsed = parse(dynamicText, key);
            if ("problem" in parsed) {
                problems.push(parsed.problem);
            } else {
                found.push(...list(parsed.doc, "resources").map((resource) => ({ resource, key })));
            }
        }
        return found;
    };
    const config = { doc, listeners: collect("listeners", "lds_config"), clusters: collect("clusters", "cds_config") };
    return [...problems, ...check(config)];
}

const name = (value: unknown) => JSON.stringify(str(at(value, "name")) ?? "(unnamed)");
const hasType = (typedConfig: unknown, suffix: string) => str(at(typedConfig, "@type"))?.endsWith(`.${suffix}`) === true;

/** Rule 1: an upstream TLS context must verify the server: a trusted CA and a SAN match. */
export function upstreamTlsViolations(configMap: unknown): string[] {
    return withBootstrap(configMap, ({ clusters }) =>
        clusters.flatMap(({ resource: cluster, key }) => {
            // A cluster's TLS lives in transport_socket, or per endpoint group in transport_socket_matches.
            const sockets = [at(cluster, "transport_socket"), ...list(cluster, "transport_socket_matches").map((m) => at(m, "transport_socket"))];
            return sockets
                .map((socket) => at(socket, "typed_config"))
                .filter((tls) => hasType(tls, "UpstreamTlsContext"))
                .flatMap((tls) => tlsContextProblems(tls).map((problem) => `Envoy cluster ${name(cluster)} in data.${key}: ${problem}`));
        }),
    );
}

function tlsContextProblems(tls: unknown): string[] {
    const common = at(tls, "common_tls_context");
    const plain = at(common, "validation_context");
    const combined = at(common, "combined_validation_context");
    const contexts = [plain, at(combined, "default_validation_context")];
    const problems: string[] = [];
    // An SDS validation context delivers the CA from a file or server this rule cannot read; it counts as a CA.
    const hasCa =
        contexts.some((c) => !isMissing(at(c, "trusted_ca"))) ||
        !isMissing(at(common, "validation_context_sds_secret_config")) ||
        !isMissing(at(combined, "validation_context_sds_secret_config"));
    if (!hasCa) {
        problems.push(
            "its UpstreamTlsContext trusts no CA, so Envoy accepts any server certificate (anyone in the path can impersonate the ingress). " +
                "Fix: set common_tls_context.validation_context.trusted_ca, or a combined_validation_context with validation_context_sds_secret_config that delivers the CA.",
        );
    }
    if (!contexts.some((c) => list(c, "match_typed_subject_alt_names").length > 0)) {
        problems.push(
            "its UpstreamTlsContext does not check the server certificate's subject alternative names, so any certificate from the CA is accepted for this host. " +
                "Fix: set match_typed_subject_alt_names (e.g. [{san_type: DNS, matcher: {exact: <host>}}]) in common_tls_context.validation_context " +
                "or combined_validation_context.default_validation_context.",
        );
    }
    if (contexts.some((c) => at(c, "trust_chain_verification") === "ACCEPT_UNTRUSTED")) {
        problems.push(
            "its validation context sets trust_chain_verification: ACCEPT_UNTRUSTED, which disables certificate verification. Fix: remove it (the default is VERIFY_TRUST_CHAIN).",
        );
    }
    return problems;
}

/** A zero protobuf duration (`0s`, `0.000s`): Envoy's "no timeout". */
const ZERO_DURATION = /^0+(\.0+)?s$/;

/** Rule 2: a route's timeout (15 s when unset) ends every stream that lasts longer, e.g. a Thanos Series call. */
export function routeTimeoutViolations(configMap: unknown): string[] {
    return withBootstrap(configMap, ({ doc, listeners, clusters }) => {
        const adminClusters = adminClusterNames(doc, clusters);
        const problems: string[] = [];
        for (const { resource: listener, key } of listeners) {
            const chains = [...list(listener, "filter_chains"), at(listener, "default_filter_chain")];
            const managers = chains.flatMap((chain) => list(chain, "filters")).map((f) => at(f, "typed_config"));
            for (const hcm of managers.filter((tc) => hasType(tc, "HttpConnectionManager"))) {
                for (const route of list(hcm, "route_config", "virtual_hosts").flatMap((vh) => list(vh, "routes"))) {
                    const action = at(route, "route");
                    // direct_response and redirect routes open no upstream stream; admin routes serve short requests.
                    if (action === undefined || targetsOnly(action, adminClusters)) {
                        continue;
                    }
                    const timeout = at(action, "timeout");
                    if (typeof timeout === "string" && ZERO_DURATION.test(timeout)) {
                        continue;
                    }
                    const where = `Envoy route ${JSON.stringify(at(route, "match") ?? {})} of listener ${name(listener)} in data.${key}`;
                    const what =
                        timeout === undefined
                            ? "has no timeout, so Envoy's default of 15s ends every stream that lasts longer (Thanos Series and long queries)"
                            : `has timeout ${JSON.stringify(timeout)}, which ends every stream that lasts longer (Thanos Series and long queries)`;
                    problems.push(`${where} ${what}. Fix: set route.timeout: 0s and bound silent streams with the connection manager's stream_idle_timeout.`);
                }
            }
        }
        return problems;
    });
}

/** Clusters whose every endpoint is Envoy's own admin address (the metrics listener's upstream). */
function adminClusterNames(doc: unknown, clusters: Located[]): Set<string> {
    const admin = at(doc, "admin", "address", "socket_address");
    const names = new Set<string>();
    for (const { resource: cluster } of clusters) {
        const endpoints = list(cluster, "load_assignment", "endpoints")
            .flatMap((e) => list(e, "lb_endpoints"))
            .map((lb) => at(lb, "endpoint", "address", "socket_address"));
        const isAdmin = (sa: unknown) => at(sa, "address") === at(admin, "address") && at(sa, "port_value") === at(admin, "port_value");
        const clusterName = str(at(cluster, "name"));
        if (admin !== undefined && clusterName !== undefined && endpoints.length > 0 && endpoints.every(isAdmin)) {
            names.add(clusterName);
        }
    }
    return names;
}

function targetsOnly(action: unknown, clusterNames: Set<string>): boolean {
    const single = at(action, "cluster");
    const targets = single !== undefined ? [single] : list(action, "weighted_clusters", "clusters").map((c) => at(c, "name"));
    return targets.length > 0 && targets.every((t) => typeof t === "string" && clusterNames.has(t));
}

const LOOPBACK = /^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|::1|localhost)$/;

/** Rule 3: the admin interface can drain, reconfigure and stop Envoy; only the pod itself may reach it. */
export function adminAddressViolations(configMap: unknown): string[] {
    return withBootstrap(configMap, ({ doc }) => {
        const address = at(doc, "admin", "address", "socket_address", "address");
        if (typeof address !== "string" || LOOPBACK.test(address)) {
            return [];
        }
        return [
            `Envoy's admin interface in data.${ENVOY_CONFIG_KEY} listens on ${JSON.stringify(address)}, so anyone who reaches the pod can drain, reconfigure or stop Envoy. ` +
                "Fix: set admin.address.socket_address.address to 127.0.0.1 and expose only /stats/prometheus and /ready through a separate listener.",
        ];
    });
}
