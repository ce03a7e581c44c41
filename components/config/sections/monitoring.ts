import { defaults, expiryAlertDays } from "../defaults";
import { ConfigProblem } from "../errors";
import { StackConfigInput } from "../schema";
import type { TlsModel } from "../tls/resolve";

export interface MonitoringModel {
    /** Whole days when set; by default in generate mode, it follows the certificates' lifetime (expiryAlertDays). */
    certificateExpiryDays: number;
    prometheusRule: { enabled: boolean; labels: Record<string, string> };
    serviceMonitor: { enabled: boolean; labels: Record<string, string>; interval: string };
    dashboard: { enabled: boolean; labels: Record<string, string> };
}

export function resolveMonitoring(input: StackConfigInput, tls: TlsModel, problems: ConfigProblem[]): MonitoringModel {
    const m = input.monitoring ?? {};
    const d = defaults.monitoring;
    // Generated certificates have a known lifetime, and the default threshold follows it; supplied ones keep the fixed default.
    const certificateExpiryDays = m.certificateExpiryDays ?? (tls.mode === "generate" ? expiryAlertDays(tls.validityHours) : d.certificateExpiryDays);
    // An alert threshold as long as the certificates live would fire from the day they are issued.
    if (tls.mode === "generate" && certificateExpiryDays * 24 >= tls.validityHours) {
        problems.push({
            key: "monitoring.certificateExpiryDays",
            message:
                `(${certificateExpiryDays} days) must be shorter than the certificates' lifetime, tls.validityHours (${tls.validityHours} hours), ` +
                "or the alert fires from the start; lower it, raise tls.validityHours, or remove it to take the default that follows the lifetime",
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
