import { defaults } from "../defaults";
import { ConfigProblem } from "../errors";
import { StackConfigInput } from "../schema";
import type { TlsModel } from "../tls/resolve";

export interface MonitoringModel {
    certificateExpiryDays: number;
    prometheusRule: { enabled: boolean; labels: Record<string, string> };
    serviceMonitor: { enabled: boolean; labels: Record<string, string>; interval: string };
    dashboard: { enabled: boolean; labels: Record<string, string> };
}

export function resolveMonitoring(input: StackConfigInput, tls: TlsModel, problems: ConfigProblem[]): MonitoringModel {
    const m = input.monitoring ?? {};
    const d = defaults.monitoring;
    const certificateExpiryDays = m.certificateExpiryDays ?? d.certificateExpiryDays;
    // An alert threshold as long as the certificates live would fire from the day they are issued.
    if (tls.mode === "generate" && certificateExpiryDays * 24 >= tls.validityHours) {
        problems.push({
            key: "monitoring.certificateExpiryDays",
            message: `(${certificateExpiryDays} days) must be shorter than the certificates' lifetime, tls.validityHours (${tls.validityHours} hours), or the alert fires from the start`,
        });
    }
    return {
        certificateExpiryDays,
        prometheusRule: { enabled: m.prometheusRule?.enabled ?? d.prometheusRule.enabled, labels: m.prometheusRule?.labels ?? {} },
        serviceMonitor: {
            enabled: m.serviceMonitor?.enabled ?? d.serviceMonitor.enabled,
            labels: m.serviceMonitor?.labels ?? {},
            interval: m.serviceMonitor?.interval ?? d.serviceMonitor.interval,
        },
        dashboard: { enabled: m.dashboard?.enabled ?? d.dashboard.enabled, labels: { ...m.dashboard?.labels, ...d.dashboardLabel } },
    };
}
