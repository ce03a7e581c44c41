import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { POD_PATHS, TLS_KEYS } from "../../components/observer/bootstrap";
import { CHECKSUM_ANNOTATION } from "../../components/observer/manifests";
import { observerNames } from "../../components/names";
import { Issued } from "../../tools/pki/openssl-ca";
import { ControlPlane, createObject, fakeIngressStatus, requireKube, writeKubeconfig } from "./support/kube";
import { QuerierClient } from "./support/grpc";
import { QuerierLoad } from "./support/load";
import { assertMtlsWith } from "./support/mtls-path";
import { freePort, ProcessGroup, requireTool, tempDir, waitFor } from "./support/processes";
import { PulumiProject, requirePulumi } from "./support/pulumi";
import { NODE_ADDRESS } from "./support/node-config";
import { RealNode, requireRealNode } from "./support/real-node";
import { healthyStores, Querier } from "./support/thanos";
import { serialOf } from "./support/tls";
import { Topology } from "./support/topology";

/**
 * The observer's Envoy Deployment as `pulumi up` applies it (the real engine and Kubernetes provider), run by a real
 * kubelet and containerd (runc, CNI bridge) on one real node of a real control plane: the pod's own probes, its
 * security context and Secret volume as the kernel enforces them, gRPC through the pod to a real nginx front door,
 * day-2 changes (`pulumi up` again) through the kubelet's own volume updates, and a rolling update (`pulumi up` of
 * a new drain time) through the real preStop hook. What the node is made of, and why, is in support/real-node.ts;
 * the images in tools/real-node/images.sh.
 *
 * The stack's every context is the one control plane: the observer's objects land in `envoy`, the observed
 * clusters' Ingress and Secrets in `monitoring`, where nothing reads them (a stand-in gives the Ingresses the
 * status the provider waits for); the front doors are nginx rendered from the program's Ingress. Certificates are
 * `tls.mode: provided`, the topology's own: what its front doors present and verify is then what the stack
 * deploys, and renewing is a new pair in the stack, as a user of that mode renews.
 */

const kube = requireKube();
const tools = requireRealNode();
const nginx = requireTool("nginx", "apt-get install nginx");
const thanos = requireTool("thanos", "bash tools/setup.sh (builds Thanos from its Go module into ~/.cache/envoy-thanos)");
const missingPulumi = requirePulumi();
const skip = [kube, tools, nginx, thanos].find((t): t is { skip: string } => typeof t === "object" && "skip" in t)?.skip ?? missingPulumi;

const STACK = "real-node";
const CLUSTER = { name: "cl1", host: "cl1.example.com" };
/** Appended on day 2: its front door runs from the start, Envoy learns of it from the updated ConfigMap volume. */
const APPENDED = { name: "cl2", host: "cl2.example.com" };
/** An `up` waits for the pod the kubelet runs; bounded, so that a pod that never becomes Ready fails the test. */
const UP_TIMEOUT_MS = 240_000;

describe("the program's Deployment, as pulumi up applies it, on a real node (kubelet, containerd, runc)", { skip }, () => {
    const dir = skip ? "" : tempDir("real-node");
    const kubeconfig = path.join(dir, "kubeconfig");
    const plane = skip
        ? undefined!
        : new ControlPlane("observer", path.join(dir, "observer"), kube as Exclude<typeof kube, { skip: string }>, {
              nodes: 0,
              // The kubelet reads its pods' Secrets and ConfigMaps as the Node authorizer allows it.
              authorizationModes: ["Node", "RBAC"],
          });
    const project = skip ? undefined! : new PulumiProject({ KUBECONFIG: kubeconfig });
    // Front doors and backends only: Envoy is the pod. Each cluster's address is the node's, where a pod dials it.
    const topology = skip ? undefined! : new Topology({ clusters: [CLUSTER, APPENDED], observedOnly: true, dialHost: NODE_ADDRESS });
    let node: RealNode;
    /** The test's own processes beside the node's (the querier). */
    const group = new ProcessGroup();
    let ingressStatus: { stop: () => Promise<void> };
    /** Where the program puts Envoy: the default namespace, as the stack names none. */
    let namespace: string;
    /** The Envoy pod once Ready. */
    let pod: any;
    /** Envoy's client certificate once day 2 has renewed it: the stack keeps it. */
    let renewedClient: Issued | undefined;

    /**
     * The stack: `names`' listeners at the topology's ports, dialling their front doors at the node's address.
     * Few requests per upstream connection, so that a renewed client certificate is presented within seconds.
     */
    const stackConfig = (names: string[], options: { client?: Issued; longestStream?: string } = {}) => ({
        observer: { context: "observer" },
        envoy: { replicas: 1, maxRequestsPerConnection: 20, ...(options.longestStream ? { longestStream: options.longestStream } : {}) },
        sidecar: { namespace: "monitoring" },
        clusters: names.map((name) => {
            const cluster = topology.model.clusters.find((c) => c.name === name)!;
            return { name, host: cluster.host, port: cluster.port, address: `${cluster.address.host}:${cluster.address.port}`, context: "observer" };
        }),
        tls: topology.providedTls(names, options.client),
    });
    const up = async (config: object) => {
        project.writeStack(STACK, config as Record<string, unknown>);
        await project.ok(["up", "-s", STACK, "--yes", "--skip-preview"], UP_TIMEOUT_MS).catch((err: Error) => {
            throw new Error(`${err.message}\n--- kubelet ---\n${node.kubeletLog().split("\n").slice(-40).join("\n")}`);
        });
    };
    const get = async (pathname: string) => {
        const res = await plane.request("GET", pathname);
        assert.equal(res.status, 200, `GET ${pathname}: ${res.status} ${JSON.stringify(res.body).slice(0, 400)}`);
        return res.body;
    };
    const pods = async () => (await get(`/api/v1/namespaces/${namespace}/pods`)).items as any[];
    const isReady = (p: any) => p.status?.conditions?.some((c: any) => c.type === "Ready" && c.status === "True");
    /** The ready addresses of the Service of `cluster`, as the real EndpointSlice controller keeps them from the pods' readiness. */
    const readyEndpoints = async (cluster: string) => {
        const service = topology.model.clusters.find((c) => c.name === cluster)!.serviceName;
        const selector = encodeURIComponent(`kubernetes.io/service-name=${service}`);
        const slices = await get(`/apis/discovery.k8s.io/v1/namespaces/${namespace}/endpointslices?labelSelector=${selector}`);
        return (slices.items as any[]).flatMap((slice) => (slice.endpoints ?? []).filter((e: any) => e.conditions?.ready).flatMap((e: any) => e.addresses));
    };
    /** Waits until the Service of `cluster` sends to `podIP` alone. */
    const servesOnly = (cluster: string, podIP: string) =>
        waitFor(
            `the Service of ${cluster} sending to ${podIP} alone`,
            30_000,
            async () => (JSON.stringify(await readyEndpoints(cluster)) === JSON.stringify([podIP]) ? true : undefined),
            500,
        );
    /** The pod's listener of `cluster`, on the machine's loopback. */
    const listener = (cluster: string) => node.ns.publish(topology.side(cluster).listenerPort, undefined, pod.status.podIP);

    before(async () => {
        await plane.start();
        writeKubeconfig(kubeconfig, { observer: plane });
        node = await RealNode.start(plane, path.join(dir, "node"), tools as Exclude<typeof tools, { skip: string }>);
        await topology.start();
        for (const side of topology.sides) await node.ns.forwardToHost(NODE_ADDRESS, side.frontDoorPort, side.frontDoorPort);
        namespace = topology.model.observer.namespace;
        await createObject(plane, "/api/v1/namespaces", { metadata: { name: "monitoring" } });
        ingressStatus = fakeIngressStatus([plane]);
        await project.ok(["stack", "init", STACK]);
    });

    after(async () => {
        await ingressStatus?.stop();
        await group.stopAll();
        await node?.stop();
        await topology?.stop();
        await plane?.stop();
        if (dir) fs.rmSync(dir, { recursive: true, force: true });
    });

    it("pulumi up returns once the pod the kubelet runs from its Deployment is Ready through its own probes, with no restart", async () => {
        await up(stackConfig([CLUSTER.name]));
        const deployment = await get(`/apis/apps/v1/namespaces/${namespace}/deployments/${observerNames.deployment}`);
        const managers = (deployment.metadata.managedFields ?? []).map((f: any) => f.manager);
        assert.ok(
            managers.some((m: string) => m.startsWith("pulumi-kubernetes")),
            `the Deployment is the Kubernetes provider's (field managers ${managers.join(", ")})`,
        );
        const ready = (await pods()).filter(isReady);
        assert.equal(ready.length, 1, "pulumi up waited for the Deployment's pod");
        pod = ready[0];
        assert.equal(pod.spec.nodeName, node.name);
        assert.equal(pod.status.containerStatuses[0].restartCount, 0);
        const replicaSet = await get(`/apis/apps/v1/namespaces/${namespace}/replicasets/${pod.metadata.ownerReferences[0].name}`);
        assert.equal(replicaSet.metadata.ownerReferences[0].uid, deployment.metadata.uid, "the pod comes from the Deployment pulumi up applied");
        assert.equal(pod.metadata.annotations[CHECKSUM_ANNOTATION], deployment.spec.template.metadata.annotations[CHECKSUM_ANNOTATION]);
        await servesOnly(CLUSTER.name, pod.status.podIP);
        const secret = await get(`/api/v1/namespaces/${namespace}/secrets/${observerNames.tlsSecret}`);
        assert.equal(Buffer.from(secret.data[TLS_KEYS.privateKey], "base64").toString(), topology.client.privateKey, "the stack's client key");
    });

    it("Envoy runs as 10101 (group and fsGroup too) on a read-only root, and reads its key from the 0440 Secret volume", () => {
        assert.ok(pod, "the pod became Ready");
        const pid = node.containerPid(pod.status.containerStatuses[0].containerID);
        const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
        const ids = (field: string) =>
            status
                .match(new RegExp(`^${field}:\\s*(.*)$`, "m"))?.[1]
                .trim()
                .split(/\s+/);
        assert.deepEqual(ids("Uid"), ["10101", "10101", "10101", "10101"], "real, effective, saved and file-system UID");
        assert.deepEqual(ids("Gid"), ["10101", "10101", "10101", "10101"]);
        assert.ok(ids("Groups")?.includes("10101"), `fsGroup 10101 among the supplementary groups: ${ids("Groups")}`);
        assert.equal(ids("CapEff")?.[0], "0000000000000000", "no capability left (drop ALL)");
        assert.match(fs.readFileSync(`/proc/${pid}/cmdline`, "utf8"), /^\/usr\/local\/bin\/envoy\0--config-path\0\/etc\/envoy\/envoy\.yaml\0/);
        const root = fs
            .readFileSync(`/proc/${pid}/mountinfo`, "utf8")
            .split("\n")
            .map((line) => line.split(" "))
            .find((f) => f[4] === "/");
        assert.ok(root?.[5].split(",").includes("ro"), `the root file system is mounted read-only: ${root?.join(" ")}`);
        // The kubelet's volume: the key as Envoy opens it (through the ..data link), root-owned, group 10101 (fsGroup), 0440.
        const key = fs.statSync(`/proc/${pid}/root${POD_PATHS.tlsDir}/${TLS_KEYS.privateKey}`);
        assert.equal((key.mode & 0o777).toString(8), "440");
        assert.equal(key.gid, 10101);
        assert.ok(fs.lstatSync(`/proc/${pid}/root${POD_PATHS.tlsDir}/..data`).isSymbolicLink(), "the kubelet's atomic ..data link");
    });

    it("gRPC through the pod reaches the real nginx front door with Envoy's client certificate from the Secret volume", async () => {
        assert.ok(pod, "the pod became Ready");
        const side = topology.side(CLUSTER.name);
        const published = await listener(CLUSTER.name);
        await assertMtlsWith(
            { name: side.name, host: side.host, listenerPort: published, frontDoorPort: side.frontDoorPort, frontDoor: side.frontDoor, backend: side.backend },
            { client: topology.client.certificate, server: side.server.certificate },
        );
    });

    it("a real Thanos querier on the node, given the pod's IP and listener port, lists the cluster as a healthy store, its calls verified at nginx", async () => {
        assert.ok(pod, "the pod became Ready");
        const side = topology.side(CLUSTER.name);
        const since = side.frontDoor.checkpoint();
        // In the node's network namespace, as a pod of the node dials another pod's IP.
        const querier = new Querier(path.join(dir, "query"), await freePort(), await freePort(), group, node.ns);
        fs.mkdirSync(querier.dir, { recursive: true });
        await querier.start({ endpoints: [`${pod.status.podIP}:${side.listenerPort}`] });
        try {
            const stores = await healthyStores(querier, 1).catch((err: Error) => {
                throw new Error(`${err.message}\n--- querier ---\n${querier.log().split("\n").slice(-20).join("\n")}`);
            });
            assert.deepEqual(stores, [{ cluster: CLUSTER.name }]);
            const serial = serialOf(topology.client.certificate);
            const seen = side.frontDoor.requests().slice(since.requests);
            assert.ok(
                seen.some((r) => r.host === side.host && r.sni === side.host && r.clientSerial === serial && r.status === 200),
                `nginx saw the querier's calls with :authority and SNI ${side.host} and Envoy's client certificate ${serial}: ${JSON.stringify(seen)}`,
            );
        } finally {
            await querier.stop();
        }
    });

    it("day 2: pulumi up of an appended cluster, then of a renewed certificate, reaches the running Envoy through the kubelet's volume updates, with no restart and no failed call", async () => {
        assert.ok(pod, "the pod became Ready");
        const first = topology.side(CLUSTER.name);
        const port = await listener(CLUSTER.name);
        const load = new QuerierLoad({ [CLUSTER.name]: new QuerierClient(`127.0.0.1:${port}`) });
        load.startStreams([CLUSTER.name], 4, 30);
        load.startUnary([CLUSTER.name], () => `127.0.0.1:${port}`);
        try {
            await up(stackConfig([CLUSTER.name, APPENDED.name]));
            const appended = new QuerierClient(`127.0.0.1:${await listener(APPENDED.name)}`);
            try {
                // The kubelet's sync (syncFrequency) swaps the volume's ..data link; Envoy's watch reloads LDS and CDS.
                await waitFor(
                    `${APPENDED.name} answering through the pod after the ConfigMap update`,
                    60_000,
                    async () => {
                        const info = await appended.storeInfo(2000).catch(() => undefined);
                        return JSON.stringify(info?.labels) === JSON.stringify([{ name: "cluster", value: APPENDED.name }]) ? true : undefined;
                    },
                    500,
                );
            } finally {
                appended.close();
            }
            const renewed = (renewedClient = topology.ca.client("client-renewed"));
            await up(stackConfig([CLUSTER.name, APPENDED.name], { client: renewed }));
            await assertMtlsWith(
                {
                    name: first.name,
                    host: first.host,
                    listenerPort: port,
                    frontDoorPort: first.frontDoorPort,
                    frontDoor: first.frontDoor,
                    backend: first.backend,
                },
                { client: renewed.certificate, server: first.server.certificate },
            );
            await load.streamsEnded();
        } finally {
            await load.stop();
        }
        load.assertNoFailure(20);
        const [now] = await pods();
        assert.equal(now.metadata.uid, pod.metadata.uid, "the same pod");
        assert.equal(now.status.containerStatuses[0].restartCount, 0, "Envoy was not restarted");
    });

    it("pulumi up of a new drain time rolls the pod: the old pod's preStop hook runs in its container (the image's bash), no stream through it is cut", async () => {
        assert.ok(pod, "the pod became Ready");
        const [old] = await pods();
        const port = await node.ns.publish(topology.side(CLUSTER.name).listenerPort, undefined, old.status.podIP);
        const load = new QuerierLoad({ [CLUSTER.name]: new QuerierClient(`127.0.0.1:${port}`) });
        try {
            load.startStreams([CLUSTER.name], 4, 30);
            await waitFor("the streams running", 10_000, async () => (load.streamsStarted === 4 ? true : undefined));
            // A second less to drain changes Envoy's arguments: the Deployment rolls (maxSurge 1, maxUnavailable 0).
            const longestStream = `${topology.model.envoy.drainSeconds - 1}s`;
            await up(stackConfig([CLUSTER.name, APPENDED.name], { client: renewedClient, longestStream }));
            await waitFor(
                "the new pod Ready and the old one gone",
                180_000,
                async () => {
                    const now = await pods();
                    return now.length === 1 && isReady(now[0]) && now[0].metadata.uid !== old.metadata.uid ? true : undefined;
                },
                500,
            );
            await load.streamsEnded();
        } finally {
            await load.stop();
        }
        assert.deepEqual(load.streamFailures, [], "no stream through the old pod may be cut");
        assert.equal(load.streamsDone, 4);
        const events = await get(`/api/v1/namespaces/${namespace}/events?fieldSelector=${encodeURIComponent(`involvedObject.uid=${old.metadata.uid}`)}`);
        const reasons = (events.items ?? []).map((e: any) => `${e.reason}: ${e.message}`);
        assert.ok(!reasons.some((r: string) => r.startsWith("FailedPreStopHook")), `the preStop hook ran without error: ${reasons.join("; ")}`);
        pod = (await pods())[0];
        for (const cluster of [CLUSTER.name, APPENDED.name]) await servesOnly(cluster, pod.status.podIP);
    });
});
