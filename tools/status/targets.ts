import * as fs from "node:fs";
import * as path from "node:path";
import { TLS_FILE_NAMES } from "../../components/config/tls-files";

/**
 * What `npm run status` checks, and with which certificates: from a stack's outputs (decrypted in memory
 * only), or given directly (a `tls.mode: files` directory and `--cluster` arguments).
 */

export interface StatusTarget {
    name: string;
    /** SNI, :authority and the name the server certificate must carry. */
    host: string;
    /** Where Envoy connects: the observed cluster's front door. */
    address: { host: string; port: number };
}

/** Envoy's client certificate and the CA that verifies the servers. The key never leaves memory. */
export interface Credentials {
    ca: string;
    certificate: string;
    privateKey: string;
}

/** Thrown for input the command cannot work with; its message says what to change. */
export class UsageError extends Error {}

/** `host` or `host:port`, port 443 by default, as the program's `clusters[].address`. */
function parseAddress(value: string): { host: string; port: number } {
    const match = /^([A-Za-z0-9.-]+)(?::(\d{1,5}))?$/.exec(value);
    const port = match?.[2] === undefined ? 443 : Number(match[2]);
    if (match === null || port < 1 || port > 65535) {
        throw new UsageError(`'${value}' is not host or host:port`);
    }
    return { host: match[1], port };
}

/** `--cluster name=host` or `--cluster name=host@address`; the address defaults to `host:443`, as in the stack. */
export function parseClusterArgument(value: string): StatusTarget {
    const match = /^([^=]+)=([^@]+)(?:@(.+))?$/.exec(value);
    if (match === null) {
        throw new UsageError(`--cluster ${value}: write name=host or name=host@address (e.g. cl1=cl1m.example.com@lb.example.net:8443)`);
    }
    return { name: match[1], host: match[2], address: parseAddress(match[3] ?? match[2]) };
}

/** The `tls.mode: files` layout: `ca.crt`, `client.crt`, `client.key` (server keys are not needed). */
export function credentialsFromDirectory(directory: string): Credentials {
    const read = (name: string) => {
        const file = path.join(directory, name);
        try {
            return fs.readFileSync(file, "utf8");
        } catch (err) {
            throw new UsageError(`--tls-dir: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
        }
    };
    return { ca: read(TLS_FILE_NAMES.caBundle), certificate: read(TLS_FILE_NAMES.clientCertificate), privateKey: read(TLS_FILE_NAMES.clientPrivateKey) };
}

/** The stack outputs `index.ts` exports that status reads (`pulumi stack output --json --show-secrets`). */
export function fromStackOutputs(outputs: Record<string, unknown>): { targets: StatusTarget[]; credentials: Credentials } {
    const missing = ["clusters", "caCertificate", "clientCertificate", "clientPrivateKey"].filter((key) => outputs[key] === undefined);
    if (missing.length > 0) {
        throw new UsageError(`the stack has no output ${missing.join(", ")}; run \`npm run up\` for it with this version of the program first`);
    }
    const clusters = outputs.clusters as { name: string; host: string; address: string }[];
    const text = (key: string) => {
        const value = outputs[key];
        // Without --show-secrets the engine prints "[secret]"; a key must never be printed, so say only that.
        if (typeof value !== "string" || !value.includes("-----BEGIN")) {
            throw new UsageError(`stack output ${key} is not PEM text (were secrets decrypted?)`);
        }
        return value;
    };
    return {
        targets: clusters.map((c) => ({ name: c.name, host: c.host, address: parseAddress(c.address) })),
        credentials: { ca: text("caCertificate"), certificate: text("clientCertificate"), privateKey: text("clientPrivateKey") },
    };
}
