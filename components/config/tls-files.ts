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

export type ReadResult = { ok: true; text: string } | { ok: false; code: string };

/** Reads one PEM file; a failure is its error code, which `unreadable` puts in words (never with file content). */
export function readPemFile(file: string, baseDirectory: string): ReadResult {
    try {
        return { ok: true, text: fs.readFileSync(path.resolve(baseDirectory, file), "utf8") };
    } catch (err) {
        return { ok: false, code: (err as NodeJS.ErrnoException).code ?? String(err) };
    }
}

/** Why one file, or several that failed alike, cannot be read, in words a user can act on. */
export function unreadable(files: string[], code: string): string {
    const one = files.length === 1;
    const why =
        code === "ENOENT"
            ? one
                ? "does not exist"
                : "do not exist"
            : code === "EISDIR"
              ? one
                  ? "is a directory, not a PEM file"
                  : "are directories, not PEM files"
              : code === "EACCES"
                ? "cannot be read (permission denied)"
                : `cannot be read (${code})`;
    return `${one ? "file" : "files"} ${files.join(" and ")} ${why}`;
}
