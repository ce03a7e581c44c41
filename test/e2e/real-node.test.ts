import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { POD_PATHS, renderEnvoyFiles, TLS_KEYS } from "../../components/observer/bootstrap";
import { deploymentSpec, labels, podChecksum } from "../../components/observer/manifests";
import { observerNames } from "../../components/names";
import { Issued } from "../../tools/pki/openssl-ca";
import { ControlPlane, requireKube } from "./support/kube";
import { QuerierClient } from "./support/grpc";
import { QuerierLoad } from "./support/load";
import { assertMtlsWith } from "./support/mtls-path";
import { requireTool, tempDir, waitFor } from "./support/processes";
import { NODE_ADDRESS } from "./support/node-config";
import { RealNode, requireRealNode } from "./support/real-node";
import { Topology } from "./support/topology";

/**
 * The observer's Envoy Deployment, as the program's builders render it for `pulumi up`, run by a real kubelet and
 * containerd (runc, CNI bridge) on one real node of a real control plane: the pod's own probes, its security
 * context and Secret volume as the kernel enforces them, gRPC through the pod to a real nginx front door, day-2
 * changes through the kubelet's own volume updates, and a rolling update through the real preStop hook.
 * What the node is made of, and why, is in support/real-node.ts; the images in tools/real-node/images.sh.
 */

const kube = requireKube();
const tools = requireRealNode();
const nginx = requireTool("nginx", "apt-get install nginx");
const skip = [kube, tools, nginx].find((t): t is { skip: string } => typeof t === "object" && "skip" in t)?.skip ?? false;

const CLUSTER = { name: "cl1", host: "cl1.example.com" };
/** Appended on day 2: its front door runs from the start, Envoy learns of it from the updated ConfigMap volume. */
const APPENDED = { name: "cl2", host: "cl2.example.com" };

describe("the program's Deployment on a real node (kubelet, containerd, runc)", { skip }, () => {
    const dir = skip ? "" : tempDir("real-node");
    const plane = skip
        ? undefined!
        : new ControlPlane("observer", path.join(dir, "observer"), kube as Exclude<typeof kube, { skip: string }>, {
              nodes: 0,
              // The kubelet reads its pods' Secrets and ConfigMaps as the Node authorizer allows it.
              authorizationModes: ["Node", "RBAC"],
          });
    // Few requests per upstream connection, so that a renewed client certificate is presented within seconds.
    const topology = skip
        ? undefined!
        : new Topology({
              clusters: [CLUSTER, APPENDED],
              observedOnly: true,
              dialHost: NODE_ADDRESS,
              config: { envoy: { replicas: 1, maxRequestsPerConnection: 20 } },
          });
    let node: RealNode;
    let namespace: string;
    /** The Envoy pod once Ready. */
    let pod: any;

    const pods = async () => {
        const res = await plane.request("GET", `/api/v1/namespaces/${namespace}/pods`);
        assert.equal(res.status, 200, JSON.stringify(res.body));
        return res.body.items as any[];
    };
    const apply = async (pathname: string, body: object) => {
        const res = await plane.request("POST", pathname, body);
        assert.equal(res.status, 201, `POST ${pathname}: ${res.status} ${JSON.stringify(res.body).slice(0, 400)}`);
    };
    const replace = async (pathname: string, body: object) => {
        const res = await plane.request("PUT", pathname, body);
        assert.equal(res.status, 200, `PUT ${pathname}: ${res.status} ${JSON.stringify(res.body).slice(0, 400)}`);
    };
    const patch = async (pathname: string, body: object) => {
        const res = await plane.request("PATCH", pathname, body);
        assert.equal(res.status, 200, `PATCH ${pathname}: ${res.status} ${JSON.stringify(res.body).slice(0, 400)}`);
    };
    const meta = (name: string, component: string) => ({ name, namespace, labels: labels(component) });
    const configMap = (files: Record<string, string>) => ({ metadata: meta(observerNames.bootstrapConfigMap, "gateway"), data: files });
    const tlsSecret = (client: Issued) => ({
        metadata: meta(observerNames.tlsSecret, "gateway"),
        type: "kubernetes.io/tls",
        stringData: { [TLS_KEYS.certificate]: client.certificate, [TLS_KEYS.privateKey]: client.privateKey, [TLS_KEYS.ca]: topology.ca.ca.certificate },
    });
    /** The pod's listener of `cluster`, on the machine's loopback. */
    const listener = (cluster: string) => node.ns.publish(topology.side(cluster).listenerPort, undefined, pod.status.podIP);

    before(async () => {
        await plane.start();
        node = await RealNode.start(plane, path.join(dir, "node"), tools as Exclude<typeof tools, { skip: string }>);
        await topology.start();
        for (const side of topology.sides) await node.ns.forwardToHost(NODE_ADDRESS, side.frontDoorPort, side.frontDoorPort);

        const model = topology.model;
        namespace = model.observer.namespace;
        const files = renderEnvoyFiles({ envoy: model.envoy, clusters: model.clusters.filter((c) => c.name === CLUSTER.name) });
        await apply("/api/v1/namespaces", { metadata: { name: namespace } });
        await apply(`/api/v1/namespaces/${namespace}/configmaps`, configMap(files));
        await apply(`/api/v1/namespaces/${namespace}/secrets`, tlsSecret(topology.client));
        await apply(`/apis/apps/v1/namespaces/${namespace}/deployments`, {
            metadata: meta(observerNames.deployment, "gateway"),
            spec: deploymentSpec(model.envoy, podChecksum(files)),
        });
    });

    after(async () => {
        await node?.stop();
        await topology?.stop();
        await plane?.stop();
        if (dir) fs.rmSync(dir, { recursive: true, force: true });
    });

    it("the pod becomes Ready through its own probes, on the real node, with no restart", async () => {
        pod = await waitFor(
            "the Envoy pod Ready",
            60_000,
            async () => {
                const ready = (await pods()).find((p) => p.status?.conditions?.some((c: any) => c.type === "Ready" && c.status === "True"));
                return ready;
            },
            500,
        ).catch((err: Error) => {
            throw new Error(`${err.message}\n--- kubelet ---\n${node.kubeletLog().split("\n").slice(-40).join("\n")}`);
        });
        assert.equal(pod.spec.nodeName, node.name);
        assert.equal(pod.status.containerStatuses[0].restartCount, 0);
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

    it("day 2: an appended cluster and a renewed certificate reach the running Envoy through the kubelet's volume updates, with no restart and no failed call", async () => {
        assert.ok(pod, "the pod became Ready");
        const first = topology.side(CLUSTER.name);
        const port = await listener(CLUSTER.name);
        const load = new QuerierLoad({ [CLUSTER.name]: new QuerierClient(`127.0.0.1:${port}`) });
        load.startStreams([CLUSTER.name], 4, 30);
        load.startUnary([CLUSTER.name], () => `127.0.0.1:${port}`);
        try {
            const model = topology.model;
            await replace(
                `/api/v1/namespaces/${namespace}/configmaps/${observerNames.bootstrapConfigMap}`,
                configMap(renderEnvoyFiles({ envoy: model.envoy, clusters: model.clusters })),
            );
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
            const renewed = topology.ca.client("client-renewed");
            await replace(`/api/v1/namespaces/${namespace}/secrets/${observerNames.tlsSecret}`, tlsSecret(renewed));
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

    it("a rolling update runs the old pod's preStop hook in its container (the image's bash): no stream through it is cut", async () => {
        assert.ok(pod, "the pod became Ready");
        const [old] = await pods();
        const port = await node.ns.publish(topology.side(CLUSTER.name).listenerPort, undefined, old.status.podIP);
        const load = new QuerierLoad({ [CLUSTER.name]: new QuerierClient(`127.0.0.1:${port}`) });
        try {
            load.startStreams([CLUSTER.name], 4, 30);
            await waitFor("the streams running", 10_000, async () => (load.streamsStarted === 4 ? true : undefined));
            // Another drain time changes Envoy's arguments: the Deployment rolls (maxSurge 1, maxUnavailable 0).
            const model = topology.model;
            const files = renderEnvoyFiles({ envoy: model.envoy, clusters: model.clusters });
            await patch(`/apis/apps/v1/namespaces/${namespace}/deployments/${observerNames.deployment}`, {
                spec: deploymentSpec({ ...model.envoy, drainSeconds: model.envoy.drainSeconds - 1 }, podChecksum(files)),
            });
            await waitFor(
                "the new pod Ready and the old one gone",
                180_000,
                async () => {
                    const now = await pods();
                    const ready = now.filter((p) => p.status?.conditions?.some((c: any) => c.type === "Ready" && c.status === "True"));
                    return now.length === 1 && ready.length === 1 && now[0].metadata.uid !== old.metadata.uid ? true : undefined;
                },
                500,
            );
            await load.streamsEnded();
        } finally {
            await load.stop();
        }
        assert.deepEqual(load.streamFailures, [], "no stream through the old pod may be cut");
        assert.equal(load.streamsDone, 4);
        const events = await plane.request(
            "GET",
            `/api/v1/namespaces/${namespace}/events?fieldSelector=${encodeURIComponent(`involvedObject.uid=${old.metadata.uid}`)}`,
        );
        const reasons = (events.body.items ?? []).map((e: any) => `${e.reason}: ${e.message}`);
        assert.ok(!reasons.some((r: string) => r.startsWith("FailedPreStopHook")), `the preStop hook ran without error: ${reasons.join("; ")}`);
        pod = (await pods())[0];
    });
});
