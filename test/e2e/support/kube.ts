import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as http from "node:http";
import * as https from "node:https";
import * as path from "node:path";
import * as YAML from "yaml";
import { buildDir, FatalWaitError, freePort, ProcessGroup, sleep, Started, tempDir, waitFor } from "./processes";

/**
 * Real Kubernetes control planes on loopback for the end-to-end tests, one per cluster name:
 * etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok (fake Nodes whose Pods kwok
 * marks Running/Ready, so Deployments become available without a kubelet or container runtime).
 * The binaries are built from their Go modules by `bash tools/k8s/build.sh` (see its header).
 *
 *     const kube = requireKube();                       // in a test file, before describe()
 *     const clusters = new KubeClusters(["observer", "cl1", "cl2"], kube);
 *     await clusters.start();                           // stops whatever it started if it fails
 *     writeKubeconfig(file, clusters.planes);           // one context per cluster name
 *     await clusters.get("cl1").request("GET", "/api/v1/nodes");
 *     await clusters.stop();
 *
 * Each control plane: its own CA (client CA and the API server's serving certificate), an admin
 * client certificate (CN=kube-admin, O=system:masters), a service-account key pair, authorization
 * mode RBAC, all default admission plugins (ServiceAccount included: the controller manager creates
 * the `default` ServiceAccounts), service range 10.96.0.0/24, fake pod IPs from 10.244.0.0/16
 * (kwok writes them into Pod status; nothing connects to them).
 */

export const KUBE_BINARIES = ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"] as const;
export type KubeBinary = (typeof KUBE_BINARIES)[number];

/** The annotation that makes a Node kwok's (a simulated one). */
const KWOK_NODE_ANNOTATION = "kwok.x-k8s.io/node";
export const KUBE_BUILD_COMMAND = "bash tools/k8s/build.sh";

/** The directory tools/k8s/build.sh builds into (asked of the script itself; needs no Go, builds nothing). */
export function kubeBinDir(): string {
    return buildDir("tools/k8s/build.sh");
}

export interface KubeBinaries {
    dir: string;
    paths: Record<KubeBinary, string>;
}

/** Absolute paths of the binaries, whether or not they exist. */
export function kubeBinaries(dir = kubeBinDir()): KubeBinaries {
    const paths = Object.fromEntries(KUBE_BINARIES.map((b) => [b, path.join(dir, b)])) as Record<KubeBinary, string>;
    return { dir, paths };
}

/**
 * The binaries, or `{ skip }` naming the command that builds them when one is missing (or openssl is).
 * Under CI=true a missing binary throws instead: CI never skips end-to-end tests.
 */
export function requireKube(): KubeBinaries | { skip: string } {
    const bins = kubeBinaries();
    const missing = KUBE_BINARIES.filter((b) => {
        try {
            fs.accessSync(bins.paths[b], fs.constants.X_OK);
            return false;
        } catch {
            return true;
        }
    });
    let message: string | undefined;
    if (missing.length > 0) {
        message = `Kubernetes binaries missing from ${bins.dir} (${missing.join(", ")}); build them with: ${KUBE_BUILD_COMMAND}`;
    } else {
        try {
            execFileSync("sh", ["-c", "command -v openssl"], { stdio: "pipe" });
        } catch {
            message = "openssl not found; install it with: apt-get install openssl";
        }
    }
    if (message === undefined) return bins;
    if (process.env.CI === "true") throw new Error(`${message} (CI never skips end-to-end tests)`);
    return { skip: message };
}

// ---------------------------------------------------------------------------------------------------
// Certificates (openssl CLI)

/** Runs openssl with `args` split on whitespace (no argument here contains any). */
function openssl(args: string, cwd: string): void {
    execFileSync("openssl", args.trim().split(/\s+/), { cwd, stdio: ["ignore", "pipe", "pipe"] });
}

export interface Pki {
    caCert: string;
    caKey: string;
    servingCert: string;
    servingKey: string;
    adminCert: string;
    adminKey: string;
    saKey: string;
    saPub: string;
}

function makePki(dir: string, name: string): Pki {
    fs.mkdirSync(dir, { recursive: true });
    const p = (f: string) => path.join(dir, f);
    const ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    openssl(
        `req -x509 ${ec} -keyout ca.key -out ca.crt -days 7 -subj /CN=${name}-kube-ca` +
            " -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
        dir,
    );
    const leaf = (base: string, subject: string, ext: string) => {
        openssl(`req -new ${ec} -keyout ${base}.key -out ${base}.csr -subj ${subject}`, dir);
        fs.writeFileSync(p(`${base}.ext`), ext);
        openssl(`x509 -req -in ${base}.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 7 -sha256 -extfile ${base}.ext -out ${base}.crt`, dir);
    };
    const sans = ["IP:127.0.0.1", "IP:10.96.0.1", "DNS:localhost", "DNS:kubernetes", "DNS:kubernetes.default", "DNS:kubernetes.default.svc"];
    leaf(
        "apiserver",
        "/CN=kube-apiserver",
        `basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=${[...sans, "DNS:kubernetes.default.svc.cluster.local"].join(",")}\n`,
    );
    leaf("admin", "/O=system:masters/CN=kube-admin", "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n");
    openssl("genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out sa.key", dir);
    openssl("pkey -in sa.key -pubout -out sa.pub", dir);
    return {
        caCert: p("ca.crt"),
        caKey: p("ca.key"),
        servingCert: p("apiserver.crt"),
        servingKey: p("apiserver.key"),
        adminCert: p("admin.crt"),
        adminKey: p("admin.key"),
        saKey: p("sa.key"),
        saPub: p("sa.pub"),
    };
}

// ---------------------------------------------------------------------------------------------------
// kwok stages: what kwok does to the objects it manages. Modelled on kwok's default "fast" stages
// (kustomize/stage/{node,pod}/fast, node/heartbeat-with-lease), trimmed to what a Deployment needs:
// a managed Node becomes Ready; a scheduled Pod becomes Running and Ready at once; a Pod being
// deleted is removed (no kubelet would ever finish its termination); the Node lease is renewed by
// kwok itself (--node-lease-duration-seconds), so the node controller never marks the Node unreachable.

/** kwok's Node conditions, refreshed with the current time (shared by the initialize and heartbeat stages). */
const NODE_CONDITIONS = `{{ $now := Now }}
{{ $lastTransitionTime := or .metadata.creationTimestamp $now }}
conditions:
{{ range NodeConditions }}
- lastHeartbeatTime: {{ $now | Quote }}
  lastTransitionTime: {{ $lastTransitionTime | Quote }}
  message: {{ .message | Quote }}
  reason: {{ .reason | Quote }}
  status: {{ .status | Quote }}
  type: {{ .type | Quote }}
{{ end }}
`;

const STAGES: object[] = [
    {
        apiVersion: "kwok.x-k8s.io/v1alpha1",
        kind: "Stage",
        metadata: { name: "node-initialize" },
        spec: {
            resourceRef: { apiGroup: "v1", kind: "Node" },
            selector: { matchExpressions: [{ key: '.status.conditions.[] | select( .type == "Ready" ) | .status', operator: "NotIn", values: ["True"] }] },
            next: {
                statusTemplate: `${NODE_CONDITIONS}addresses:
- address: {{ NodeName | Quote }}
  type: Hostname
allocatable:
{{ with .status.allocatable }}{{ YAML . 1 }}{{ else }}
  cpu: "32"
  ephemeral-storage: 100Gi
  memory: 256Gi
  pods: "110"
{{ end }}
capacity:
{{ with .status.capacity }}{{ YAML . 1 }}{{ else }}
  cpu: "32"
  ephemeral-storage: 100Gi
  memory: 256Gi
  pods: "110"
{{ end }}
nodeInfo:
  architecture: amd64
  operatingSystem: linux
  kubeletVersion: {{ printf "kwok-%s" Version | Quote }}
  kubeProxyVersion: {{ printf "kwok-%s" Version | Quote }}
  containerRuntimeVersion: {{ printf "kwok-%s" Version | Quote }}
  kernelVersion: {{ printf "kwok-%s" Version | Quote }}
  bootID: ""
  machineID: ""
  osImage: ""
  systemUUID: ""
phase: Running
`,
            },
        },
    },
    {
        apiVersion: "kwok.x-k8s.io/v1alpha1",
        kind: "Stage",
        metadata: { name: "node-heartbeat-with-lease" },
        spec: {
            resourceRef: { apiGroup: "v1", kind: "Node" },
            selector: {
                matchExpressions: [
                    { key: ".status.phase", operator: "In", values: ["Running"] },
                    { key: '.status.conditions.[] | select( .type == "Ready" ) | .status', operator: "In", values: ["True"] },
                ],
            },
            delay: { durationMilliseconds: 600000, jitterDurationMilliseconds: 610000 },
            next: {
                statusTemplate: NODE_CONDITIONS,
            },
        },
    },
    {
        apiVersion: "kwok.x-k8s.io/v1alpha1",
        kind: "Stage",
        metadata: { name: "pod-ready" },
        spec: {
            resourceRef: { apiGroup: "v1", kind: "Pod" },
            selector: {
                matchExpressions: [
                    { key: ".metadata.deletionTimestamp", operator: "DoesNotExist" },
                    { key: ".status.phase", operator: "In", values: ["Pending"] },
                    { key: '.status.conditions.[] | select( .type == "Ready" ) | .status', operator: "NotIn", values: ["True"] },
                ],
            },
            next: {
                statusTemplate: `{{ $now := Now }}
conditions:
- lastTransitionTime: {{ $now | Quote }}
  status: "True"
  type: Initialized
- lastTransitionTime: {{ $now | Quote }}
  status: "True"
  type: Ready
- lastTransitionTime: {{ $now | Quote }}
  status: "True"
  type: ContainersReady
{{ range .spec.readinessGates }}
- lastTransitionTime: {{ $now | Quote }}
  status: "True"
  type: {{ .conditionType | Quote }}
{{ end }}
containerStatuses:
{{ range .spec.containers }}
- image: {{ .image | Quote }}
  name: {{ .name | Quote }}
  ready: true
  started: true
  restartCount: 0
  state:
    running:
      startedAt: {{ $now | Quote }}
{{ end }}
initContainerStatuses:
{{ range .spec.initContainers }}
- image: {{ .image | Quote }}
  name: {{ .name | Quote }}
  ready: true
  restartCount: 0
  {{ if eq .restartPolicy "Always" }}
  started: true
  state:
    running:
      startedAt: {{ $now | Quote }}
  {{ else }}
  state:
    terminated:
      exitCode: 0
      finishedAt: {{ $now | Quote }}
      reason: Completed
      startedAt: {{ $now | Quote }}
  {{ end }}
{{ end }}
{{ with NodeIPsWith .spec.nodeName }}
hostIP: {{ index . 0 | Quote }}
hostIPs:
{{ range . }}
- ip: {{ . | Quote }}
{{ end }}
{{ end }}
{{ with PodIPsWith .spec.nodeName ( or .spec.hostNetwork false ) ( or .metadata.uid "" ) ( or .metadata.name "" ) ( or .metadata.namespace "" ) }}
podIP: {{ index . 0 | Quote }}
podIPs:
{{ range . }}
- ip: {{ . | Quote }}
{{ end }}
{{ end }}
phase: Running
startTime: {{ $now | Quote }}
`,
            },
        },
    },
    {
        apiVersion: "kwok.x-k8s.io/v1alpha1",
        kind: "Stage",
        metadata: { name: "pod-delete" },
        spec: {
            resourceRef: { apiGroup: "v1", kind: "Pod" },
            selector: { matchExpressions: [{ key: ".metadata.deletionTimestamp", operator: "Exists" }] },
            next: { delete: true },
        },
    },
];

// ---------------------------------------------------------------------------------------------------
// One control plane

export interface ControlPlaneOptions {
    /** Fake Nodes to create (named `<cluster>-node-<i>`); default 2. */
    nodes?: number;
    /** The API server's authorizers (default RBAC alone); a real kubelet needs Node first. */
    authorizationModes?: string[];
    /** Extra kube-apiserver flags (appended; a later flag wins). */
    apiserverArgs?: string[];
    /** Bound for the whole start-up; default 120 s. */
    startTimeoutMs?: number;
}

export interface KubeResponse {
    status: number;
    body: any;
}

function tail(text: string, lines = 25): string {
    return text.trimEnd().split("\n").slice(-lines).join("\n");
}

/** etcd + kube-apiserver + kube-controller-manager + kube-scheduler + kwok for one cluster, under `dir`. */
export class ControlPlane {
    readonly ports = { etcdClient: 0, etcdPeer: 0, apiserver: 0, controllerManager: 0, scheduler: 0 };
    private pki?: Pki;
    private readonly group = new ProcessGroup();
    private readonly procs: Partial<Record<KubeBinary, Started>> = {};

    constructor(
        readonly name: string,
        readonly dir: string,
        readonly binaries: KubeBinaries,
        readonly options: ControlPlaneOptions = {},
    ) {}

    /** https://127.0.0.1:<port> of the API server (known once start() has begun). */
    get server(): string {
        return `https://127.0.0.1:${this.ports.apiserver}`;
    }

    /** PEM of the CA (signs the API server's certificate and the admin client certificate). */
    get caPem(): string {
        return fs.readFileSync(this.requirePki().caCert, "utf8");
    }

    /** Admin client credentials (CN=kube-admin, O=system:masters). */
    get admin(): { certPem: string; keyPem: string; certFile: string; keyFile: string } {
        const pki = this.requirePki();
        return {
            certPem: fs.readFileSync(pki.adminCert, "utf8"),
            keyPem: fs.readFileSync(pki.adminKey, "utf8"),
            certFile: pki.adminCert,
            keyFile: pki.adminKey,
        };
    }

    /** Paths of the CA certificate and key, the admin client certificate and key, and the service-account keys. */
    get pkiFiles(): Pki {
        return this.requirePki();
    }

    /** Log of one component (for assertion messages). */
    log(binary: KubeBinary): string {
        return this.procs[binary]?.log() ?? "";
    }

    async start(): Promise<void> {
        const timeoutMs = this.options.startTimeoutMs ?? 120_000;
        const deadline = Date.now() + timeoutMs;
        const left = () => Math.max(1_000, deadline - Date.now());
        try {
            await this.startInner(left);
        } catch (err) {
            const logs = KUBE_BINARIES.filter((b) => this.procs[b])
                .map((b) => `--- ${b} (${this.procs[b]!.logFile}) ---\n${tail(this.log(b))}`)
                .join("\n");
            await this.stop();
            throw new Error(`control plane ${this.name} did not start: ${err instanceof Error ? err.message : String(err)}\n${logs}`, { cause: err });
        }
    }

    private async startInner(left: () => number): Promise<void> {
        fs.mkdirSync(this.dir, { recursive: true });
        for (const k of Object.keys(this.ports) as (keyof ControlPlane["ports"])[]) this.ports[k] = await freePort();
        const pki = (this.pki = makePki(path.join(this.dir, "pki"), this.name));
        const kubeconfig = path.join(this.dir, "admin.kubeconfig");
        fs.writeFileSync(kubeconfig, YAML.stringify(kubeconfigFor({ [this.name]: this })));
        const env = { ...process.env, HOME: this.dir };

        const etcdUrl = `http://127.0.0.1:${this.ports.etcdClient}`;
        const peerUrl = `http://127.0.0.1:${this.ports.etcdPeer}`;
        this.procs.etcd = this.spawn("etcd", [
            "--name=default",
            `--data-dir=${path.join(this.dir, "etcd")}`,
            `--listen-client-urls=${etcdUrl}`,
            `--advertise-client-urls=${etcdUrl}`,
            `--listen-peer-urls=${peerUrl}`,
            `--initial-advertise-peer-urls=${peerUrl}`,
            `--initial-cluster=default=${peerUrl}`,
            "--unsafe-no-fsync=true",
            "--log-level=warn",
        ]);
        await waitFor(`etcd of ${this.name}`, left(), async () => {
            this.assertRunning("etcd");
            const res = await httpGet(`${etcdUrl}/health`);
            return res.status === 200 && JSON.parse(res.body).health === "true" ? true : undefined;
        });

        this.procs["kube-apiserver"] = this.spawn("kube-apiserver", [
            `--etcd-servers=${etcdUrl}`,
            `--cert-dir=${path.join(this.dir, "apiserver-certs")}`,
            `--tls-cert-file=${pki.servingCert}`,
            `--tls-private-key-file=${pki.servingKey}`,
            `--client-ca-file=${pki.caCert}`,
            `--secure-port=${this.ports.apiserver}`,
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            "--service-cluster-ip-range=10.96.0.0/24",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            `--service-account-key-file=${pki.saPub}`,
            `--service-account-signing-key-file=${pki.saKey}`,
            `--authorization-mode=${(this.options.authorizationModes ?? ["RBAC"]).join(",")}`,
            "--allow-privileged=true",
            "--profiling=false",
            ...(this.options.apiserverArgs ?? []),
        ]);
        await waitFor(`kube-apiserver of ${this.name} (/readyz)`, left(), async () => {
            this.assertRunning("kube-apiserver");
            const res = await this.request("GET", "/readyz", undefined, 5_000);
            return res.status === 200 ? true : undefined;
        });

        const common = [`--kubeconfig=${kubeconfig}`, "--bind-address=127.0.0.1", "--leader-elect=false"];
        this.procs["kube-controller-manager"] = this.spawn("kube-controller-manager", [
            ...common,
            `--secure-port=${this.ports.controllerManager}`,
            `--cert-dir=${path.join(this.dir, "controller-manager-certs")}`,
            `--service-account-private-key-file=${pki.saKey}`,
            `--root-ca-file=${pki.caCert}`,
            `--cluster-signing-cert-file=${pki.caCert}`,
            `--cluster-signing-key-file=${pki.caKey}`,
            "--service-cluster-ip-range=10.96.0.0/24",
        ]);
        this.procs["kube-scheduler"] = this.spawn("kube-scheduler", [
            ...common,
            `--secure-port=${this.ports.scheduler}`,
            `--cert-dir=${path.join(this.dir, "scheduler-certs")}`,
        ]);
        const kwokConfig = path.join(this.dir, "kwok.yaml");
        fs.writeFileSync(kwokConfig, STAGES.map((s) => YAML.stringify(s)).join("---\n"));
        this.procs.kwok = this.spawn(
            "kwok",
            // Only the fake Nodes below: a real kubelet's Node (test/e2e/support/real-node.ts) is its own.
            [
                `--kubeconfig=${kubeconfig}`,
                `--config=${kwokConfig}`,
                `--manage-nodes-with-annotation-selector=${KWOK_NODE_ANNOTATION}=fake`,
                "--cidr=10.244.0.0/16",
                "--node-lease-duration-seconds=40",
            ],
            // kwok also reads $KWOK_WORKDIR/kwok.yaml (default ~/.kwok) when it exists: keep it in dir.
            { ...env, KWOK_WORKDIR: path.join(this.dir, "kwok") },
        );
        for (const [binary, port] of [
            ["kube-controller-manager", this.ports.controllerManager],
            ["kube-scheduler", this.ports.scheduler],
        ] as const) {
            await waitFor(`${binary} of ${this.name} (/healthz)`, left(), async () => {
                this.assertRunning(binary);
                const res = await httpGet(`https://127.0.0.1:${port}/healthz`);
                return res.status === 200 ? true : undefined;
            });
        }

        const nodes = Array.from({ length: this.options.nodes ?? 2 }, (_, i) => `${this.name}-node-${i}`);
        for (const node of nodes) {
            const res = await this.request("POST", "/api/v1/nodes", {
                apiVersion: "v1",
                kind: "Node",
                metadata: {
                    name: node,
                    labels: { "kubernetes.io/hostname": node, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64", type: "kwok" },
                    annotations: { [KWOK_NODE_ANNOTATION]: "fake", "node.alpha.kubernetes.io/ttl": "0" },
                },
            });
            if (res.status !== 201) throw new Error(`creating Node ${node}: HTTP ${res.status} ${JSON.stringify(res.body)}`);
        }
        // Ready (kwok) and untainted (the node lifecycle controller lifts not-ready), so Pods schedule.
        await waitFor(`${nodes.length} Ready, untainted Nodes in ${this.name}`, left(), async () => {
            this.assertRunning("kwok");
            const res = await this.request("GET", "/api/v1/nodes");
            const ready = (res.body.items ?? []).filter(
                (n: any) => n.status?.conditions?.some((c: any) => c.type === "Ready" && c.status === "True") && (n.spec?.taints ?? []).length === 0,
            );
            return ready.length >= nodes.length ? true : undefined;
        });
        // The ServiceAccount admission plugin refuses Pods until the controller manager made `default`.
        await waitFor(`ServiceAccount default/default in ${this.name}`, left(), async () => {
            const res = await this.request("GET", "/api/v1/namespaces/default/serviceaccounts/default");
            return res.status === 200 ? true : undefined;
        });
    }

    /** Stops kwok, scheduler, controller manager, API server, then etcd. Safe to call twice or after a failed start. */
    async stop(): Promise<void> {
        for (const b of ["kwok", "kube-scheduler", "kube-controller-manager", "kube-apiserver", "etcd"] as const) {
            await this.procs[b]?.stop();
        }
        await this.group.stopAll();
    }

    /** One request to the API server as the admin; `body` is sent as JSON. Never rejects on an HTTP status. */
    request(method: string, pathname: string, body?: unknown, timeoutMs = 30_000): Promise<KubeResponse> {
        const pki = this.requirePki();
        const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
        const contentType = method === "PATCH" ? "application/merge-patch+json" : "application/json";
        return new Promise((resolve, reject) => {
            const req = https.request(
                {
                    host: "127.0.0.1",
                    port: this.ports.apiserver,
                    path: pathname,
                    method,
                    ca: fs.readFileSync(pki.caCert),
                    cert: fs.readFileSync(pki.adminCert),
                    key: fs.readFileSync(pki.adminKey),
                    timeout: timeoutMs,
                    headers: { accept: "application/json", ...(data ? { "content-type": contentType, "content-length": data.length } : {}) },
                },
                (res) => {
                    let text = "";
                    res.setEncoding("utf8");
                    res.on("data", (d) => (text += d));
                    res.on("end", () => {
                        let parsed: unknown = text;
                        try {
                            parsed = JSON.parse(text);
                        } catch {
                            // plain-text endpoints (/readyz, /healthz)
                        }
                        resolve({ status: res.statusCode ?? 0, body: parsed });
                    });
                },
            );
            req.on("timeout", () => req.destroy(new Error(`timeout after ${timeoutMs} ms: ${method} ${pathname} on ${this.name}`)));
            req.on("error", reject);
            req.end(data);
        });
    }

    private spawn(binary: KubeBinary, args: string[], env: NodeJS.ProcessEnv = { ...process.env, HOME: this.dir }): Started {
        return this.group.start(this.binaries.paths[binary], args, { logFile: path.join(this.dir, `${binary}.log`), cwd: this.dir, env });
    }

    private assertRunning(binary: KubeBinary): void {
        const child = this.procs[binary]?.child;
        if (child && (child.exitCode !== null || child.signalCode !== null)) {
            throw new FatalWaitError(`${binary} exited (${child.exitCode ?? child.signalCode})`);
        }
    }

    private requirePki(): Pki {
        if (!this.pki) throw new Error(`control plane ${this.name} has not been started`);
        return this.pki;
    }
}

function httpGet(url: string, timeoutMs = 5_000): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
        const u = new URL(url);
        const get = u.protocol === "https:" ? https.get : http.get;
        // The controller manager and scheduler serve /healthz with a self-signed certificate.
        const req = get(url, { timeout: timeoutMs, rejectUnauthorized: false }, (res) => {
            let body = "";
            res.setEncoding("utf8");
            res.on("data", (d) => (body += d));
            res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
        });
        req.on("timeout", () => req.destroy(new Error(`timeout after ${timeoutMs} ms: ${url}`)));
        req.on("error", reject);
    });
}

// ---------------------------------------------------------------------------------------------------
// Several control planes

/** Independent control planes, one per name, started concurrently, each under its own directory. */
export class KubeClusters {
    readonly dir: string;
    readonly planes: Record<string, ControlPlane> = {};
    private readonly keepDir: boolean;

    constructor(
        readonly names: string[],
        binaries: KubeBinaries = kubeBinaries(),
        options: ControlPlaneOptions & { dir?: string; keepDir?: boolean } = {},
    ) {
        if (new Set(names).size !== names.length || names.length === 0) throw new Error(`cluster names must be distinct and non-empty: ${names.join(",")}`);
        this.dir = options.dir ?? tempDir("kube");
        this.keepDir = options.keepDir ?? false;
        for (const name of names) this.planes[name] = new ControlPlane(name, path.join(this.dir, name), binaries, options);
    }

    get(name: string): ControlPlane {
        const plane = this.planes[name];
        if (!plane) throw new Error(`no control plane ${name} (have ${this.names.join(", ")})`);
        return plane;
    }

    /** Starts every control plane; if any fails, stops all of them and throws (with log tails). */
    async start(): Promise<void> {
        const results = await Promise.allSettled(this.names.map((n) => this.planes[n].start()));
        const failed = results.filter((r): r is PromiseRejectedResult => r.status === "rejected");
        if (failed.length > 0) {
            await this.stop(true);
            throw new Error(failed.map((f) => (f.reason instanceof Error ? f.reason.message : String(f.reason))).join("\n\n"));
        }
    }

    /** Stops everything; removes the directory unless keepDir was set (or `keepLogs`, after a failure). */
    async stop(keepLogs = false): Promise<void> {
        await Promise.all(this.names.map((n) => this.planes[n].stop()));
        if (!this.keepDir && !keepLogs) fs.rmSync(this.dir, { recursive: true, force: true });
    }

    /** Writes one kubeconfig with a context per cluster name; see writeKubeconfig. */
    writeKubeconfig(file: string, currentContext = this.names[0], credentials?: (name: string, plane: ControlPlane) => UserCredentials): string {
        return writeKubeconfig(file, this.planes, currentContext, credentials);
    }
}

// ---------------------------------------------------------------------------------------------------
// kubeconfig

/** Client certificate and key files of a user of one control plane. */
export interface UserCredentials {
    certFile: string;
    keyFile: string;
}

/** A client certificate for `user` (its CN; no groups) from the plane's CA: a user that RBAC alone authorises. */
export function issueUserCredentials(plane: ControlPlane, user: string, dir: string): UserCredentials {
    fs.mkdirSync(dir, { recursive: true });
    const base = path.join(dir, `${plane.name}-${user}`);
    openssl(`req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ${base}.key -out ${base}.csr -subj /CN=${user}`, dir);
    fs.writeFileSync(`${base}.ext`, "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n");
    const { caCert, caKey } = plane.pkiFiles;
    openssl(`x509 -req -in ${base}.csr -CA ${caCert} -CAkey ${caKey} -CAcreateserial -days 1 -sha256 -extfile ${base}.ext -out ${base}.crt`, dir);
    return { certFile: `${base}.crt`, keyFile: `${base}.key` };
}

/**
 * A kubeconfig object: cluster, user and context named after each key, CA and credentials embedded (the admin's
 * unless `credentials` names others).
 */
export function kubeconfigFor(
    contexts: Record<string, ControlPlane>,
    currentContext = Object.keys(contexts)[0],
    credentials: (name: string, plane: ControlPlane) => UserCredentials = (_name, p) => ({ certFile: p.pkiFiles.adminCert, keyFile: p.pkiFiles.adminKey }),
): object {
    const b64 = (file: string) => fs.readFileSync(file).toString("base64");
    const entries = Object.entries(contexts);
    return {
        apiVersion: "v1",
        kind: "Config",
        clusters: entries.map(([name, p]) => ({ name, cluster: { server: p.server, "certificate-authority-data": b64(p.pkiFiles.caCert) } })),
        users: entries.map(([name, p]) => {
            const user = credentials(name, p);
            return { name, user: { "client-certificate-data": b64(user.certFile), "client-key-data": b64(user.keyFile) } };
        }),
        contexts: entries.map(([name]) => ({ name, context: { cluster: name, user: name } })),
        "current-context": currentContext,
        preferences: {},
    };
}

/** Writes `kubeconfigFor(contexts, …)` to `file` (mode 0600) and returns the path. */
export function writeKubeconfig(
    file: string,
    contexts: Record<string, ControlPlane>,
    currentContext?: string,
    credentials?: (name: string, plane: ControlPlane) => UserCredentials,
): string {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, YAML.stringify(kubeconfigFor(contexts, currentContext, credentials)), { mode: 0o600 });
    return file;
}

// ---------------------------------------------------------------------------------------------------
// What the observed clusters already run, and what their ingress controller would do

/** POSTs `body`; an object that already exists is fine. */
export async function createObject(plane: ControlPlane, pathname: string, body: object): Promise<void> {
    const res = await plane.request("POST", pathname, body);
    if (res.status !== 201 && res.status !== 409) {
        throw new Error(`POST ${pathname} on ${plane.name}: ${res.status} ${JSON.stringify(res.body).slice(0, 300)}`);
    }
}

/** What each observed cluster already runs: a sidecar Deployment (kwok makes its pod Ready) and its Service. */
export async function fakeSidecar(plane: ControlPlane, sidecar: { namespace: string; service: string }): Promise<void> {
    const labels = { app: "thanos-sidecar" };
    await createObject(plane, "/api/v1/namespaces", { metadata: { name: sidecar.namespace } });
    await createObject(plane, `/apis/apps/v1/namespaces/${sidecar.namespace}/deployments`, {
        metadata: { name: "prometheus" },
        spec: {
            replicas: 1,
            selector: { matchLabels: labels },
            template: { metadata: { labels }, spec: { containers: [{ name: "sidecar", image: "thanos:v0.42.4" }] } },
        },
    });
    await createObject(plane, `/api/v1/namespaces/${sidecar.namespace}/services`, {
        metadata: { name: sidecar.service },
        spec: { selector: labels, ports: [{ name: "grpc", port: 10901, targetPort: 10901 }] },
    });
}

/**
 * Stands in for ingress-nginx's status updates, which the provider waits for: gives every Ingress of ours a
 * load-balancer address. (There is no ingress controller in these clusters; the data path through nginx is
 * proven by the other end-to-end tests.)
 */
export function fakeIngressStatus(planes: ControlPlane[]): { stop: () => Promise<void> } {
    const selector = encodeURIComponent("app.kubernetes.io/part-of=envoy-thanos");
    let running = true;
    const loop = (async () => {
        for (let round = 0; running && round < 20_000; round++) {
            for (const plane of planes) {
                const list = await plane.request("GET", `/apis/networking.k8s.io/v1/ingresses?labelSelector=${selector}`).catch(() => undefined);
                for (const ing of list?.body?.items ?? []) {
                    if (!ing.status?.loadBalancer?.ingress?.length) {
                        await plane
                            .request("PATCH", `/apis/networking.k8s.io/v1/namespaces/${ing.metadata.namespace}/ingresses/${ing.metadata.name}/status`, {
                                status: { loadBalancer: { ingress: [{ ip: "127.0.0.1" }] } },
                            })
                            .catch(() => undefined);
                    }
                }
            }
            await sleep(300);
        }
    })();
    return {
        stop: async () => {
            running = false;
            await loop;
        },
    };
}
