import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { ClusterStatus } from "../../tools/status/probe";
import { formatTable, mapBounded, StatusReport } from "../../tools/status/report";
import { fromStackOutputs, parseClusterArgument, UsageError } from "../../tools/status/targets";

/** The pure parts of `npm run status`; the hops themselves run against real servers in test/e2e/status.test.ts. */

const PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

describe("status targets", () => {
    it("reads clusters and credentials from the stack outputs", () => {
        const { targets, credentials } = fromStackOutputs({
            clusters: [{ name: "cl1", host: "cl1m.example.com", address: "lb.example.net:8443", service: "envoy-cl1.envoy", port: 10002 }],
            caCertificate: PEM,
            clientCertificate: PEM,
            clientPrivateKey: "-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----\n",
        });
        assert.deepEqual(targets, [{ name: "cl1", host: "cl1m.example.com", address: { host: "lb.example.net", port: 8443 } }]);
        assert.match(credentials.privateKey, /BEGIN PRIVATE KEY/);
    });

    it("refuses outputs of an older program, and an undecrypted secret, without printing it", () => {
        assert.throws(() => fromStackOutputs({ clusters: [], caCertificate: PEM }), /no output clientCertificate, clientPrivateKey; run `npm run up`/);
        assert.throws(
            () => fromStackOutputs({ clusters: [], caCertificate: PEM, clientCertificate: PEM, clientPrivateKey: "[secret]" }),
            (err: Error) => err instanceof UsageError && /clientPrivateKey is not PEM text/.test(err.message) && !err.message.includes("[secret]"),
        );
    });

    it("parses --cluster name=host[@address], port 443 by default", () => {
        assert.deepEqual(parseClusterArgument("cl1=cl1m.example.com"), {
            name: "cl1",
            host: "cl1m.example.com",
            address: { host: "cl1m.example.com", port: 443 },
        });
        assert.deepEqual(parseClusterArgument("cl1=cl1m.example.com@127.0.0.1:8443"), {
            name: "cl1",
            host: "cl1m.example.com",
            address: { host: "127.0.0.1", port: 8443 },
        });
        assert.throws(() => parseClusterArgument("cl1"), /write name=host or name=host@address/);
        assert.throws(() => parseClusterArgument("cl1=h@x:99999"), /not host or host:port/);
    });
});

describe("status report", () => {
    it("runs at most `limit` probes at once and keeps the input order", async () => {
        let running = 0;
        let peak = 0;
        const progress: number[] = [];
        const results = await mapBounded(
            [5, 1, 4, 2, 3, 0],
            2,
            async (n) => {
                running++;
                peak = Math.max(peak, running);
                for (let i = 0; i < n; i++) await Promise.resolve();
                running--;
                return n * 10;
            },
            (_r, done) => progress.push(done),
        );
        assert.equal(peak, 2);
        assert.deepEqual(results, [50, 10, 40, 20, 30, 0]);
        assert.deepEqual(progress, [1, 2, 3, 4, 5, 6]);
    });

    it("marks each hop and names the failing one", () => {
        const failing: ClusterStatus = {
            name: "cl2",
            host: "cl2m.example.com",
            address: "lb:443",
            ok: false,
            hops: [
                { hop: "DNS", ok: true, detail: "10.0.0.1", ms: 1 },
                { hop: "TCP", ok: true, detail: "", ms: 1 },
                { hop: "TLS", ok: false, detail: "server certificate expired 3 days ago", ms: 2 },
            ],
            failure: "TLS: server certificate expired 3 days ago",
        };
        const report: StatusReport = {
            ok: false,
            checkedAt: "2026-01-01T00:00:00.000Z",
            clientCertificate: { subject: "CN=client", notAfter: "2027-01-01T00:00:00.000Z", daysToExpiry: 365 },
            ca: { subject: "CN=ca", notAfter: "2025-12-30T00:00:00.000Z", daysToExpiry: -2 },
            clusters: [failing],
        };
        const text = formatTable(report);
        assert.match(text, /^client certificate: CN=client, expires in 365 days/m);
        assert.match(text, /^CA: CN=ca, EXPIRED 2 days ago/m);
        assert.match(text, /^cl2\s+lb:443\s+ok\s+ok\s+FAIL\s+-\s+-\s+-\s+-\s+TLS: server certificate expired 3 days ago$/m);
        assert.match(text, /1 of 1 clusters failing/);
    });
});
