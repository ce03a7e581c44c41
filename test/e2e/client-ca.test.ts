import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { Issued, OpensslCa } from "../../tools/pki/openssl-ca";
import { Backend } from "./support/grpc";
import { IngressObject, Nginx, SecretStore, translateIngress } from "./support/nginx";
import { freePort, ProcessGroup, requireTool, tempDir } from "./support/processes";
import { PulumiProject, requirePulumi } from "./support/pulumi";
import { find, readRendered, secretData } from "./support/rendered";

/**
 * tls.clientCaBundle under the real engine and a real nginx: the organisation's CA signs the servers and other client
 * certificates, a CA of its own signs only Envoy's. With clientCaBundle set, the rendered client CA Secret carries
 * only that CA, and nginx, configured from the rendered Ingress and Secrets, lets Envoy's certificate through and
 * refuses another certificate the organisation's CA signed (with the same CN, so the CN pin does not decide it).
 */

const missingPulumi = requirePulumi();
const tools = [requireTool("nginx", "apt-get install nginx"), requireTool("curl", "apt-get install curl")];
const missingTool = tools.find((t): t is { skip: string } => typeof t === "object");
const skip = missingPulumi || (missingTool ? missingTool.skip : false);

const STACK = "clientca";
const HOST = "cl1m.example.com";

describe("tls.clientCaBundle: the front door trusts only the client CA (real engine, real nginx)", { skip }, () => {
    const dir = skip ? "" : tempDir("client-ca-e2e");
    const renderDir = path.join(dir, "rendered");
    const project = skip ? undefined! : new PulumiProject();
    const group = new ProcessGroup();
    const organisation = skip ? undefined! : OpensslCa.create(path.join(dir, "org"), "organisation");
    const envoyCa = skip ? undefined! : OpensslCa.create(path.join(dir, "envoy"), "envoy-only");
    const backend = new Backend("cl1");
    let nginx: Nginx;
    let nginxPort: number;
    let envoyClient: Issued;

    before(async () => {
        envoyClient = envoyCa.client("envoy");
        const server = organisation.server(HOST);
        const pair = (i: Issued) => ({ certificate: i.certificate, privateKey: i.privateKey });
        nginxPort = await freePort();
        project.writeStack(STACK, {
            renderDirectory: renderDir,
            frontDoor: "ingress-nginx",
            clusters: [{ name: "cl1", host: HOST, address: `localhost:${nginxPort}` }],
            tls: {
                mode: "provided",
                caBundle: organisation.ca.certificate,
                clientCaBundle: envoyCa.ca.certificate,
                client: pair(envoyClient),
                servers: { cl1: pair(server) },
            },
        });
        await project.ok(["stack", "init", STACK]);
        await project.ok(["up", "-s", STACK, "--yes", "--skip-preview"]);
        const manifests = readRendered(renderDir).cl1;
        const ingress = find(manifests, "Ingress", "envoy-thanos-cl1") as unknown as IngressObject;
        const secrets: SecretStore = Object.fromEntries(
            manifests.filter((m) => m.kind === "Secret").map((m) => [`${m.metadata.namespace}/${m.metadata.name}`, secretData(m)]),
        );
        const backendPort = await freePort();
        await backend.start(backendPort);
        const workDir = tempDir("client-ca-nginx");
        nginx = new Nginx(workDir, nginxPort, group);
        await nginx.start(
            translateIngress(ingress, secrets, {
                listenPort: nginxPort,
                workDir,
                defaultCertificate: organisation.server("ingress.local"),
                resolveService: () => `127.0.0.1:${backendPort}`,
            }),
        );
    });

    after(async () => {
        await group.stopAll();
        await backend.stop();
        await project?.run(["destroy", "-s", STACK, "--yes", "--skip-preview"]);
    });

    /** A gRPC POST to nginx with a client certificate; the entry nginx logged for it. */
    function call(client: Issued) {
        const before = nginx.accessLog().length;
        // The empty Info request in its 5-byte gRPC frame: through the upstream keepalive ingress-nginx renders, a POST
        // with no body at all never completes. curl's own exit status is not the point (it reads no trailers): nginx's log is.
        const request = path.join(dir, "info-request.bin");
        fs.writeFileSync(request, Buffer.alloc(5));
        const curl = spawnSync(
            "curl",
            [
                "-s",
                "-o",
                "/dev/null",
                "--http2",
                "--max-time",
                "10",
                "--cacert",
                organisation.ca.certificatePath,
                "--cert",
                client.certificatePath,
                "--key",
                client.privateKeyPath,
                "--resolve",
                `${HOST}:${nginxPort}:127.0.0.1`,
                "-H",
                "content-type: application/grpc",
                "-H",
                "te: trailers",
                "--data-binary",
                `@${request}`,
                `https://${HOST}:${nginxPort}/thanos.info.Info/Info`,
            ],
            { encoding: "utf8", timeout: 20_000 },
        );
        const entries = nginx.accessLog().slice(before);
        assert.equal(entries.length, 1, `curl exit ${curl.status}: ${curl.stderr}\n${nginx.errorLog().slice(-2000)}`);
        return entries[0];
    }

    it("renders the client CA Secret with the client CA alone", () => {
        const manifests = readRendered(renderDir).cl1;
        assert.deepEqual(secretData(find(manifests, "Secret", "envoy-thanos-cl1-client-ca")), { "ca.crt": envoyCa.ca.certificate });
    });

    it("lets Envoy's certificate through, and refuses another certificate of the organisation's CA", () => {
        const accepted = call(envoyClient);
        assert.equal(accepted.clientVerify, "SUCCESS");
        assert.notEqual(accepted.status, 400);
        const refused = call(organisation.client("other-team"));
        assert.equal(refused.status, 400, "ingress-nginx answers 400 to a client certificate it cannot verify");
        assert.match(refused.clientVerify, /^FAILED/);
    });
});
