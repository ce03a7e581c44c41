import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, it } from "node:test";
import * as YAML from "yaml";
import { ALERTS, buildAlertRules, TLS_VERIFY_FAILURE_COUNTERS } from "../../components/observer/alerts";
import { requireTool, tempDir } from "./support/processes";

/**
 * The PrometheusRule's rules, checked by Prometheus' own tool: `promtool check rules` parses them, and
 * `promtool test rules` replays series and proves that each alert fires and then resolves, and stays
 * silent for what it must not see (another namespace, a remote with an open connection).
 */

const promtool = requireTool("promtool", "apt-get install prometheus");
const skip = typeof promtool === "object" ? promtool.skip : false;

const NS = "envoy";
const JOB = "envoy-thanos-metrics";
const DAY = 86_400;

function promtoolRun(args: string[], cwd: string) {
    const result = spawnSync("promtool", args, { cwd, encoding: "utf8", timeout: 60_000 });
    return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

function remote(metric: string, cluster: string, extra: Record<string, string> = {}, namespace = NS): string {
    const labels = { namespace, envoy_cluster_name: `thanos_${cluster}`, ...extra };
    return `${metric}{${Object.entries(labels)
        .map(([k, v]) => `${k}="${v}"`)
        .join(",")}}`;
}

const RULES = buildAlertRules({ namespace: NS, job: JOB, certificateExpiryDays: 14 });

/** The rule's summary as written, and the description as Prometheus renders it for the replayed series. */
function annotations(alert: string, description: string) {
    const rule = RULES.groups[0].rules.find((r) => r.alert === alert);
    assert.ok(rule, `no rule ${alert}`);
    return { summary: rule.annotations.summary, description };
}

/** One promtool test group per alert: series, then the alerts expected at each evaluation time. */
function testGroups() {
    const critical = { severity: "critical" };
    const warning = { severity: "warning" };
    return [
        {
            name: ALERTS.certificateExpiring,
            interval: "1m",
            input_series: [
                // Expires 10 days after time 0; renewed (a year) at 10m.
                {
                    series: remote("envoy_cluster_ssl_certificate_expiration_unix_time_seconds", "cl1", { envoy_tls_certificate: "client_certificate" }),
                    values: `${10 * DAY}+0x10 ${365 * DAY}+0x10`,
                },
                // The CA lives long: never alerts.
                {
                    series: remote("envoy_cluster_ssl_certificate_expiration_unix_time_seconds", "cl1", { envoy_tls_certificate: "trusted_ca" }),
                    values: `${3650 * DAY}+0x20`,
                },
                // Another installation's Envoy, in another namespace: not ours.
                {
                    series: remote(
                        "envoy_cluster_ssl_certificate_expiration_unix_time_seconds",
                        "cl1",
                        { envoy_tls_certificate: "client_certificate" },
                        "other",
                    ),
                    values: `${DAY}+0x20`,
                },
            ],
            alert_rule_test: [
                {
                    eval_time: "5m",
                    alertname: ALERTS.certificateExpiring,
                    exp_alerts: [
                        {
                            exp_labels: { ...warning, namespace: NS, envoy_tls_certificate: "client_certificate" },
                            exp_annotations: annotations(
                                ALERTS.certificateExpiring,
                                "Envoy's client_certificate in namespace envoy expires in 9d 23h 55m 0s (threshold 14 days). " +
                                    "Renew it (`pulumi up` renews generated certificates); Envoy reloads the Secret without a restart.",
                            ),
                        },
                    ],
                },
                { eval_time: "15m", alertname: ALERTS.certificateExpiring, exp_alerts: [] },
            ],
        },
        {
            name: ALERTS.remoteUnreachable,
            interval: "1m",
            input_series: [
                // cl1: every connection fails for 10 minutes, none open; then it connects.
                { series: remote("envoy_cluster_upstream_cx_connect_fail", "cl1"), values: "0+1x10 10+0x30" },
                { series: remote("envoy_cluster_upstream_cx_active", "cl1"), values: "0+0x10 1+0x30" },
                // cl2: some connections fail, but one is open: reachable.
                { series: remote("envoy_cluster_upstream_cx_connect_fail", "cl2"), values: "0+1x40" },
                { series: remote("envoy_cluster_upstream_cx_active", "cl2"), values: "1+0x40" },
            ],
            alert_rule_test: [
                { eval_time: "3m", alertname: ALERTS.remoteUnreachable, exp_alerts: [] },
                {
                    eval_time: "9m",
                    alertname: ALERTS.remoteUnreachable,
                    exp_alerts: [
                        {
                            exp_labels: { ...critical, namespace: NS, envoy_cluster_name: "thanos_cl1" },
                            exp_annotations: annotations(
                                ALERTS.remoteUnreachable,
                                "Envoy cannot connect to thanos_cl1 (5 failed connections in 5 minutes, none open). Run `npm run status` to see which hop fails.",
                            ),
                        },
                    ],
                },
                { eval_time: "25m", alertname: ALERTS.remoteUnreachable, exp_alerts: [] },
            ],
        },
        {
            name: ALERTS.remoteErrors,
            interval: "1m",
            input_series: [
                // Half of cl1's requests end in 5xx for 20 minutes; cl2's never do.
                { series: remote("envoy_cluster_upstream_rq_total", "cl1"), values: "0+10x40" },
                { series: remote("envoy_cluster_upstream_rq_xx", "cl1", { envoy_response_code_class: "5" }), values: "0+5x20 100+0x20" },
                { series: remote("envoy_cluster_upstream_rq_xx", "cl1", { envoy_response_code_class: "2" }), values: "0+5x20 100+10x20" },
                { series: remote("envoy_cluster_upstream_rq_total", "cl2"), values: "0+10x40" },
                { series: remote("envoy_cluster_upstream_rq_xx", "cl2", { envoy_response_code_class: "2" }), values: "0+10x40" },
            ],
            alert_rule_test: [
                { eval_time: "5m", alertname: ALERTS.remoteErrors, exp_alerts: [] },
                {
                    eval_time: "18m",
                    alertname: ALERTS.remoteErrors,
                    exp_alerts: [
                        {
                            exp_labels: { ...warning, namespace: NS, envoy_cluster_name: "thanos_cl1" },
                            exp_annotations: annotations(ALERTS.remoteErrors, "50% of the requests to thanos_cl1 end in a 5xx answer."),
                        },
                    ],
                },
                { eval_time: "35m", alertname: ALERTS.remoteErrors, exp_alerts: [] },
            ],
        },
        {
            name: ALERTS.tlsVerifyFailures,
            interval: "1m",
            input_series: [
                // cl1's server certificate stops naming its host for 5 minutes; every other counter stays flat.
                ...["cl1", "cl2"].flatMap((cluster) =>
                    TLS_VERIFY_FAILURE_COUNTERS.map((counter) => ({
                        series: remote(counter, cluster),
                        values: cluster === "cl1" && counter === "envoy_cluster_ssl_fail_verify_san" ? "0+1x5 5+0x20" : "0+0x25",
                    })),
                ),
            ],
            alert_rule_test: [
                {
                    eval_time: "4m",
                    alertname: ALERTS.tlsVerifyFailures,
                    exp_alerts: [
                        {
                            exp_labels: { ...critical, namespace: NS, envoy_cluster_name: "thanos_cl1" },
                            exp_annotations: annotations(
                                ALERTS.tlsVerifyFailures,
                                "Envoy rejected the server certificate of thanos_cl1 4 times in 5 minutes " +
                                    "(expired, not signed by the CA, or not naming the host). `npm run status` shows the certificate.",
                            ),
                        },
                    ],
                },
                { eval_time: "15m", alertname: ALERTS.tlsVerifyFailures, exp_alerts: [] },
            ],
        },
        {
            name: ALERTS.notReady,
            interval: "1m",
            input_series: [
                // Pod a: initializing (state 3) from 6m to 16m. Pod b: not scraped from 6m to 16m. Pod c: draining
                // (state 1) from 6m on, as a stopping pod does for up to envoy.longestStream: no alert.
                { series: `envoy_server_state{namespace="${NS}",job="${JOB}",instance="a"}`, values: "0+0x5 3+0x10 0+0x10" },
                { series: `envoy_server_state{namespace="${NS}",job="${JOB}",instance="c"}`, values: "0+0x5 1+0x20" },
                { series: `up{namespace="${NS}",job="${JOB}",instance="c"}`, values: "1+0x25" },
                { series: `up{namespace="${NS}",job="${JOB}",instance="a"}`, values: "1+0x25" },
                { series: `envoy_server_state{namespace="${NS}",job="${JOB}",instance="b"}`, values: "0+0x5 _x10 0+0x10" },
                { series: `up{namespace="${NS}",job="${JOB}",instance="b"}`, values: "1+0x5 0+0x10 1+0x10" },
            ],
            alert_rule_test: [
                { eval_time: "3m", alertname: ALERTS.notReady, exp_alerts: [] },
                {
                    eval_time: "13m",
                    alertname: ALERTS.notReady,
                    exp_alerts: [
                        ...["a", "b"].map((instance) => ({
                            exp_labels: { ...critical, namespace: NS, job: JOB, instance },
                            exp_annotations: annotations(ALERTS.notReady, `${instance} in namespace envoy is not serving (not live, or not scraped).`),
                        })),
                    ],
                },
                { eval_time: "24m", alertname: ALERTS.notReady, exp_alerts: [] },
            ],
        },
    ];
}

describe("alert rules under promtool", { skip }, () => {
    const dir = tempDir("alerts");
    fs.writeFileSync(path.join(dir, "rules.yaml"), YAML.stringify(RULES));

    it("parse as Prometheus rules", () => {
        const run = promtoolRun(["check", "rules", "rules.yaml"], dir);
        assert.equal(run.status, 0, run.output);
        assert.match(run.output, new RegExp(`SUCCESS: ${Object.keys(ALERTS).length} rules found`));
    });

    it("fire and resolve on replayed series, one test group per alert", () => {
        const groups = testGroups();
        assert.deepEqual(groups.map((g) => g.name).sort(), Object.values(ALERTS).sort(), "every alert has its test");
        fs.writeFileSync(path.join(dir, "tests.yaml"), YAML.stringify({ rule_files: ["rules.yaml"], evaluation_interval: "1m", tests: groups }));
        const run = promtoolRun(["test", "rules", "tests.yaml"], dir);
        assert.equal(run.status, 0, run.output);
        assert.match(run.output, /SUCCESS/);
    });
});
