import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import type { Model } from "../config/model";
import { observerNames } from "../names";
import { buildAlertRules } from "./alerts";
import { buildDashboard, DASHBOARD_FILE } from "./dashboard";
import { labels, serviceMonitorSpec } from "./manifests";

export interface ObserverMonitoringArgs {
    model: Pick<Model, "observer" | "monitoring">;
    /** Provider of the observer cluster. */
    provider: k8s.Provider;
    /** What must exist first (the gateway, which owns the namespace). */
    dependsOn: pulumi.Resource[];
}

const MONITORING_API = "monitoring.coreos.com/v1";

/**
 * The optional operating objects of the observer, each switched on under `monitoring.*`: a PrometheusRule with
 * the alerts, a ServiceMonitor for Envoy's metrics port (both prometheus-operator CRDs, which must be installed),
 * and a Grafana dashboard in a ConfigMap labelled for the kube-prometheus-stack Grafana sidecar.
 */
export class ObserverMonitoring extends pulumi.ComponentResource {
    constructor(name: string, args: ObserverMonitoringArgs, opts?: pulumi.ComponentResourceOptions) {
        super("envoy-thanos:observer:Monitoring", name, {}, opts);
        const { model, provider, dependsOn } = args;
        const namespace = model.observer.namespace;
        const monitoring = model.monitoring;
        const child: pulumi.CustomResourceOptions = { parent: this, provider, dependsOn };
        const metadata = (objectName: string, extraLabels: Record<string, string>) => ({
            name: objectName,
            namespace,
            labels: { ...extraLabels, ...labels("monitoring") },
        });

        if (monitoring.prometheusRule.enabled) {
            new k8s.apiextensions.CustomResource(
                `${name}-rules`,
                {
                    apiVersion: MONITORING_API,
                    kind: "PrometheusRule",
                    metadata: metadata(observerNames.prometheusRule, monitoring.prometheusRule.labels),
                    spec: buildAlertRules({ namespace, job: observerNames.metricsService, certificateExpiryDays: monitoring.certificateExpiryDays }),
                },
                child,
            );
        }
        if (monitoring.serviceMonitor.enabled) {
            new k8s.apiextensions.CustomResource(
                `${name}-service-monitor`,
                {
                    apiVersion: MONITORING_API,
                    kind: "ServiceMonitor",
                    metadata: metadata(observerNames.serviceMonitor, monitoring.serviceMonitor.labels),
                    spec: serviceMonitorSpec(namespace, monitoring.serviceMonitor.interval),
                },
                child,
            );
        }
        if (monitoring.dashboard.enabled) {
            new k8s.core.v1.ConfigMap(
                `${name}-dashboard`,
                {
                    metadata: metadata(observerNames.dashboardConfigMap, monitoring.dashboard.labels),
                    data: { [DASHBOARD_FILE]: JSON.stringify(buildDashboard({ namespace, certificateExpiryDays: monitoring.certificateExpiryDays }), null, 2) },
                },
                child,
            );
        }
        this.registerOutputs({});
    }
}
