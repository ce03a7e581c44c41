import { envoyName } from "../names";

/**
 * The alerting rules of the observer's Envoy, as plain data: the `spec` of a PrometheusRule, which is also a
 * Prometheus rule file (`promtool check rules` reads it as is). Every expression uses metrics Envoy 1.40 exports
 * on `/stats/prometheus`, scoped to Envoy's namespace and to the upstream clusters the program names.
 */

export interface AlertRulesInput {
    /** Namespace of the Envoy pods: the `namespace` label Prometheus Operator puts on their series. */
    namespace: string;
    /** `job` label of Envoy's metrics target: the metrics Service's name under a ServiceMonitor. */
    job: string;
    /** Days before expiry; a fraction of a day when the default follows a short certificate lifetime. */
    certificateExpiryDays: number;
}

export const ALERTS = {
    certificateExpiring: "EnvoyThanosCertificateExpiring",
    remoteUnreachable: "EnvoyThanosRemoteUnreachable",
    remoteErrors: "EnvoyThanosRemoteErrors",
    tlsVerifyFailures: "EnvoyThanosTLSVerifyFailures",
    notReady: "EnvoyThanosNotReady",
} as const;

/** Share of requests to one remote that may fail before `remoteErrors` fires. */
export const ERROR_RATIO_THRESHOLD = 0.05;

/** A label matcher: a string matches exactly, `{ regex }` as a fully anchored regular expression. */
export type Matchers = Record<string, string | { regex: string }>;

/** `{name="value",name=~"regex"}`; values become PromQL string literals (JSON's escaping is PromQL's). */
export function selector(matchers: Matchers): string {
    const parts = Object.entries(matchers).map(([name, value]) =>
        typeof value === "string" ? `${name}=${JSON.stringify(value)}` : `${name}=~${JSON.stringify(value.regex)}`,
    );
    return `{${parts.join(",")}}`;
}

/** Envoy's upstream clusters of the observed clusters (`thanos_<name>`), not its admin cluster. */
export const REMOTE_CLUSTER_PATTERN = `${envoyName("")}.+`;

export function remoteClusters(namespace: string): Matchers {
    return { namespace, envoy_cluster_name: { regex: REMOTE_CLUSTER_PATTERN } };
}

const BY_REMOTE = "by (namespace, envoy_cluster_name)";

/** Envoy's counters of server certificates it refused (`cluster.<name>.ssl.fail_verify_*`). */
export const TLS_VERIFY_FAILURE_COUNTERS = [
    "envoy_cluster_ssl_fail_verify_error",
    "envoy_cluster_ssl_fail_verify_san",
    "envoy_cluster_ssl_fail_verify_no_cert",
    "envoy_cluster_ssl_fail_verify_cert_hash",
] as const;

/** `1209600` → `14 days`, `144000` → `40 hours`, `600` → `10 minutes`: the largest unit that divides it. */
function durationWords(seconds: number): string {
    const [amount, unit] =
        seconds % 86_400 === 0 ? [seconds / 86_400, "day"] : seconds % 3600 === 0 ? [seconds / 3600, "hour"] : [Math.round(seconds / 60), "minute"];
    return `${amount} ${unit}${amount === 1 ? "" : "s"}`;
}

export function buildAlertRules(input: AlertRulesInput) {
    const remote = selector(remoteClusters(input.namespace));
    const pod = selector({ namespace: input.namespace, job: input.job });
    // A threshold that follows a short lifetime is a fraction of a day (whole minutes); Prometheus compares seconds.
    const seconds = Math.round(input.certificateExpiryDays * 86_400);
    return {
        groups: [
            {
                name: "envoy-thanos",
                rules: [
                    {
                        alert: ALERTS.certificateExpiring,
                        // One value per certificate (`client_certificate`, `trusted_ca`), whichever cluster reports it.
                        // No `for`: the expiry time is a gauge that does not flap, and waiting only shortens the notice.
                        expr: `min by (namespace, envoy_tls_certificate) (envoy_cluster_ssl_certificate_expiration_unix_time_seconds${remote}) - time() < ${seconds}`,
                        labels: { severity: "warning" },
                        annotations: {
                            summary: "A certificate Envoy uses toward the remote Thanos sidecars expires soon",
                            description:
                                "Envoy's {{ $labels.envoy_tls_certificate }} in namespace {{ $labels.namespace }} expires in {{ $value | humanizeDuration }} " +
                                `(threshold ${durationWords(seconds)}). Renew it (\`pulumi up\` renews generated certificates); ` +
                                "Envoy reloads the Secret without a restart.",
                        },
                    },
                    {
                        alert: ALERTS.remoteUnreachable,
                        // Connections fail and none is open: the remote's front door is down or unreachable.
                        expr:
                            `(sum ${BY_REMOTE} (increase(envoy_cluster_upstream_cx_connect_fail${remote}[5m])) > 0) ` +
                            `unless on (namespace, envoy_cluster_name) (sum ${BY_REMOTE} (envoy_cluster_upstream_cx_active${remote}) > 0)`,
                        for: "5m",
                        labels: { severity: "critical" },
                        annotations: {
                            summary: "Envoy has no working connection to a remote Thanos sidecar",
                            description:
                                "Envoy cannot connect to {{ $labels.envoy_cluster_name }} ({{ $value }} failed connections in 5 minutes, none open). " +
                                "Run `npm run status` to see which hop fails.",
                        },
                    },
                    {
                        alert: ALERTS.remoteErrors,
                        expr:
                            `sum ${BY_REMOTE} (rate(envoy_cluster_upstream_rq_xx${selector({ ...remoteClusters(input.namespace), envoy_response_code_class: "5" })}[5m])) ` +
                            `/ sum ${BY_REMOTE} (rate(envoy_cluster_upstream_rq_total${remote}[5m])) > ${ERROR_RATIO_THRESHOLD}`,
                        for: "10m",
                        labels: { severity: "warning" },
                        annotations: {
                            summary: "Requests to a remote Thanos sidecar fail",
                            description: "{{ $value | humanizePercentage }} of the requests to {{ $labels.envoy_cluster_name }} end in a 5xx answer.",
                        },
                    },
                    {
                        alert: ALERTS.tlsVerifyFailures,
                        // One sum per counter, added: a name regex inside increase() would drop the names and
                        // leave series that differ only by them. Envoy exports all four for every TLS cluster.
                        expr: `(${TLS_VERIFY_FAILURE_COUNTERS.map((counter) => `sum ${BY_REMOTE} (increase(${counter}${remote}[5m]))`).join(" + ")}) > 0`,
                        for: "1m",
                        labels: { severity: "critical" },
                        annotations: {
                            summary: "Envoy refuses a remote's server certificate",
                            description:
                                "Envoy rejected the server certificate of {{ $labels.envoy_cluster_name }} {{ $value }} times in 5 minutes " +
                                "(expired, not signed by the CA, or not naming the host). `npm run status` shows the certificate.",
                        },
                    },
                    {
                        alert: ALERTS.notReady,
                        // envoy_server_state: 0 live, 1 draining, 2 pre-initializing, 3 initializing. Draining is left
                        // out: only a stopping pod drains (its preStop hook), for up to envoy.longestStream, which may
                        // exceed the `for` below; the grace period bounds it.
                        expr: `envoy_server_state${pod} > 1 or up${pod} == 0`,
                        for: "5m",
                        labels: { severity: "critical" },
                        annotations: {
                            summary: "An Envoy pod of envoy-thanos is not ready",
                            description: "{{ $labels.instance }} in namespace {{ $labels.namespace }} is not serving (not live, or not scraped).",
                        },
                    },
                ],
            },
        ],
    };
}
