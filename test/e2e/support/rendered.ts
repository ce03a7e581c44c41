import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import * as YAML from "yaml";

/** Reading what the Kubernetes provider rendered in render mode (`renderDirectory`), for the end-to-end tests. */

export type Manifest = {
    apiVersion: string;
    kind: string;
    metadata: { name: string; namespace?: string; annotations?: Record<string, string> };
    [k: string]: any;
};

/** Every manifest the Kubernetes provider rendered, per cluster sub-directory. */
export function readRendered(dir: string): Record<string, Manifest[]> {
    const out: Record<string, Manifest[]> = {};
    if (!fs.existsSync(dir)) return out;
    for (const cluster of fs.readdirSync(dir)) {
        const files: string[] = [];
        const walk = (d: string) => {
            for (const e of fs.readdirSync(d, { withFileTypes: true })) {
                if (e.isDirectory()) walk(path.join(d, e.name));
                else if (e.name.endsWith(".yaml")) files.push(path.join(d, e.name));
            }
        };
        walk(path.join(dir, cluster));
        out[cluster] = files.flatMap((f) => YAML.parseAllDocuments(fs.readFileSync(f, "utf8")).map((d) => d.toJS() as Manifest));
    }
    return out;
}

export function find(manifests: Manifest[], kind: string, name: string): Manifest {
    const found = manifests.find((m) => m.kind === kind && m.metadata.name === name);
    assert.ok(found, `no ${kind} ${name} among ${manifests.map((m) => `${m.kind}/${m.metadata.name}`).join(", ")}`);
    return found;
}

/** A Secret's data as text, whether the provider rendered `data` (base64) or `stringData`. */
export function secretData(secret: Manifest): Record<string, string> {
    if (secret.stringData) return secret.stringData;
    return Object.fromEntries(Object.entries<string>(secret.data ?? {}).map(([k, v]) => [k, Buffer.from(v, "base64").toString("utf8")]));
}
