import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { buildModel, Model } from "../../components/config/model";
import { caSpec, clientSpec } from "../../components/pki/spec";
import { INGRESS_ANNOTATION, observedNames } from "../../components/names";
import { ingressAnnotations, matchCnPattern } from "../../components/observed/ingress";
import { Issued, OpensslCa } from "../../tools/pki/openssl-ca";
import { requireFrontDoor } from "./support/front-doors";
import { Backend, QuerierClient } from "./support/grpc";
import { KubeClusters, writeKubeconfig } from "./support/kube";
import { TRANSLATED_ANNOTATIONS } from "./support/nginx";
import { freePort, ProcessGroup, requireTool, tempDir, waitFor } from "./support/processes";
import { PulumiProject, requirePulumi } from "./support/pulumi";
import { rawData, readAccessLog, TRAEFIK_BUILD_COMMAND, TRAEFIK_GAPS, TraefikFrontDoor, TraefikInstance } from "./support/traefik";

/**
 * Traefik v3.7's ingress-nginx provider as the front door of an observed cluster, beyond the shared data-path checks
 * (datapath.test.ts runs those through it): which of the program's annotations Traefik reads and how it treats
 * each, as observed; and `pulumi up` applying the program to a cluster where Traefik then serves the Ingress.
 */

const ROOT = path.resolve(__dirname, "../..");
const ready = requireFrontDoor("traefik");
const skip = ready === true ? false : ready.skip;
const HOST = "cl1m.example.com";

/** The directory of Traefik's module source in the module cache (tools/traefik/build.sh downloaded it), or a skip reason. */
function traefikSource(): string | { skip: string } {
    const go = requireTool("go", "apt-get install golang (or the machine's Go)");
    if (typeof go === "object") return go;
    const dir = execFileSync("go", ["list", "-m", "-f", "{{.Dir}}", "github.com/traefik/traefik/v3"], {
        cwd: path.join(ROOT, "tools/traefik"),
        encoding: "utf8",
        env: { ...process.env, GOFLAGS: "-mod=readonly" },
    }).trim();
    if (dir !== "" && fs.existsSync(dir)) return dir;
    const message = `Traefik's module source is not in the Go module cache; fetch it with: ${TRAEFIK_BUILD_COMMAND}`;
    if (process.env.CI === "true") throw new Error(`${message} (CI never skips end-to-end tests)`);
    return { skip: message };
}

/** The annotations Traefik's provider reads: the `annotation:"…"` struct tags of its IngressConfig. */
function traefikAnnotations(source: string): Set<string> {
    const file = path.join(source, "pkg/provider/kubernetes/ingress-nginx/annotations.go");
    const keys = [...fs.readFileSync(file, "utf8").matchAll(/`annotation:"([^"]+)"`/g)].map((m) => m[1]);
    assert.ok(keys.length > 50, `found only ${keys.length} annotation tags in ${file}: has Traefik moved them?`);
    return new Set(keys);
}

function modelFor(dir: string, port: number): Model {
    return buildModel(
        { renderDirectory: dir, clusters: [{ name: "cl1", host: HOST, port: 10002, address: `localhost:${port}` }] },
        { checkSecretMaterial: false, now: new Date() },
    );
}

const source = traefikSource();

describe("who interprets the program's Ingress annotations", { skip: typeof source === "object" ? source.skip : false }, () => {
    it("the program emits exactly the annotations the nginx translator renders; Traefik reads each, or a named gap says it does not", (t) => {
        const model = modelFor(tempDir("annotations"), 443);
        const emitted = Object.keys(ingressAnnotations({ cluster: model.clusters[0], verifyDepth: 1, clientIdentity: model.clientIdentity })).sort();
        assert.deepEqual(emitted, Object.values(INGRESS_ANNOTATION).sort(), "ingressAnnotations emits the program's own set (INGRESS_ANNOTATION)");
        assert.deepEqual([...TRANSLATED_ANNOTATIONS].sort(), emitted, "the nginx translator renders exactly what the program emits");
        const read = traefikAnnotations(source as string);
        const unread = emitted.filter((key) => !read.has(key));
        const named = emitted.filter((key) => TRAEFIK_GAPS.some((gap) => gap.startsWith(`${key} `)));
        assert.deepEqual(unread, named, "every annotation Traefik does not read is a named gap, and no gap names one it reads");
        for (const key of emitted) t.diagnostic(`${key}: ${read.has(key) ? "read by Traefik" : "NOT read by Traefik"}`);
    });
});

describe("Traefik serving the program's Ingress: each annotation as Traefik treats it", { skip }, () => {
    const group = new ProcessGroup();
    const dir = skip ? "" : tempDir("traefik");
    const ca = skip ? undefined! : OpensslCa.create(path.join(dir, "pki"), "traefik");
    const backend = new Backend("cl1");
    let door: TraefikFrontDoor;
    let instance: TraefikInstance;
    let model: Model;
    let port: number;
    let client: Issued;

    /** A gRPC client with mTLS straight to Traefik's websecure entrypoint, as Envoy would dial it. */
    const direct = (cert: Issued = client) =>
        new QuerierClient(`127.0.0.1:${port}`, {
            credentials: grpc.credentials.createSsl(Buffer.from(ca.ca.certificate), Buffer.from(cert.privateKey), Buffer.from(cert.certificate)),
            serverName: HOST,
        });

    before(async () => {
        const backendPort = await freePort();
        port = await freePort();
        await backend.start(backendPort);
        model = modelFor(dir, port);
        client = ca.client();
        door = new TraefikFrontDoor({ dir: path.join(dir, "traefik"), group });
        await door.add({
            cluster: model.clusters[0],
            clientIdentity: model.clientIdentity,
            server: ca.server(HOST),
            clientCa: ca.ca.certificate,
            backendAddress: `127.0.0.1:${backendPort}`,
            port,
        });
        instance = door.instance("cl1");
    });
    after(async () => {
        await door?.stop();
        await group.stopAll();
        await backend.stop();
    });

    it(`${INGRESS_ANNOTATION.backendProtocol}: GRPC becomes an h2c service to the sidecar's endpoint`, async () => {
        const raw = await rawData(instance);
        const urls = Object.values<any>(raw.services ?? {}).flatMap((s) => (s.loadBalancer?.servers ?? []).map((srv: any) => srv.url as string));
        assert.ok(urls.length > 0 && urls.every((u) => u.startsWith("h2c://10.244.0.10:")), JSON.stringify(urls));
        const c = direct();
        try {
            assert.deepEqual((await c.storeInfo()).labels, [{ name: "cluster", value: "cl1" }]);
            assert.equal((await c.series({ frames: 3 }, 10_000)).frames, 3);
        } finally {
            c.close();
        }
    });

    it(`${INGRESS_ANNOTATION.authTlsSecret} ("namespace/name") and ${INGRESS_ANNOTATION.authTlsVerifyClient}: on become the router's TLS option, which refuses what it should`, async () => {
        const raw = await rawData(instance);
        const routers = Object.values<any>(raw.routers ?? {}).filter((r) => String(r.rule).includes(HOST) && r.tls !== undefined);
        assert.ok(routers.length > 0, JSON.stringify(raw.routers));
        const secret = observedNames("cl1").clientCaSecret;
        for (const router of routers) {
            // The option's name is Traefik's key for (Secret namespace, Secret name, client auth type).
            assert.match(String(router.tls.options), new RegExp(`${model.clusters[0].sidecar.namespace}-\\d+-${secret}-\\d+-require-and-verify-client-cert`));
        }
        const since = instance.traefik.log().length;
        const intruder = OpensslCa.create(path.join(dir, "intruder"), "intruder").client("intruder");
        const noCert = new QuerierClient(`127.0.0.1:${port}`, { credentials: grpc.credentials.createSsl(Buffer.from(ca.ca.certificate)), serverName: HOST });
        const otherCa = direct(intruder);
        const calls = backend.calls.length;
        try {
            await assert.rejects(noCert.storeInfo(5000), "no client certificate: refused");
            await assert.rejects(otherCa.storeInfo(5000), "a client certificate from another CA: refused");
        } finally {
            noCert.close();
            otherCa.close();
        }
        assert.equal(backend.calls.length, calls, "nothing reached the backend");
        await waitFor("Traefik to log both refused handshakes", 5000, async () => {
            const log = instance.traefik.log().slice(since);
            return /client didn't provide a certificate/.test(log) && /unknown authority|failed to verify certificate/.test(log) ? true : undefined;
        });
    });

    it(`${INGRESS_ANNOTATION.authTlsMatchCn} is ignored: a certificate of the client CA with another CN gets through`, async () => {
        const other = ca.issue("other-identity", { ...clientSpec(), commonName: "envoy-thanos-client-2", dnsNames: ["envoy-thanos-client-2"] });
        const c = direct(other);
        try {
            assert.deepEqual((await c.storeInfo()).labels, [{ name: "cluster", value: "cl1" }], "Traefik lets another identity through");
            assert.ok(
                TRAEFIK_GAPS.some((gap) => gap.startsWith(`${INGRESS_ANNOTATION.authTlsMatchCn} is ignored`)),
                "and names that gap",
            );
        } finally {
            c.close();
        }
        const logged = readAccessLog(instance.accessLogFile).at(-1);
        assert.match(logged?.TLSClientSubject ?? "", /CN=envoy-thanos-client-2/);
        assert.doesNotMatch(logged?.TLSClientSubject ?? "", new RegExp(matchCnPattern(model.clientIdentity)));
    });

    it(`${INGRESS_ANNOTATION.authTlsVerifyDepth}: 1 is ignored: Envoy's identity issued one intermediate CA below the client CA gets through`, async () => {
        const intermediate = ca.issue("intermediate", caSpec("intermediate"));
        const leafDir = path.join(dir, "depth-2");
        fs.mkdirSync(leafDir, { recursive: true });
        const openssl = (args: string[]) => execFileSync("openssl", args, { cwd: leafDir, stdio: ["ignore", "pipe", "pipe"] });
        openssl(
            ["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", "leaf.key", "-out", "leaf.csr"].concat([
                "-subj",
                `/CN=${model.clientIdentity}`,
            ]),
        );
        fs.writeFileSync(
            path.join(leafDir, "leaf.ext"),
            "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n",
        );
        openssl(
            ["x509", "-req", "-in", "leaf.csr", "-CA", intermediate.certificatePath, "-CAkey", intermediate.privateKeyPath, "-CAcreateserial"].concat([
                "-days",
                "1",
                "-sha256",
                "-extfile",
                "leaf.ext",
                "-out",
                "leaf.crt",
            ]),
        );
        // The chain as a client sends it: the leaf, then the intermediate; the client CA Secret holds only the root.
        const leaf = path.join(leafDir, "leaf");
        const chained: Issued = {
            certificate: fs.readFileSync(`${leaf}.crt`, "utf8") + intermediate.certificate,
            privateKey: fs.readFileSync(`${leaf}.key`, "utf8"),
            certificatePath: `${leaf}.crt`,
            privateKeyPath: `${leaf}.key`,
        };
        const c = direct(chained);
        try {
            assert.deepEqual((await c.storeInfo()).labels, [{ name: "cluster", value: "cl1" }], "a chain of depth 2 gets through");
        } finally {
            c.close();
        }
        assert.ok(
            TRAEFIK_GAPS.some((gap) => gap.startsWith(`${INGRESS_ANNOTATION.authTlsVerifyDepth} is ignored`)),
            "and names that gap",
        );
    });

    it(`${INGRESS_ANNOTATION.proxyReadTimeout} and ${INGRESS_ANNOTATION.proxySendTimeout} are honoured: 2 s cuts a stream silent for 4 s, the program's value keeps it`, async () => {
        const { plane } = instance;
        const ingressPath = `/apis/networking.k8s.io/v1/namespaces/${model.clusters[0].sidecar.namespace}/ingresses/${observedNames("cl1").ingress}`;
        const annotate = async (seconds: string) => {
            const res = await plane.request("PATCH", ingressPath, {
                metadata: { annotations: { [INGRESS_ANNOTATION.proxyReadTimeout]: seconds, [INGRESS_ANNOTATION.proxySendTimeout]: seconds } },
            });
            assert.equal(res.status, 200, JSON.stringify(res.body).slice(0, 300));
        };
        const silentStream = async () => {
            const c = direct();
            try {
                return await c.series({ frames: 2, initialDelayMs: 4000, intervalMs: 10, frameBytes: 64 }, 20_000).then(
                    () => "kept",
                    (err) => `cut: ${err.details ?? err}`,
                );
            } finally {
                c.close();
            }
        };
        await annotate("2");
        try {
            // Traefik applies the change within a moment; a stream started before that may still be kept.
            const outcome = await waitFor("Traefik to cut a stream silent for 4 s", 60_000, async () => {
                const result = await silentStream();
                return result.startsWith("cut") ? result : undefined;
            });
            assert.doesNotMatch(outcome, /UNIMPLEMENTED|UNAVAILABLE: No connection/, "cut mid-stream, not refused");
        } finally {
            await annotate(String(model.clusters[0].ingress.streamTimeoutSeconds));
        }
        const kept = await waitFor("Traefik to keep a stream silent for 4 s again", 60_000, async () => {
            const result = await silentStream();
            return result === "kept" ? result : undefined;
        });
        assert.equal(kept, "kept");
    });
});

describe("pulumi up applies the program; Traefik serves the Ingress it created", { skip: skip || requirePulumi() }, () => {
    const group = new ProcessGroup();
    const dir = skip ? "" : tempDir("traefik-pulumi");
    const kubeconfig = path.join(dir, "kubeconfig");
    const ca = skip ? undefined! : OpensslCa.create(path.join(dir, "pki"), "traefik-pulumi");
    const sidecar = { namespace: "monitoring", service: "prom-kube-prometheus-prometheus-thanos" };
    const backend = new Backend("cl1");
    let observer: KubeClusters;
    let door: TraefikFrontDoor;
    let project: PulumiProject;

    before(async () => {
        observer = new KubeClusters(["observer"]);
        door = new TraefikFrontDoor({ dir: path.join(dir, "traefik"), group });
        project = new PulumiProject({ KUBECONFIG: kubeconfig });
        const backendPort = await freePort();
        await backend.start(backendPort);
        const [instance] = await Promise.all([door.startCluster("cl1"), observer.start()]);
        await door.addSidecar(
            instance,
            { sidecar: { ...sidecar, port: "grpc" }, ingress: { className: "nginx", annotations: {}, streamTimeoutSeconds: 3600 } },
            `127.0.0.1:${backendPort}`,
        );
        writeKubeconfig(kubeconfig, { observer: observer.get("observer"), cl1: instance.plane });
    });
    after(async () => {
        await project?.run(["destroy", "-s", "traefik", "--yes", "--skip-preview"]);
        await door?.stop();
        await observer?.stop();
        await group.stopAll();
        await backend.stop();
    });

    it("`pulumi up` completes on the Ingress status Traefik publishes, and Traefik then carries mTLS gRPC to the sidecar", { timeout: 300_000 }, async () => {
        const client = ca.client();
        const server = ca.server(HOST);
        const pair = (i: Issued) => ({ certificate: i.certificate, privateKey: i.privateKey });
        project.writeStack("traefik", {
            observer: { context: "observer" },
            sidecar: sidecar,
            clusters: [{ name: "cl1", host: HOST, port: 10002, context: "cl1" }],
            tls: { mode: "provided", caBundle: ca.ca.certificate, client: pair(client), servers: { cl1: pair(server) } },
        });
        await project.ok(["stack", "init", "traefik"]);
        // No stand-in for the ingress controller's status update: the Kubernetes provider waits for Traefik's.
        await project.ok(["up", "-s", "traefik", "--yes", "--skip-preview"]);
        const instance = door.instance("cl1");
        const ingress = await instance.plane.request("GET", `/apis/networking.k8s.io/v1/namespaces/monitoring/ingresses/${observedNames("cl1").ingress}`);
        assert.deepEqual(ingress.body.status.loadBalancer.ingress, [{ ip: "127.0.0.1" }], "the address Traefik published");

        const port = await freePort();
        await door.serve(instance, HOST, port, server);
        const c = new QuerierClient(`127.0.0.1:${port}`, {
            credentials: grpc.credentials.createSsl(Buffer.from(ca.ca.certificate), Buffer.from(client.privateKey), Buffer.from(client.certificate)),
            serverName: HOST,
        });
        try {
            assert.deepEqual((await c.storeInfo()).labels, [{ name: "cluster", value: "cl1" }]);
        } finally {
            c.close();
        }
        assert.equal(backend.calls.at(-1)?.authority, HOST);
    });
});
