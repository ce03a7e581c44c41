import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { isDeepStrictEqual } from "node:util";
import { observerNames } from "../../components/names";
import { clusterDnsCorefile, CoreDns, ServiceProxy } from "./support/cluster-network";
import { writeSecretVolume } from "./support/envoy";
import { createObject, fakeIngressStatus, KubeClusters } from "./support/kube";
import { NetworkNamespace } from "./support/netns";
import { freePort, ProcessGroup, tempDir, waitFor } from "./support/processes";
import { PulumiProject } from "./support/pulumi";
import { ObservedMonitoring, Querier, startObservedMonitoring, stopObservedMonitoring } from "./support/thanos";
import { querierPathRequirements } from "./support/querier-path";
import { Topology } from "./support/topology";

/**
 * How the querier finds Envoy, end to end: `pulumi up` creates the program's Services in a real API server,
 * real CoreDNS (its kubernetes plugin, as a cluster's DNS runs it) serves their SRV and A records, and a real
 * Thanos querier, given exactly the stack's `querierFlags` (`dnssrv+_envoy-<c>._tcp.envoy-<c>.<ns>.svc.<domain>`)
 * or its `endpointSdFile`, resolves them and reaches the real Envoy, nginx front doors and sidecars.
 *
 * Design choices:
 * - Thanos' DNS resolvers (`miekgdns`, the default, and `golang`; hidden flag `--store.sd-dns-resolver`) both
 *   read the fixed path /etc/resolv.conf: neither can be pointed at a server. So the querier runs in a network
 *   namespace of the test's own, where `ip netns exec` bind-mounts /etc/netns/<name>/resolv.conf
 *   (`nameserver 127.0.0.1`) over /etc/resolv.conf, and CoreDNS listens on port 53 there, as a pod's
 *   resolv.conf names the cluster's DNS. The querier's DNS refresh interval is `--store.sd-dns-interval`.
 * - No kube-proxy runs here, so ServiceProxy does its job inside the namespace: each Service's ClusterIP is
 *   a local address there, and ClusterIP:port is forwarded to the Service's targetPort on the machine's
 *   loopback, where the real Envoy listens (the stack's ports are the Envoy listeners' ports).
 * - One control plane is the observer and, every context pointing at it, the observed clusters' Kubernetes
 *   side (their Ingress and Secrets, in `monitoring`); their front doors are nginx rendered from the
 *   program's Ingress, as in thanos.test.ts. CoreDNS reaches the API server at the same 127.0.0.1 address
 *   inside the namespace as outside, so one kubeconfig serves pulumi and CoreDNS.
 * - The querier's endpoint file is written as kubelet writes a ConfigMap volume (`..data` swap) after every
 *   `up`: an appended cluster reaches the querier through it without a restart, while `--endpoint` flags
 *   change only with a restart.
 */

const { coredns, skip } = querierPathRequirements();

const STACK = "dns";
const PART_OF = "app.kubernetes.io/part-of=envoy-thanos";
const NAMES = ["cl1", "cl2", "cl3"];
/** The querier's DNS refresh interval (Thanos' default is 30 s). */
const DNS_INTERVAL = ["--store.sd-dns-interval=1s"];

describe("the querier finds Envoy through the cluster's DNS", { skip }, () => {
    const group = new ProcessGroup();
    const dir = skip ? "" : tempDir("cluster-dns");
    const kubeconfig = path.join(dir, "kubeconfig");
    const endpointsVolume = path.join(dir, "endpoints");
    const clusters = skip ? undefined! : new KubeClusters(["observer"]);
    const project = skip ? undefined! : new PulumiProject({ KUBECONFIG: kubeconfig });
    let observed: Record<string, ObservedMonitoring>;
    let topology: Topology;
    let ns: NetworkNamespace;
    let dns: CoreDns;
    let services: ServiceProxy;
    let ingressStatus: { stop: () => Promise<void> };
    let flagsQuerier: Querier;
    let sdQuerier: Querier;
    let querierFlags: string[];

    const stackConfig = (names: string[], custom: { namespace?: string; clusterDomain?: string } = {}) => ({
        observer: { context: "observer", ...(custom.namespace ? { namespace: custom.namespace } : {}) },
        ...(custom.clusterDomain ? { clusterDomain: custom.clusterDomain } : {}),
        envoy: { replicas: 1 },
        sidecar: { namespace: "monitoring" },
        clusters: names.map((name) => ({ name, host: `${name}m.example.com`, port: topology.side(name).listenerPort, context: "observer" })),
        tls: topology.providedTls(names),
    });

    /** `pulumi up`, then what the cluster does after it: kube-proxy follows the Services, kubelet updates the ConfigMap volume. */
    async function up(config: object): Promise<{ querierFlags: string[]; endpointSdFile: string }> {
        project.writeStack(STACK, config as Record<string, unknown>);
        await project.ok(["up", "-s", STACK, "--yes", "--skip-preview"]);
        await services.sync();
        const outputs = JSON.parse((await project.ok(["stack", "output", "-s", STACK, "--json"])).stdout);
        writeSecretVolume(endpointsVolume, { "endpoints.yaml": outputs.endpointSdFile });
        return outputs;
    }

    /** `{ClusterIP:port → cluster}` of the Services `envoy-<c>` in `namespace`: the stores the querier must find there. */
    async function servicesOf(namespace: string, names: string[]): Promise<Record<string, string>> {
        const expected: Record<string, string> = {};
        for (const name of names) {
            const res = await clusters.get("observer").request("GET", `/api/v1/namespaces/${namespace}/services/envoy-${name}`);
            assert.equal(res.status, 200, `Service envoy-${name} in ${namespace}`);
            expected[`${res.body.spec.clusterIP}:${res.body.spec.ports[0].port}`] = name;
        }
        return expected;
    }

    /** Waits until the querier's stores are exactly `expected` (address → its `cluster` label), all healthy. */
    async function discovers(querier: Querier, expected: Record<string, string>): Promise<void> {
        let seen: Record<string, string> = {};
        try {
            await waitFor(
                `stores ${JSON.stringify(expected)}`,
                60_000,
                async () => {
                    const stores = await querier.stores();
                    seen = Object.fromEntries(stores.map((s) => [s.name, s.lastError ?? s.labelSets.map((l) => l.cluster).join(",")]));
                    return isDeepStrictEqual(seen, expected) ? true : undefined;
                },
                500,
            );
        } catch {
            assert.deepEqual(
                seen,
                expected,
                `the querier's stores\n--- query.log ---\n${querier.log().slice(-3000)}\n--- coredns.log ---\n${dns.log().slice(-2000)}`,
            );
        }
    }

    before(async () => {
        await clusters.start();
        clusters.writeKubeconfig(kubeconfig);
        const observer = clusters.get("observer");
        await createObject(observer, "/api/v1/namespaces", { metadata: { name: "monitoring" } });
        ingressStatus = fakeIngressStatus([observer]);
        observed = await startObservedMonitoring(NAMES, dir, group);
        topology = await new Topology({
            clusters: NAMES.map((name) => ({ name, host: `${name}m.example.com` })),
            sidecarAddress: (name) => `127.0.0.1:${observed[name].sidecar.grpcPort}`,
        }).start();

        ns = await NetworkNamespace.create();
        await ns.forwardToHost("127.0.0.1", observer.ports.apiserver, observer.ports.apiserver);
        dns = new CoreDns(ns, path.join(dir, "coredns"), coredns);
        await dns.start(clusterDnsCorefile({ zones: ["cluster.local"], kubeconfig, context: "observer" }));
        services = new ServiceProxy(ns, observer, PART_OF, (name) => name === observerNames.metricsService);

        await project.ok(["stack", "init", STACK]);
        ({ querierFlags } = await up(stackConfig(["cl1", "cl2"])));
        flagsQuerier = new Querier(path.join(dir, "query-flags"), await freePort(), await freePort(), group, ns);
        sdQuerier = new Querier(path.join(dir, "query-sd"), await freePort(), await freePort(), group, ns);
        for (const q of [flagsQuerier, sdQuerier]) fs.mkdirSync(q.dir, { recursive: true });
        await flagsQuerier.start({ args: [...querierFlags, ...DNS_INTERVAL] });
        await sdQuerier.start({ sdFile: path.join(endpointsVolume, "endpoints.yaml"), args: DNS_INTERVAL });
    });

    after(async () => {
        await ingressStatus?.stop();
        await group.stopAll();
        await ns?.delete();
        await topology?.stop();
        if (observed) await stopObservedMonitoring(observed);
        await clusters?.stop();
    });

    it("lists every observed cluster as a store at its Service's ClusterIP and port, from querierFlags and from endpointSdFile", async () => {
        assert.deepEqual(querierFlags, [
            "--endpoint=dnssrv+_envoy-cl1._tcp.envoy-cl1.envoy.svc.cluster.local",
            "--endpoint=dnssrv+_envoy-cl2._tcp.envoy-cl2.envoy.svc.cluster.local",
        ]);
        const expected = await servicesOf("envoy", ["cl1", "cl2"]);
        await discovers(flagsQuerier, expected);
        await discovers(sdQuerier, expected);
    });

    it("answers a query with every cluster's series", async () => {
        const res = await flagsQuerier.query(`/api/v1/query?query=${encodeURIComponent("prometheus_build_info")}`);
        assert.equal(res.status, "success");
        assert.deepEqual(res.data.result.map((s: any) => s.metric.cluster).sort(), ["cl1", "cl2"]);
    });

    it("discovers a cluster appended by pulumi up without a restart (endpointSdFile), and drops a removed one (both)", async () => {
        const pids = [flagsQuerier.pid, sdQuerier.pid];
        await up(stackConfig(["cl1", "cl2", "cl3"]));
        await discovers(sdQuerier, await servicesOf("envoy", ["cl1", "cl2", "cl3"]));

        await up(stackConfig(["cl1", "cl3"]));
        // The flags still name cl2; its SRV record is gone, so the querier drops it at the next DNS refresh.
        await discovers(flagsQuerier, await servicesOf("envoy", ["cl1"]));
        await discovers(sdQuerier, await servicesOf("envoy", ["cl1", "cl3"]));
        assert.deepEqual([flagsQuerier.pid, sdQuerier.pid], pids, "no querier restarted");
    });

    it("resolves in a cluster whose domain and Envoy namespace are not the defaults", async () => {
        await dns.restart(clusterDnsCorefile({ zones: ["corp.example"], kubeconfig, context: "observer" }));
        const outputs = await up(stackConfig(["cl1", "cl3"], { namespace: "thanos-gw", clusterDomain: "corp.example" }));
        assert.deepEqual(outputs.querierFlags, [
            "--endpoint=dnssrv+_envoy-cl1._tcp.envoy-cl1.thanos-gw.svc.corp.example",
            "--endpoint=dnssrv+_envoy-cl3._tcp.envoy-cl3.thanos-gw.svc.corp.example",
        ]);
        const expected = await servicesOf("thanos-gw", ["cl1", "cl3"]);
        await discovers(sdQuerier, expected);
        await flagsQuerier.stop();
        await flagsQuerier.start({ args: [...outputs.querierFlags, ...DNS_INTERVAL] });
        await discovers(flagsQuerier, expected);
    });
});
