import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { buildAlertRules } from "../../components/observer/alerts";
import { clustersConfig, named, plain, runProgram } from "./harness";

/** The observer's optional monitoring objects, as the program registers them under Pulumi mocks. */

const T = {
    component: "envoy-thanos:observer:Monitoring",
    prometheusRule: "kubernetes:monitoring.coreos.com/v1:PrometheusRule",
    serviceMonitor: "kubernetes:monitoring.coreos.com/v1:ServiceMonitor",
    service: "kubernetes:core/v1:Service",
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
        const metricsService = plain(named(result, T.service, "metrics").inputs);
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
});
