import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { defaults } from "../../components/config/defaults";
import { ConfigError } from "../../components/config/errors";
import { buildModel, Model } from "../../components/config/model";
import { rawConfigFromStackFiles } from "../../components/config/sources";
import { TLS_FILE_NAMES } from "../../components/config/tls-files";
import { OpensslCa } from "./openssl-ca";

/**
 * `node --import tsx tools/pki/dev-pki.ts <stack> [project-dir]` (tools/setup.sh runs it for the dev stack): a throwaway CA, Envoy's
 * client certificate and one server certificate per observed cluster, written to the stack's `tls.directory` with the
 * file names `tls.mode: files` reads. They follow the program's certificate spec and generate mode's default
 * lifetimes, so the dev stack deploys what generate mode would issue, without the @pulumi/tls provider.
 *
 * Idempotent: material that the program itself accepts for another 30 days is kept; otherwise all of it is re-issued.
 */

const RENEW_BEFORE_DAYS = 30;
const HOUR_MS = 3600_000;

function tlsDirectory(raw: Record<string, unknown>, stack: string): string {
    const tls = (raw.tls ?? {}) as { mode?: string; directory?: string; files?: unknown };
    if (tls.mode !== "files" || tls.directory === undefined || tls.files !== undefined) {
        throw new Error(`stack ${stack} does not take its certificates from one directory (tls.mode: files with tls.directory and no tls.files)`);
    }
    return tls.directory;
}

/** What the program would refuse in RENEW_BEFORE_DAYS days (the same checks, a later clock); undefined if nothing. */
function refusalLater(raw: Record<string, unknown>, projectDir: string): string | undefined {
    try {
        const later = new Date(Date.now() + RENEW_BEFORE_DAYS * 24 * HOUR_MS);
        buildModel(raw, { checkSecretMaterial: true, now: later, baseDirectory: projectDir });
        return undefined;
    } catch (err) {
        if (err instanceof ConfigError) return err.message;
        throw err;
    }
}

function issueAll(model: Model, target: string): string {
    const work = fs.mkdtempSync(path.join(os.tmpdir(), "envoy-thanos-dev-pki-"));
    try {
        const now = Date.now();
        const leafWindow = { notBefore: new Date(now - HOUR_MS), notAfter: new Date(now + defaults.tls.validityHours * HOUR_MS) };
        // Generate mode names its CA after a random 4-byte id; so does this one.
        const caId = crypto.randomBytes(4).toString("hex");
        const ca = OpensslCa.create(path.join(work, "ca"), caId, {
            notBefore: leafWindow.notBefore,
            notAfter: new Date(now + defaults.tls.caValidityHours * HOUR_MS),
        });
        const staging = fs.mkdtempSync(path.join(path.dirname(target), `.${path.basename(target)}-`));
        fs.chmodSync(staging, 0o700);
        const put = (name: string, text: string, secret: boolean) => {
            const file = path.join(staging, name);
            fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
            fs.writeFileSync(file, text, { mode: secret ? 0o600 : 0o644 });
        };
        put(TLS_FILE_NAMES.caBundle, ca.ca.certificate, false);
        put("ca.key", ca.ca.privateKey, true);
        const client = ca.client("client", leafWindow);
        put(TLS_FILE_NAMES.clientCertificate, client.certificate, false);
        put(TLS_FILE_NAMES.clientPrivateKey, client.privateKey, true);
        for (const cluster of model.clusters) {
            const server = ca.server(cluster.host, leafWindow);
            put(TLS_FILE_NAMES.serverCertificate(cluster.name), server.certificate, false);
            put(TLS_FILE_NAMES.serverPrivateKey(cluster.name), server.privateKey, true);
        }
        fs.rmSync(target, { recursive: true, force: true });
        fs.renameSync(staging, target);
        return `envoy-thanos CA ${caId}`;
    } finally {
        fs.rmSync(work, { recursive: true, force: true });
    }
}

function main(argv: string[]): number {
    if (argv.length < 1 || argv.length > 2) {
        process.stderr.write("usage: node --import tsx tools/pki/dev-pki.ts <stack> [project-dir]\n");
        return 2;
    }
    const [stack, projectDirArg] = argv;
    // Another project directory: the engine tests run the committed dev stack in a copy of the project.
    const projectDir = path.resolve(projectDirArg ?? path.resolve(__dirname, "../.."));
    try {
        const { raw } = rawConfigFromStackFiles(projectDir, stack);
        const directory = tlsDirectory(raw, stack);
        const target = path.resolve(projectDir, directory);
        if (refusalLater(raw, projectDir) === undefined) {
            process.stdout.write(`dev-pki: ${directory}/ is up to date (valid for more than ${RENEW_BEFORE_DAYS} days)\n`);
            return 0;
        }
        const model = buildModel(raw, { checkSecretMaterial: false, now: new Date() });
        const caName = issueAll(model, target);
        const refusal = refusalLater(raw, projectDir);
        if (refusal !== undefined) {
            throw new Error(`the certificates just written to ${directory}/ do not pass the program's own checks:\n${refusal}`);
        }
        const servers = model.clusters.map((c) => `${c.name} (${c.host})`).join(", ");
        process.stdout.write(`dev-pki: wrote ${directory}/ for stack ${stack}: ${caName}, Envoy's client certificate, servers ${servers}; keys are 0600\n`);
        return 0;
    } catch (err) {
        process.stderr.write(`dev-pki: ${err instanceof Error ? err.message : String(err)}\n`);
        return 1;
    }
}

process.exitCode = main(process.argv.slice(2));
