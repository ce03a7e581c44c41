import * as fs from "node:fs";
import * as path from "node:path";

/**
 * `tls.mode: files`: where the PEM material lives inside `tls.directory`. The names follow the keys of a
 * Kubernetes TLS Secret (`ca.crt`, `tls.crt`/`tls.key` as `<owner>.crt`/`<owner>.key`), so an export from
 * cert-manager, Vault or step-ca drops in with a rename. `ca.key`, if present, is never read.
 */
export const TLS_FILE_NAMES = {
    caBundle: "ca.crt",
    /** Optional: the CA(s) the front doors verify Envoy's client certificate against; without it, ca.crt. */
    clientCaBundle: "client-ca.crt",
    clientCertificate: "client.crt",
    clientPrivateKey: "client.key",
    serverCertificate: (cluster: string) => path.join("servers", `${cluster}.crt`),
    serverPrivateKey: (cluster: string) => path.join("servers", `${cluster}.key`),
} as const;

export type ReadResult = { ok: true; text: string } | { ok: false; problem: string };

/** Reads one PEM file; a failure is described in words a user can act on, never with file content. */
export function readPemFile(file: string, baseDirectory: string): ReadResult {
    const absolute = path.resolve(baseDirectory, file);
    try {
        return { ok: true, text: fs.readFileSync(absolute, "utf8") };
    } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        const why =
            code === "ENOENT"
                ? "does not exist"
                : code === "EISDIR"
                  ? "is a directory, not a PEM file"
                  : code === "EACCES"
                    ? "cannot be read (permission denied)"
                    : `cannot be read (${code ?? String(err)})`;
        return { ok: false, problem: `file ${file} ${why}` };
    }
}
