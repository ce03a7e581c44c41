import * as fs from "node:fs";
import * as path from "node:path";
import { TLS_KEYS } from "../components/observer/bootstrap";
import { nativeEndpointSdFile } from "../components/observer/native";
import { httpGet, writeSecretVolume } from "../test/e2e/support/envoy";
import type { EnvoyGatewayPolicyChanges, FrontDoorKind } from "../test/e2e/support/front-door";
import { FRONT_DOOR_KINDS } from "../test/e2e/support/front-doors";
import type { IngressNginxConfigMap } from "../test/e2e/support/ingress-nginx-configmap";
import { freePort, ProcessGroup, tempDir } from "../test/e2e/support/processes";
import { healthyStores, Prometheus, Querier, Sidecar } from "../test/e2e/support/thanos";
import { Topology } from "../test/e2e/support/topology";
import { startRecipeEnvoy as startPortedRecipe } from "../test/e2e/support/recipe";
import { CpuacctGroups } from "./accounting";
import { createDataset, Dataset, DatasetSize } from "./dataset";

/**
 * The benchmark's observed cluster and every way to reach it, all real programs on loopback: one Prometheus over
 * the generated dataset; two Thanos sidecars on it (plain h2c, and mTLS with Thanos' own gRPC server TLS); the
 * program's nginx front door (rendered from its Ingress) and Envoy (its bootstrap); the manual recipe's Envoy;
 * and one Thanos querier per path. Each path names the processes that are proxies on it, for /proc CPU.
 */

export const CLUSTER = { name: "cl1", host: "cl1m.example.com" };

/** How a gRPC client (ghz) reaches the sidecar on a path. */
export interface GrpcTarget {
    address: string;
    /** mTLS as the querier does it natively: client certificate, CA, and the server name (SNI and :authority). */
    tls?: { cert: string; key: string; ca: string; serverName: string };
}

/** Which process plays which part on a path; pids are read when CPU is measured (nginx forks its worker). */
export interface PathProcesses {
    envoy?: number;
    /** The front door's processes (nginx: master and worker). */
    frontDoor?: () => number[];
    sidecar: number;
    /** The sidecar's gRPC port: its sockets there count what it wrote. */
    sidecarPort: number;
}

export interface BenchPath {
    id: string;
    label: string;
    querier: Querier;
    grpc: GrpcTarget;
    processes: PathProcesses;
    /** Envoy's counters for this path's upstream cluster (admin port and cluster name), where Envoy is on it. */
    envoyStats?: { adminPort: number; cluster: string };
    /** What the test harness adds to this path besides the programs measured (FrontDoorSide.harnessOnPath). */
    harnessOnPath?: string;
}

export interface Variant {
    topology: Topology;
    grpc: GrpcTarget;
    processes: PathProcesses;
    /** Stops the pair before the stack stops: an Envoy Gateway pair's API server and controller would load the sections after it. */
    stop(): Promise<void>;
}

/** The front door of a variant pair and what is changed on it: ingress-nginx's ConfigMap for nginx, the program's policies for Envoy Gateway. */
export interface VariantFrontDoor {
    kind: FrontDoorKind;
    ingressNginxConfigMap?: IngressNginxConfigMap;
    envoyGatewayPolicies?: EnvoyGatewayPolicyChanges;
}

export interface Stack {
    dataset: Dataset;
    prometheus: Prometheus;
    paths: BenchPath[];
    topology: Topology;
    /** One cpuacct group per proxy process, for CPU in nanoseconds; where cpuacct is unavailable, why. */
    cpuacct: CpuacctGroups | { why: string };
    /**
     * Starts another pair of the program's Envoy and a front door on the same sidecar, with stack `config` (e.g.
     * envoy.maxRequestsPerConnection), changes to Envoy's documents (`mutate`, for settings the program does not expose)
     * and the front door's own settings (`frontDoor`; default: nginx with ingress-nginx's defaults).
     */
    variant(config: Record<string, unknown>, mutate?: (documents: Record<string, any>) => void, frontDoor?: VariantFrontDoor): Promise<Variant>;
    stop(): Promise<void>;
}

/**
 * Why a front door kind of the tests is left out of the benchmark: its harness puts relays on the data path that
 * would be measured instead of the front door.
 */
const NOT_MEASURED: Partial<Record<FrontDoorKind, string>> = {
    traefik:
        "its test harness runs it in a network namespace reached through socat and a relay in the bench's own Node process, " +
        "which would be measured instead of Traefik",
};

/** The front door kinds of the tests the bench leaves out, and why. */
export function unmeasuredFrontDoors(): { kind: FrontDoorKind; reason: string }[] {
    return FRONT_DOOR_KINDS.flatMap((kind) => (NOT_MEASURED[kind] === undefined ? [] : [{ kind, reason: NOT_MEASURED[kind]! }]));
}

/** The processes of the topology's front door, read when CPU is measured. */
function frontDoorPids(topology: Topology): () => number[] {
    const side = topology.side(CLUSTER.name);
    const processes = side.frontDoor.processes;
    if (processes === undefined) throw new Error(`the ${side.frontDoorKind} front door of the tests does not name its processes`);
    return () => processes();
}

/** The manual recipe's Envoy, ported to load on current Envoy (typed_config on the router, ports and paths for loopback), for one cluster. */
async function startRecipeEnvoy(topology: Topology, group: ProcessGroup): Promise<{ port: number; adminPort: number; pid: number }> {
    const side = topology.side(CLUSTER.name);
    const port = await freePort();
    const recipe = await startPortedRecipe(
        tempDir("bench-recipe"),
        [{ name: CLUSTER.name, servicePort: port, listenerPort: port, frontDoorPort: side.frontDoorPort }],
        topology.client,
        group,
    );
    return { port, adminPort: recipe.adminPort, pid: recipe.process.child.pid! };
}

export async function startStack(size: DatasetSize): Promise<Stack> {
    const group = new ProcessGroup();
    const dir = tempDir("bench-stack");
    const topologies: Topology[] = [];
    const unavailable = CpuacctGroups.unavailable();
    const cpuacct = unavailable === undefined ? CpuacctGroups.create() : { why: unavailable };
    const stop = async () => {
        for (const t of topologies) await t.stop();
        await group.stopAll();
        if (cpuacct instanceof CpuacctGroups) cpuacct.remove();
        // The dataset's blocks are the bulk of it.
        fs.rmSync(dir, { recursive: true, force: true });
    };
    try {
        const prometheus = new Prometheus(CLUSTER.name, path.join(dir, "prometheus"), await freePort(), group);
        const dataset = await createDataset(size, dir, prometheus.dataDir);
        await prometheus.start();
        const promUrl = `http://127.0.0.1:${prometheus.port}`;
        const plain = new Sidecar(CLUSTER.name, dir, await freePort(), await freePort(), promUrl, prometheus.dataDir, group);
        await plain.start();

        const startTopology = async (
            config?: Record<string, unknown>,
            mutateDocuments?: (documents: Record<string, any>) => void,
            { kind, ingressNginxConfigMap, envoyGatewayPolicies }: VariantFrontDoor = { kind: "nginx" },
        ) => {
            const t = await new Topology({
                clusters: [CLUSTER],
                sidecarAddress: () => `127.0.0.1:${plain.grpcPort}`,
                config,
                mutateDocuments,
                frontDoor: kind,
                ingressNginxConfigMap,
                envoyGatewayPolicies,
            }).start();
            topologies.push(t);
            return t;
        };
        const topology = await startTopology();
        const side = topology.side(CLUSTER.name);

        // The sidecar's own gRPC server TLS, verifying client certificates: native mTLS with no proxy at all.
        const tlsSidecar = new Sidecar(CLUSTER.name, path.join(dir, "tls-sidecar"), await freePort(), await freePort(), promUrl, prometheus.dataDir, group);
        fs.mkdirSync(tlsSidecar.dir, { recursive: true });
        await tlsSidecar.start([
            `--grpc-server-tls-cert=${side.server.certificatePath}`,
            `--grpc-server-tls-key=${side.server.privateKeyPath}`,
            `--grpc-server-tls-client-ca=${topology.ca.ca.certificatePath}`,
        ]);
        const recipe = await startRecipeEnvoy(topology, group);

        // The querier's client certificate as the program's native mode mounts it, and its per-endpoint TLS config.
        const tlsDir = path.join(dir, "querier-tls");
        writeSecretVolume(tlsDir, {
            [TLS_KEYS.certificate]: topology.client.certificate,
            [TLS_KEYS.privateKey]: topology.client.privateKey,
            [TLS_KEYS.ca]: topology.ca.ca.certificate,
        });
        const nativeSd = (port: number) => {
            const file = path.join(dir, `native-${port}.yaml`);
            fs.writeFileSync(file, nativeEndpointSdFile([{ host: CLUSTER.host, address: { host: "127.0.0.1", port } }], tlsDir));
            return file;
        };
        const clientTls = {
            cert: topology.client.certificatePath,
            key: topology.client.privateKeyPath,
            ca: topology.ca.ca.certificatePath,
            serverName: CLUSTER.host,
        };

        const querier = async (id: string, how: { endpoints?: string[]; sdFile?: string }) => {
            const q = new Querier(path.join(dir, `query-${id}`), await freePort(), await freePort(), group);
            fs.mkdirSync(q.dir, { recursive: true });
            await q.start(how);
            await healthyStores(q, 1);
            return q;
        };
        const nginx = frontDoorPids(topology);
        const paths: BenchPath[] = [
            {
                id: "direct",
                label: "querier → sidecar, plain h2c",
                querier: await querier("direct", { endpoints: [`127.0.0.1:${plain.grpcPort}`] }),
                grpc: { address: `127.0.0.1:${plain.grpcPort}` },
                processes: { sidecar: plain.pid!, sidecarPort: plain.grpcPort },
            },
            {
                id: "native-mtls",
                label: "querier (per-endpoint TLS) → sidecar (its own gRPC server TLS)",
                querier: await querier("native-mtls", { sdFile: nativeSd(tlsSidecar.grpcPort) }),
                grpc: { address: `127.0.0.1:${tlsSidecar.grpcPort}`, tls: clientTls },
                processes: { sidecar: tlsSidecar.pid!, sidecarPort: tlsSidecar.grpcPort },
            },
            {
                id: "native-nginx",
                label: "querier (per-endpoint TLS) → nginx → sidecar: the program's native mode",
                querier: await querier("native-nginx", { sdFile: nativeSd(side.frontDoorPort) }),
                grpc: { address: `127.0.0.1:${side.frontDoorPort}`, tls: clientTls },
                processes: { frontDoor: nginx, sidecar: plain.pid!, sidecarPort: plain.grpcPort },
            },
            // Through each front door the tests run; nginx's is the stack's own topology, the others their own.
            ...(await Promise.all(
                FRONT_DOOR_KINDS.filter((kind) => NOT_MEASURED[kind] === undefined).map(async (kind) => {
                    const t = kind === "nginx" ? topology : await startTopology(undefined, undefined, { kind });
                    const port = t.side(CLUSTER.name).listenerPort;
                    const id = kind === "nginx" ? "envoy-thanos" : `envoy-thanos-${kind}`;
                    return {
                        id,
                        label: `querier → Envoy → ${kind} → sidecar`,
                        querier: await querier(id, { endpoints: [`127.0.0.1:${port}`] }),
                        grpc: { address: `127.0.0.1:${port}` },
                        processes: { envoy: t.envoy.pid!, frontDoor: frontDoorPids(t), sidecar: plain.pid!, sidecarPort: plain.grpcPort },
                        envoyStats: { adminPort: t.envoy.adminPort, cluster: `thanos_${CLUSTER.name}` },
                        harnessOnPath: t.side(CLUSTER.name).frontDoor.harnessOnPath,
                    };
                }),
            )),
            {
                id: "recipe",
                label: "querier → the manual recipe's Envoy → nginx → sidecar",
                querier: await querier("recipe", { endpoints: [`127.0.0.1:${recipe.port}`] }),
                grpc: { address: `127.0.0.1:${recipe.port}` },
                processes: { envoy: recipe.pid, frontDoor: nginx, sidecar: plain.pid!, sidecarPort: plain.grpcPort },
                envoyStats: { adminPort: recipe.adminPort, cluster: "sidecar_cl1" },
            },
        ];
        return {
            dataset,
            prometheus,
            paths,
            topology,
            cpuacct,
            variant: async (config, mutate, frontDoor) => {
                const t = await startTopology(config, mutate, frontDoor);
                return {
                    topology: t,
                    grpc: { address: `127.0.0.1:${t.side(CLUSTER.name).listenerPort}` },
                    processes: { envoy: t.envoy.pid!, frontDoor: frontDoorPids(t), sidecar: plain.pid!, sidecarPort: plain.grpcPort },
                    stop: async () => {
                        topologies.splice(topologies.indexOf(t), 1);
                        await t.stop();
                    },
                };
            },
            stop,
        };
    } catch (err) {
        await stop();
        throw err;
    }
}

/** Counter values from an Envoy admin interface; `filter` (a regular expression) keeps the read cheap for Envoy. */
export async function envoyCounters(adminPort: number, filter?: string): Promise<Record<string, number>> {
    const res = await httpGet(adminPort, `/stats?format=json${filter === undefined ? "" : `&filter=${encodeURIComponent(filter)}`}`);
    const out: Record<string, number> = {};
    for (const s of JSON.parse(res.body).stats as { name?: string; value?: number }[]) {
        if (s.name !== undefined && typeof s.value === "number") out[s.name] = s.value;
    }
    return out;
}

/** The proxies' processes on a path, read now (nginx forks its worker). */
export function proxyPids(p: BenchPath): { envoy: number[]; frontDoor: number[] } {
    return { envoy: p.processes.envoy === undefined ? [] : [p.processes.envoy], frontDoor: p.processes.frontDoor?.() ?? [] };
}
