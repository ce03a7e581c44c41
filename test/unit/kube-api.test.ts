import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as https from "node:https";
import type { AddressInfo } from "node:net";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import * as YAML from "yaml";
import { kubeGet } from "../../components/kube-api";
import { OpensslCa } from "../../tools/pki/openssl-ca";

/**
 * kubeGet with each kind of kubeconfig credential, against a local HTTPS server that answers like an API server (the
 * client-certificate-data form runs against a real one in test/e2e/gateway-api-crds.test.ts).
 */

const b64 = (text: string) => Buffer.from(text).toString("base64");

describe("kubeGet: the program's read-only GET with a cluster's kubeconfig credentials", () => {
    const ca = OpensslCa.create(undefined, "kube-api");
    const serverCert = ca.server("localhost");
    const client = ca.client("kube-user");
    const dir = fs.mkdtempSync(path.join(ca.dir, "kubeconfig-"));
    /** What the server saw of each request: its path and how it authenticated. */
    const seen: { path: string; auth: string }[] = [];
    let server: https.Server;
    let url: string;

    before(async () => {
        server = https.createServer(
            { cert: serverCert.certificate, key: serverCert.privateKey, ca: ca.ca.certificate, requestCert: true, rejectUnauthorized: false },
            (req, res) => {
                const peer = (req.socket as import("node:tls").TLSSocket).getPeerCertificate();
                const auth = req.headers.authorization ?? (peer?.subject?.CN ? `cert ${peer.subject.CN}` : "none");
                seen.push({ path: req.url ?? "", auth });
                const found = req.url?.endsWith("/found") === true;
                res.writeHead(found ? 200 : 404, { "content-type": "application/json" });
                res.end(JSON.stringify(found ? { kind: "Thing" } : { kind: "Status", code: 404 }));
            },
        );
        await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
        url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });

    after(async () => {
        await new Promise((done) => server.close(done));
    });

    /** A kubeconfig document with one context `ctx` for the given user entry and cluster extras. */
    const kubeconfig = (user: Record<string, unknown>, cluster: Record<string, unknown> = {}) =>
        YAML.stringify({
            apiVersion: "v1",
            kind: "Config",
            "current-context": "ctx",
            contexts: [{ name: "ctx", context: { cluster: "c", user: "u" } }],
            clusters: [
                { name: "c", cluster: { server: url, "certificate-authority-data": b64(ca.ca.certificate), "tls-server-name": "localhost", ...cluster } },
            ],
            users: [{ name: "u", user }],
        });
    const last = () => seen[seen.length - 1];

    it("authenticates with a token, a token file, basic auth and an exec plugin, and reads the status and body", async () => {
        assert.deepEqual(await kubeGet({ kind: "kubeconfig", kubeconfig: kubeconfig({ token: "t0ken" }) }, "/apis/x/found"), {
            status: 200,
            body: { kind: "Thing" },
        });
        assert.equal(last().auth, "Bearer t0ken");
        const tokenFile = path.join(dir, "token");
        fs.writeFileSync(tokenFile, "from-file\n");
        await kubeGet({ kind: "kubeconfig", kubeconfig: kubeconfig({ tokenFile }) }, "/apis/x/found");
        assert.equal(last().auth, "Bearer from-file");
        await kubeGet({ kind: "kubeconfig", kubeconfig: kubeconfig({ username: "admin", password: "pw" }) }, "/apis/x/found");
        assert.equal(last().auth, `Basic ${b64("admin:pw")}`);
        const plugin = path.join(dir, "exec-plugin.sh");
        fs.writeFileSync(plugin, '#!/bin/sh\necho "{\\"apiVersion\\":\\"$API\\",\\"kind\\":\\"ExecCredential\\",\\"status\\":{\\"token\\":\\"exec-$1\\"}}"\n', {
            mode: 0o755,
        });
        const exec = {
            apiVersion: "client.authentication.k8s.io/v1",
            command: plugin,
            args: ["arg"],
            env: [{ name: "API", value: "client.authentication.k8s.io/v1" }],
        };
        const result = await kubeGet({ kind: "kubeconfig", kubeconfig: kubeconfig({ exec }) }, "/apis/x/missing");
        assert.ok("status" in result && result.status === 404);
        assert.equal(last().auth, "Bearer exec-arg");
    });

    it("presents a client certificate from files, relative to the kubeconfig, found through $KUBECONFIG by context", async () => {
        fs.copyFileSync(client.certificatePath, path.join(dir, "user.crt"));
        fs.copyFileSync(client.privateKeyPath, path.join(dir, "user.key"));
        const file = path.join(dir, "config");
        fs.writeFileSync(
            file,
            kubeconfig({ "client-certificate": "user.crt", "client-key": "user.key" }).replace("current-context: ctx", "current-context: nowhere"),
        );
        const saved = process.env.KUBECONFIG;
        process.env.KUBECONFIG = [path.join(dir, "absent"), file].join(path.delimiter);
        try {
            const result = await kubeGet({ kind: "context", context: "ctx" }, "/apis/x/found");
            assert.ok("status" in result && result.status === 200, JSON.stringify(result));
        } finally {
            process.env.KUBECONFIG = saved;
        }
        assert.equal(last().auth, "cert envoy-thanos-client", "the client certificate (its CN) was presented");
    });

    it("keeps a server URL's path prefix", async () => {
        await kubeGet({ kind: "kubeconfig", kubeconfig: kubeconfig({ token: "t" }, { server: `${url}/k8s/clusters/c-1/` }) }, "/apis/x/found");
        assert.equal(last().path, "/k8s/clusters/c-1/apis/x/found");
    });

    it("reports what it cannot do as unavailable: an unknown context, an untrusted server, an auth-provider, a closed port", async () => {
        const unavailable = async (connection: Parameters<typeof kubeGet>[0]) => {
            const result = await kubeGet(connection, "/apis/x/found");
            assert.ok("unavailable" in result, JSON.stringify(result));
            return result.unavailable;
        };
        assert.match(await unavailable({ kind: "kubeconfig", kubeconfig: kubeconfig({ token: "t" }), context: "other" }), /no context other/);
        const otherCa = OpensslCa.create(undefined, "kube-api-other");
        await unavailable({ kind: "kubeconfig", kubeconfig: kubeconfig({ token: "t" }, { "certificate-authority-data": b64(otherCa.ca.certificate) }) });
        await unavailable({ kind: "kubeconfig", kubeconfig: kubeconfig({ "auth-provider": { name: "oidc" } }) });
        await unavailable({ kind: "kubeconfig", kubeconfig: kubeconfig({ token: "t" }, { server: "https://127.0.0.1:1" }) });
        await unavailable({ kind: "none" });
    });
});
