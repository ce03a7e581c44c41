import { checkCaBundle, checkKeyPair } from "../../pki/material";
import { ConfigProblem, setSecretFromFile } from "../errors";
import { closest, looksLikeFilePath } from "../formats";
import type { ObservedClusterModel } from "../sections/clusters";

export interface KeyPair {
    certificate: string;
    privateKey: string;
}

/** Operator-supplied material, from config values (`provided`) or PEM files (`files`); checked alike. */
export interface SuppliedMaterial {
    /** Verifies the servers' certificates (Envoy, or the querier in native mode). */
    caBundle: string;
    /** Verifies Envoy's client certificate at the front doors: `tls.clientCaBundle` or its file, else caBundle. */
    clientCaBundle: string;
    client: KeyPair;
    servers: Record<string, KeyPair>;
}

/** One piece of PEM material and where it came from, so that a problem names the config key and the file. */
export interface PemItem {
    text: string;
    /** The config key that located it (`tls.client`, `tls.directory`, `tls.files.caBundle`). */
    key: string;
    /** Prefix for messages about it: empty for config values, the file name(s) for files. */
    origin: string;
}

export interface PairItem {
    certificate: string;
    privateKey: string;
    /** Key and message prefix for a problem with the pair as a whole. */
    key: string;
    origin: string;
    /** Key and message prefix for a problem with one of its two parts (`tls.client.privateKey`, or its file). */
    parts: Record<"certificate" | "privateKey", { key: string; origin: string }>;
}

/** Material read from config or files; a missing item was already reported. */
export interface Material {
    caBundle?: PemItem;
    /** Only when given apart from caBundle. */
    clientCaBundle?: PemItem;
    client?: PairItem;
    servers: Record<string, PairItem>;
}

export function keyPairOf(pair: PairItem | undefined): KeyPair {
    return { certificate: pair?.certificate ?? "", privateKey: pair?.privateKey ?? "" };
}

export function checkUnknownServerNames(names: string[], keyPrefix: string, clusters: ObservedClusterModel[], problems: ConfigProblem[]): void {
    const known = new Set(clusters.map((c) => c.name));
    for (const name of names) {
        if (!known.has(name)) {
            const suggestion = closest(name, [...known]);
            problems.push({
                key: `${keyPrefix}.${name}`,
                message:
                    `names no cluster in clusters; rename it to one of: ${[...known].join(", ")}` +
                    (suggestion === undefined ? "" : ` (did you mean ${suggestion}?)`),
            });
        }
    }
}

/**
 * The same checks for material from config and from files; each problem names the key and, for files, the file.
 * One root cause, one message: a config value that is a file path is reported as such and not parsed, and chains
 * are checked only against a usable CA bundle (a broken bundle is reported once, not once per certificate).
 */
export function checkMaterial(material: Material, clusters: ObservedClusterModel[], now: Date, problems: ConfigProblem[]): void {
    const { client } = material;
    const pathGiven = (key: string, origin: string, value: string): boolean => {
        if (origin !== "" || !looksLikeFilePath(value)) return false;
        problems.push({ key, message: `looks like a file path; set the file's content: ${setSecretFromFile(key, value.trim())}` });
        return true;
    };
    /** A bundle's CA certificates (only when usable) and how messages name it. */
    const bundle = (item: PemItem | undefined, defaultName: string) => {
        const name = item === undefined || item.origin === "" ? defaultName : item.origin.slice(0, -2);
        if (item === undefined || pathGiven(item.key, item.origin, item.text)) return { roots: undefined, name };
        const checked = checkCaBundle(item.text, now);
        checked.problems.forEach((message) => problems.push({ key: item.key, message: item.origin + message }));
        return { roots: checked.roots, name };
    };
    const serverCa = bundle(material.caBundle, "tls.caBundle");
    // Envoy's client certificate must chain to what the front doors verify it against.
    const clientCa = material.clientCaBundle === undefined ? serverCa : bundle(material.clientCaBundle, "tls.clientCaBundle");
    const checkPair = (pair: PairItem, purpose: "client" | "server", hosts: string[], ca: typeof serverCa) => {
        const certificatePath = pathGiven(pair.parts.certificate.key, pair.parts.certificate.origin, pair.certificate);
        const privateKeyPath = pathGiven(pair.parts.privateKey.key, pair.parts.privateKey.origin, pair.privateKey);
        if (certificatePath || privateKeyPath) return;
        for (const p of checkKeyPair(pair.certificate, pair.privateKey, { purpose, hosts, now, roots: ca.roots, caName: ca.name })) {
            const where = p.field === undefined ? pair : pair.parts[p.field];
            problems.push({ key: where.key, message: where.origin + p.message });
        }
    };
    if (client !== undefined) {
        checkPair(client, "client", [], clientCa);
    }
    for (const c of clusters) {
        const server = material.servers[c.name];
        if (server !== undefined) {
            checkPair(server, "server", [c.host], serverCa);
        }
    }
}
