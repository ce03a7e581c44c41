import * as fs from "node:fs";
import * as path from "node:path";
import { ConfigProblem } from "../errors";
import { BuildOptions } from "../options";
import type { ObservedClusterModel } from "../sections/clusters";
import { ReadResult, readPemFile, TLS_FILE_NAMES, unreadable } from "../tls-files";
import { TlsInput } from "../tls-schema";
import { checkUnknownServerNames, Material, PairItem } from "./material";

/** Where one item's file is, and the config key that put it there (its `tls.files.*` key, or `tls.directory`). */
interface Location {
    file: string;
    key: string;
}

const DIRECTORY_FILES = `${TLS_FILE_NAMES.caBundle}, ${TLS_FILE_NAMES.clientCertificate}, ${TLS_FILE_NAMES.clientPrivateKey} and servers/<cluster>.crt and .key per cluster`;

/**
 * `tls.mode: files`: each item's path is its `tls.files.*` entry, else its documented name in `tls.directory`.
 * Files are read only where material is checked; tools that only need the Envoy bootstrap never touch them.
 * One root cause, one message: a directory that cannot be used is named once, not once per file it should hold,
 * and so is a certificate whose two files fail alike.
 */
export function materialFromFiles(t: TlsInput, clusters: ObservedClusterModel[], options: BuildOptions, problems: ConfigProblem[]): Material {
    const base = options.baseDirectory ?? process.cwd();
    const directory = t.directory;
    const locate = (override: string | undefined, overrideKey: string, nameInDirectory: string): Location | undefined => {
        if (override !== undefined) return { file: override, key: overrideKey };
        if (directory !== undefined) return { file: path.join(directory, nameInDirectory), key: "tls.directory" };
        return undefined;
    };
    const caLocation = locate(t.files?.caBundle, "tls.files.caBundle", TLS_FILE_NAMES.caBundle);
    const clientLocations = [
        locate(t.files?.client?.certificate, "tls.files.client.certificate", TLS_FILE_NAMES.clientCertificate),
        locate(t.files?.client?.privateKey, "tls.files.client.privateKey", TLS_FILE_NAMES.clientPrivateKey),
    ] as const;
    const serverLocations = clusters.map((c) => {
        const overrides = t.files?.servers?.[c.name];
        return [
            locate(overrides?.certificate, `tls.files.servers.${c.name}.certificate`, TLS_FILE_NAMES.serverCertificate(c.name)),
            locate(overrides?.privateKey, `tls.files.servers.${c.name}.privateKey`, TLS_FILE_NAMES.serverPrivateKey(c.name)),
        ] as const;
    });
    if (directory !== undefined && options.checkSecretMaterial) {
        const fromDirectory = [caLocation, ...clientLocations, ...serverLocations.flat()].filter((l) => l?.key === "tls.directory");
        const problem = directoryProblem(
            directory,
            base,
            fromDirectory.flatMap((l) => (l === undefined ? [] : [l.file])),
        );
        if (problem !== undefined) {
            problems.push({ key: "tls.directory", message: problem });
            return { servers: {} };
        }
    }
    checkUnknownServerNames(Object.keys(t.files?.servers ?? {}), "tls.files.servers", clusters, problems);

    const missing = (key: string, what: string) => problems.push({ key, message: `is missing: tls.mode is files, so set tls.directory, or ${what}` });
    const read = (where: Location | undefined): ReadResult | undefined => {
        if (where === undefined) return undefined;
        return options.checkSecretMaterial ? readPemFile(where.file, base) : { ok: true, text: "" };
    };
    /** The text read from `where`, or undefined with its problem named: no path for `key`, or a file that cannot be read. */
    const textOf = (where: Location | undefined, result: ReadResult | undefined, key: string): string | undefined => {
        if (where === undefined || result === undefined) {
            missing(key, "this key to the file's path");
            return undefined;
        }
        if (!result.ok) problems.push({ key: where.key, message: unreadable([where.file], result.code) });
        return result.ok ? result.text : undefined;
    };
    const pairKeyOf = (certificate: Location, privateKey: Location) =>
        certificate.key === privateKey.key ? certificate.key : `${certificate.key}, ${privateKey.key}`;
    /** A certificate and its key; `pairKey` takes per-item paths for both, `what` says what the two files hold. */
    const readPair = (pairKey: string, what: string, locations: readonly [Location | undefined, Location | undefined]): PairItem | undefined => {
        const [certificate, privateKey] = locations;
        if (certificate === undefined && privateKey === undefined) {
            missing(pairKey, `${pairKey}.certificate and .privateKey to the files' paths`);
            return undefined;
        }
        const [certificateRead, privateKeyRead] = locations.map(read);
        if (certificate && privateKey && certificateRead?.ok === false && privateKeyRead?.ok === false && certificateRead.code === privateKeyRead.code) {
            problems.push({
                key: pairKeyOf(certificate, privateKey),
                message: `${unreadable([certificate.file, privateKey.file], certificateRead.code)}; ${what} belong there, or set ${pairKey}.certificate and .privateKey to their paths`,
            });
            return undefined;
        }
        const certificateText = textOf(certificate, certificateRead, `${pairKey}.certificate`);
        const privateKeyText = textOf(privateKey, privateKeyRead, `${pairKey}.privateKey`);
        if (certificate === undefined || privateKey === undefined || certificateText === undefined || privateKeyText === undefined) return undefined;
        return {
            certificate: certificateText,
            privateKey: privateKeyText,
            key: pairKeyOf(certificate, privateKey),
            origin: `${certificate.file} / ${privateKey.file}: `,
            parts: {
                certificate: { key: certificate.key, origin: `${certificate.file}: ` },
                privateKey: { key: privateKey.key, origin: `${privateKey.file}: ` },
            },
        };
    };

    const caText = textOf(caLocation, read(caLocation), "tls.files.caBundle");
    // The client CA file is optional in the directory: without it, ca.crt verifies Envoy's client certificate too.
    const clientCaInDirectory = directory === undefined ? undefined : path.join(directory, TLS_FILE_NAMES.clientCaBundle);
    const clientCaLocation =
        t.files?.clientCaBundle !== undefined
            ? { file: t.files.clientCaBundle, key: "tls.files.clientCaBundle" }
            : clientCaInDirectory !== undefined && options.checkSecretMaterial && fs.existsSync(path.resolve(base, clientCaInDirectory))
              ? { file: clientCaInDirectory, key: "tls.directory" }
              : undefined;
    const clientCaText = clientCaLocation === undefined ? undefined : textOf(clientCaLocation, read(clientCaLocation), "tls.files.clientCaBundle");
    const client = readPair("tls.files.client", "Envoy's client certificate and key", clientLocations);
    const servers: Record<string, PairItem> = {};
    clusters.forEach((c, i) => {
        const server = readPair(`tls.files.servers.${c.name}`, `the server certificate and key of ${c.name} (for ${c.host})`, serverLocations[i]);
        if (server !== undefined) servers[c.name] = server;
    });
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

/**
 * Why `tls.directory` cannot serve as the place of the files read from it (`expected`): missing, not a directory,
 * closed to this user, or holding none of them. Undefined when it can, even if some of them are missing (each is named).
 */
function directoryProblem(directory: string, base: string, expected: string[]): string | undefined {
    const absolute = path.resolve(base, directory);
    const elsewhere = `or point tls.directory at the directory that holds ${DIRECTORY_FILES}`;
    try {
        if (!fs.statSync(absolute).isDirectory()) {
            return `${directory} is a file, not a directory; ${elsewhere.slice(3)}`;
        }
        // Opening a file by name needs search permission on its directory, not read permission.
        fs.accessSync(absolute, fs.constants.X_OK);
    } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === "ENOENT") {
            return (
                `directory ${directory} does not exist (relative paths start at ${base}); create it with ${DIRECTORY_FILES}, ` +
                `or point tls.directory elsewhere`
            );
        }
        if (code === "EACCES") {
            return `directory ${directory} cannot be opened (permission denied); give the user that runs pulumi access to it, ${elsewhere}`;
        }
        return `directory ${directory} cannot be read (${code ?? String(err)}); ${elsewhere.slice(3)}`;
    }
    if (expected.length > 0 && !expected.some((file) => fs.existsSync(path.resolve(base, file)))) {
        return `directory ${directory} holds none of the files it should (${DIRECTORY_FILES}); put them there, or point tls.directory at the directory that does`;
    }
    return undefined;
}
