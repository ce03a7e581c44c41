import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, it } from "node:test";
import { buildAlertRules } from "../../components/observer/alerts";
import { buildDashboard, DASHBOARD_FILE, panelDefinitions } from "../../components/observer/dashboard";
import { defaults } from "../../components/config/defaults";
import { drawLayout } from "../../tools/dashboard-layout";
import { clustersConfig, named, plain, runProgram } from "./harness";

/** The observer's optional monitoring objects, as the program registers them under Pulumi mocks. */

const T = {
    component: "envoy-thanos:observer:Monitoring",
    prometheusRule: "kubernetes:monitoring.coreos.com/v1:PrometheusRule",
    serviceMonitor: "kubernetes:monitoring.coreos.com/v1:ServiceMonitor",
    service: "kubernetes:core/v1:Service",
    configMap: "kubernetes:core/v1:ConfigMap",
};

describe("monitoring objects under Pulumi mocks", () => {
    it("registers none unless asked", async () => {
        const result = await runProgram(clustersConfig(2));
        assert.equal(result.error, undefined, result.error?.message);
        assert.deepEqual(
            result.resources.filter((r) => r.type.includes("monitoring") || r.type === T.component),
            [],
        );
    });

    it("registers the PrometheusRule with the alert rules, and a ServiceMonitor that selects the metrics Service", async () => {
        const result = await runProgram(
            clustersConfig(2, {
                observer: { namespace: "edge" },
                monitoring: { certificateExpiryDays: 7, prometheusRule: { enabled: true, labels: { release: "prom" } }, serviceMonitor: { enabled: true } },
            }),
        );
        assert.equal(result.error, undefined, result.error?.message);
        const component = named(result, T.component, "monitoring");
        assert.equal(component.custom, false);

        const rule = named(result, T.prometheusRule, "monitoring-rules");
        assert.equal(rule.provider, "observer");
        const ruleInputs = plain(rule.inputs);
        assert.equal(ruleInputs.metadata.name, "envoy-thanos");
        assert.equal(ruleInputs.metadata.namespace, "edge");
        assert.equal(ruleInputs.metadata.labels.release, "prom", "the label a Prometheus' ruleSelector matches");
        assert.deepEqual(ruleInputs.spec, buildAlertRules({ namespace: "edge", job: "envoy-thanos-metrics", certificateExpiryDays: 7 }));

        const monitor = plain(named(result, T.serviceMonitor, "monitoring-service-monitor").inputs);
        const metricsService = plain(named(result, T.service, "observer-metrics").inputs);
        assert.equal(metricsService.metadata.name, "envoy-thanos-metrics", "the rules' job label is this Service's name");
        for (const [key, value] of Object.entries(monitor.spec.selector.matchLabels)) {
            assert.equal(metricsService.metadata.labels[key], value, `the metrics Service lacks the selected label ${key}`);
        }
        assert.deepEqual(monitor.spec.namespaceSelector, { matchNames: ["edge"] });
        assert.deepEqual(monitor.spec.endpoints, [{ port: metricsService.spec.ports[0].name, path: "/stats/prometheus", interval: "30s" }]);
    });

    it("registers only what is switched on", async () => {
        const result = await runProgram(clustersConfig(1, { monitoring: { serviceMonitor: { enabled: true } } }));
        assert.equal(result.error, undefined, result.error?.message);
        assert.equal(result.resources.filter((r) => r.type === T.prometheusRule).length, 0);
        assert.equal(result.resources.filter((r) => r.type === T.serviceMonitor).length, 1);
    });

    it("registers the dashboard ConfigMap for the Grafana sidecar, the panels' queries as defined", async () => {
        const result = await runProgram(
            clustersConfig(1, { monitoring: { certificateExpiryDays: 10, dashboard: { enabled: true, labels: { team: "obs" } } } }),
        );
        assert.equal(result.error, undefined, result.error?.message);
        const configMap = plain(named(result, T.configMap, "monitoring-dashboard").inputs);
        assert.equal(configMap.metadata.name, "envoy-thanos-dashboard");
        assert.equal(configMap.metadata.namespace, "envoy");
        assert.equal(configMap.metadata.labels.grafana_dashboard, "1", "the kube-prometheus-stack sidecar's label");
        assert.equal(configMap.metadata.labels.team, "obs");
        assert.deepEqual(Object.keys(configMap.data), [DASHBOARD_FILE]);
        const dashboard = JSON.parse(configMap.data[DASHBOARD_FILE]);
        assert.deepEqual(dashboard, JSON.parse(JSON.stringify(buildDashboard({ namespace: "envoy", certificateExpiryDays: 10 }))));
        const definitions = panelDefinitions({ namespace: "envoy", certificateExpiryDays: 10 });
        assert.deepEqual(
            dashboard.panels.map((p: any) => [p.title, p.gridPos, p.targets.map((t: any) => t.expr)]),
            definitions.map((d) => [d.title, d.gridPos, d.queries.map((q) => q.expr)]),
        );
        assert.deepEqual(
            dashboard.panels[0].fieldConfig.defaults.thresholds.steps.map((s: any) => s.value),
            [null, 10],
            "the certificate panel turns green at the alert's threshold",
        );
    });
});

describe("dashboard layout", () => {
    it("places every panel inside Grafana's 24 columns, none overlapping", () => {
        const panels = panelDefinitions({ namespace: "envoy", certificateExpiryDays: 14 });
        const cells = new Map<string, string>();
        for (const { title, gridPos: g } of panels) {
            assert.ok(g.x >= 0 && g.w > 0 && g.x + g.w <= 24, `${title} leaves the grid`);
            for (let x = g.x; x < g.x + g.w; x++) {
                for (let y = g.y; y < g.y + g.h; y++) {
                    const owner = cells.get(`${x},${y}`);
                    assert.equal(owner, undefined, `${title} overlaps ${owner}`);
                    cells.set(`${x},${y}`, title);
                }
            }
        }
    });

    it("shows what the issue asks for, per remote", () => {
        const panels = panelDefinitions({ namespace: "envoy", certificateExpiryDays: 14 });
        assert.deepEqual(
            panels.map((p) => p.title),
            ["Days to certificate expiry", "Request rate", "Errors (share of 5xx answers)", "Latency p50 / p99", "Active streams", "TLS failures"],
        );
        for (const panel of panels.filter((p) => p.kind === "timeseries")) {
            for (const q of panel.queries) {
                assert.match(q.expr, /envoy_cluster_name=~"\$remote"/, `${panel.title} follows the remote selector`);
                assert.match(q.legend, /\{\{envoy_cluster_name\}\}/, `${panel.title} names the remote in its legend`);
            }
        }
    });

    it("is drawn in docs/monitoring.md from these definitions", () => {
        const page = fs.readFileSync(path.resolve(__dirname, "../../docs/monitoring.md"), "utf8");
        const drawing = drawLayout(panelDefinitions({ namespace: "envoy", certificateExpiryDays: defaults.monitoring.certificateExpiryDays }));
        assert.ok(page.includes(drawing), "docs/monitoring.md's dashboard drawing is stale: paste the output of node --import tsx tools/dashboard-layout.ts");
    });
});
