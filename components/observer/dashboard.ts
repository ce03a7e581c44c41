import * as common from "@grafana/grafana-foundation-sdk/common";
import {
    DashboardBuilder,
    DatasourceVariableBuilder,
    QueryVariableBuilder,
    ThresholdsConfigBuilder,
    ThresholdsMode,
} from "@grafana/grafana-foundation-sdk/dashboard";
import { DataqueryBuilder } from "@grafana/grafana-foundation-sdk/prometheus";
import { PanelBuilder as StatPanelBuilder } from "@grafana/grafana-foundation-sdk/stat";
import { PanelBuilder as TimeseriesPanelBuilder } from "@grafana/grafana-foundation-sdk/timeseries";
import { REMOTE_CLUSTER_PATTERN, remoteClusters, selector, TLS_VERIFY_FAILURE_COUNTERS } from "./alerts";

/**
 * The Grafana dashboard of the observer's Envoy, built with Grafana's foundation SDK. The panels are plain data
 * first (title, place, queries), so that tests can check every query against a real Prometheus and docs/monitoring.md
 * can draw the layout from the same definitions; the SDK turns them into the dashboard model Grafana loads.
 */

export interface DashboardInput {
    /** Namespace of the Envoy pods. */
    namespace: string;
    /** Where the certificate panel turns red, as in the expiry alert. */
    certificateExpiryDays: number;
}

export interface PanelQuery {
    expr: string;
    legend: string;
}

export interface PanelDefinition {
    title: string;
    kind: "timeseries" | "stat";
    unit: string;
    /** Grafana's grid: 24 columns wide, rows of 30 px. */
    gridPos: { x: number; y: number; w: number; h: number };
    queries: PanelQuery[];
}

/** Grafana's template variables in the queries: the data source, and the remotes to show (all by default). */
export const VARIABLES = { datasource: "datasource", remote: "remote" } as const;
/** Substitutes of Grafana's built-ins, for checking a query outside Grafana. */
export const RATE_INTERVAL = "$__rate_interval";

export const DASHBOARD_UID = "envoy-thanos";
/** The ConfigMap key; the Grafana sidecar writes each key as a file and loads `*.json`. */
export const DASHBOARD_FILE = "envoy-thanos.json";

function remoteSelector(namespace: string, extra: Record<string, string> = {}): string {
    return selector({ ...remoteClusters(namespace), envoy_cluster_name: { regex: `$${VARIABLES.remote}` }, ...extra });
}

const BY_REMOTE = "sum by (envoy_cluster_name)";

export function panelDefinitions(input: DashboardInput): PanelDefinition[] {
    const remote = remoteSelector(input.namespace);
    const rate = (metric: string, matchers = remote) => `rate(${metric}${matchers}[${RATE_INTERVAL}])`;
    const quantile = (q: number) => `histogram_quantile(${q}, sum by (envoy_cluster_name, le) (${rate("envoy_cluster_upstream_rq_time_bucket")}))`;
    return [
        {
            title: "Days to certificate expiry",
            kind: "stat",
            unit: "d",
            gridPos: { x: 0, y: 0, w: 6, h: 8 },
            queries: [
                {
                    expr: `min by (envoy_tls_certificate) (envoy_cluster_ssl_certificate_expiration_unix_time_seconds${selector(remoteClusters(input.namespace))} - time()) / 86400`,
                    legend: "{{envoy_tls_certificate}}",
                },
            ],
        },
        {
            title: "Request rate",
            kind: "timeseries",
            unit: "reqps",
            gridPos: { x: 6, y: 0, w: 9, h: 8 },
            queries: [{ expr: `${BY_REMOTE} (${rate("envoy_cluster_upstream_rq_total")})`, legend: "{{envoy_cluster_name}}" }],
        },
        {
            title: "Errors (share of 5xx answers)",
            kind: "timeseries",
            unit: "percentunit",
            gridPos: { x: 15, y: 0, w: 9, h: 8 },
            queries: [
                {
                    // Envoy creates the 5xx series at the first 5xx answer; until then the share is 0, not "no data".
                    expr:
                        `(${BY_REMOTE} (${rate("envoy_cluster_upstream_rq_xx", remoteSelector(input.namespace, { envoy_response_code_class: "5" }))}) ` +
                        `or ${BY_REMOTE} (${rate("envoy_cluster_upstream_rq_total")}) * 0) ` +
                        `/ ${BY_REMOTE} (${rate("envoy_cluster_upstream_rq_total")})`,
                    legend: "{{envoy_cluster_name}}",
                },
            ],
        },
        {
            title: "Latency p50 / p99",
            kind: "timeseries",
            // Envoy's upstream_rq_time histogram counts milliseconds.
            unit: "ms",
            gridPos: { x: 0, y: 8, w: 12, h: 8 },
            queries: [
                { expr: quantile(0.5), legend: "{{envoy_cluster_name}} p50" },
                { expr: quantile(0.99), legend: "{{envoy_cluster_name}} p99" },
            ],
        },
        {
            title: "Active streams",
            kind: "timeseries",
            unit: "short",
            gridPos: { x: 12, y: 8, w: 12, h: 8 },
            queries: [{ expr: `${BY_REMOTE} (envoy_cluster_upstream_rq_active${remote})`, legend: "{{envoy_cluster_name}}" }],
        },
        {
            title: "TLS failures",
            kind: "timeseries",
            unit: "short",
            gridPos: { x: 0, y: 16, w: 24, h: 8 },
            queries: [...TLS_VERIFY_FAILURE_COUNTERS, "envoy_cluster_ssl_connection_error"].map((counter) => ({
                expr: `${BY_REMOTE} (increase(${counter}${remote}[${RATE_INTERVAL}]))`,
                legend: `{{envoy_cluster_name}} ${counter.replace("envoy_cluster_ssl_", "")}`,
            })),
        },
    ];
}

export function buildDashboard(input: DashboardInput): object {
    const datasource = { type: "prometheus", uid: `\${${VARIABLES.datasource}}` };
    const builder = new DashboardBuilder("envoy-thanos: remote Thanos sidecars")
        .uid(DASHBOARD_UID)
        .tags(["envoy-thanos", "envoy", "thanos"])
        .refresh("30s")
        .time({ from: "now-1h", to: "now" })
        .tooltip(0)
        .withVariable(new DatasourceVariableBuilder(VARIABLES.datasource).label("Data source").type("prometheus"))
        .withVariable(
            new QueryVariableBuilder(VARIABLES.remote)
                .label("Remote")
                .datasource(datasource)
                .query(`label_values(envoy_cluster_upstream_rq_total${selector(remoteClusters(input.namespace))}, envoy_cluster_name)`)
                .multi(true)
                .includeAll(true)
                // "All" means every remote, never Envoy's own admin cluster.
                .allValue(REMOTE_CLUSTER_PATTERN)
                .refresh(2),
        );
    for (const panel of panelDefinitions(input)) {
        const targets = panel.queries.map((q, i) =>
            new DataqueryBuilder()
                .expr(q.expr)
                .legendFormat(q.legend)
                .refId(String.fromCharCode(65 + i)),
        );
        if (panel.kind === "stat") {
            builder.withPanel(
                new StatPanelBuilder()
                    .title(panel.title)
                    .datasource(datasource)
                    .unit(panel.unit)
                    .gridPos(panel.gridPos)
                    .targets(targets)
                    .colorMode(common.BigValueColorMode.Background)
                    .reduceOptions(new common.ReduceDataOptionsBuilder().calcs(["lastNotNull"]))
                    .thresholds(
                        new ThresholdsConfigBuilder().mode(ThresholdsMode.Absolute).steps([
                            { value: null, color: "red" },
                            { value: input.certificateExpiryDays, color: "green" },
                        ]),
                    ),
            );
        } else {
            builder.withPanel(
                new TimeseriesPanelBuilder()
                    .title(panel.title)
                    .datasource(datasource)
                    .unit(panel.unit)
                    .gridPos(panel.gridPos)
                    .targets(targets)
                    .legend(
                        new common.VizLegendOptionsBuilder()
                            .showLegend(true)
                            .displayMode(common.LegendDisplayMode.List)
                            .placement(common.LegendPlacement.Bottom),
                    ),
            );
        }
    }
    return builder.build();
}
