import * as fs from "node:fs";
import * as path from "node:path";
import { ConfigProblem } from "../errors";
import { BuildOptions } from "../options";
import { TlsInput } from "../tls-schema";
import type { ObservedClusterModel } from "../sections/clusters";
import { readPemFile, TLS_FILE_NAMES } from "../tls-files";
import { checkUnknownServerNames, Material, PairItem } from "./material";

/**
 * `tls.mode: files`: each item's path is its `tls.files.*` entry, else its documented name in `tls.directory`.
 * Files are read only where material is checked; tools that only need the Envoy bootstrap never touch them.
 */
export function materialFromFiles(t: TlsInput, clusters: ObservedClusterModel[], options: BuildOptions, problems: ConfigProblem[]): Material {
    const base = options.baseDirectory ?? process.cwd();
    const directory = t.directory;
    if (directory !== undefined && options.checkSecretMaterial && !fs.existsSync(path.resolve(base, directory))) {
        problems.push({
            key: "tls.directory",
            message:
                `directory ${directory} does not exist (relative paths start at ${base}); create it with the files the README's ` +
                `"Certificates from files" lists, or point tls.directory elsewhere (for the dev stack, bash tools/setup.sh creates it)`,
        });
        return { servers: {} };
    }
    checkUnknownServerNames(Object.keys(t.files?.servers ?? {}), "tls.files.servers", clusters, problems);
    const locate = (override: string | undefined, overrideKey: string, nameInDirectory: string) => {
        if (override !== undefined) return { file: override, key: overrideKey };
        if (directory !== undefined) return { file: path.join(directory, nameInDirectory), key: "tls.directory" };
        problems.push({ key: overrideKey, message: "is missing: tls.mode is files, so set tls.directory, or this key to the file's path" });
        return undefined;
    };
    const read = (where: { file: string; key: string } | undefined): string | undefined => {
        if (where === undefined) return undefined;
        if (!options.checkSecretMaterial) return "";
        const result = readPemFile(where.file, base);
        if (!result.ok) {
            problems.push({ key: where.key, message: result.problem });
            return undefined;
        }
        return result.text;
    };
    const pair = (certificate: ReturnType<typeof locate>, privateKey: ReturnType<typeof locate>): PairItem | undefined => {
        const certificateText = read(certificate);
        const privateKeyText = read(privateKey);
        if (certificate === undefined || privateKey === undefined || certificateText === undefined || privateKeyText === undefined) return undefined;
        const key = certificate.key === privateKey.key ? certificate.key : `${certificate.key}, ${privateKey.key}`;
        return {
            certificate: certificateText,
            privateKey: privateKeyText,
            key,
            origin: `${certificate.file} / ${privateKey.file}: `,
            parts: {
                certificate: { key: certificate.key, origin: `${certificate.file}: ` },
                privateKey: { key: privateKey.key, origin: `${privateKey.file}: ` },
            },
        };
    };

    const caLocation = locate(t.files?.caBundle, "tls.files.caBundle", TLS_FILE_NAMES.caBundle);
    const caText = read(caLocation);
    // The client CA file is optional in the directory: without it, ca.crt verifies Envoy's client certificate too.
    const clientCaInDirectory = directory === undefined ? undefined : path.join(directory, TLS_FILE_NAMES.clientCaBundle);
    const clientCaLocation =
        t.files?.clientCaBundle !== undefined
            ? { file: t.files.clientCaBundle, key: "tls.files.clientCaBundle" }
            : clientCaInDirectory !== undefined && options.checkSecretMaterial && fs.existsSync(path.resolve(base, clientCaInDirectory))
              ? { file: clientCaInDirectory, key: "tls.directory" }
              : undefined;
    const clientCaText = read(clientCaLocation);
    const client = pair(
        locate(t.files?.client?.certificate, "tls.files.client.certificate", TLS_FILE_NAMES.clientCertificate),
        locate(t.files?.client?.privateKey, "tls.files.client.privateKey", TLS_FILE_NAMES.clientPrivateKey),
    );
    const servers: Record<string, PairItem> = {};
    for (const c of clusters) {
        const overrides = t.files?.servers?.[c.name];
        const server = pair(
            locate(overrides?.certificate, `tls.files.servers.${c.name}.certificate`, TLS_FILE_NAMES.serverCertificate(c.name)),
            locate(overrides?.privateKey, `tls.files.servers.${c.name}.privateKey`, TLS_FILE_NAMES.serverPrivateKey(c.name)),
        );
        if (server !== undefined) servers[c.name] = server;
    }
    return {
        caBundle: caLocation === undefined || caText === undefined ? undefined : { text: caText, key: caLocation.key, origin: `${caLocation.file}: ` },
        clientCaBundle:
            clientCaLocation === undefined || clientCaText === undefined
                ? undefined
                : { text: clientCaText, key: clientCaLocation.key, origin: `${clientCaLocation.file}: ` },
        client,
        servers,
    };
}
