import * as fs from "node:fs";
import * as path from "node:path";
import * as YAML from "yaml";
import { CONFIG_NAMESPACE } from "./errors";

/**
 * Two ways to get the raw `envoy-thanos:*` config object: from the Pulumi runtime (the program),
 * and from the project's YAML files (tools that run without the engine, like `npm run envoy-config`).
 * Both return the same shape, so the same validation runs on both.
 */

const PREFIX = `${CONFIG_NAMESPACE}:`;

/** The engine hands structured values over as JSON text and scalars as plain text. */
function decodeValue(text: string): unknown {
    try {
        return JSON.parse(text);
    } catch {
        return text;
    }
}

/** From the runtime's flat `namespace:key → string` map (what `pulumi.runtime.allConfig()` returns). */
export function rawConfigFromRuntime(all: Record<string, string>): Record<string, unknown> {
    const raw: Record<string, unknown> = {};
    for (const [fullKey, value] of Object.entries(all)) {
        if (fullKey.startsWith(PREFIX)) {
            raw[fullKey.slice(PREFIX.length)] = decodeValue(value);
        }
    }
    return raw;
}

/** A secret in a stack file, which only the engine can decrypt. */
export const ENCRYPTED = "<encrypted>";

function replaceSecure(value: unknown): unknown {
    if (Array.isArray(value)) {
        return value.map(replaceSecure);
    }
    if (value !== null && typeof value === "object") {
        const entries = Object.entries(value as Record<string, unknown>);
        if (entries.length === 1 && entries[0][0] === "secure") {
            return ENCRYPTED;
        }
        return Object.fromEntries(entries.map(([k, v]) => [k, replaceSecure(v)]));
    }
    return value;
}

export interface StackFiles {
    /** `config:` defaults declared in Pulumi.yaml, then the stack file's values over them (as the engine does). */
    raw: Record<string, unknown>;
    /** Whether any value was encrypted (and therefore not checkable offline). */
    hasSecrets: boolean;
}

/** Reads `Pulumi.yaml` and `Pulumi.<stack>.yaml` from a project directory. */
export function rawConfigFromStackFiles(projectDir: string, stack: string): StackFiles {
    const stackFile = path.join(projectDir, `Pulumi.${stack}.yaml`);
    if (!fs.existsSync(stackFile)) {
        throw new Error(`no stack file ${stackFile}; stacks are named by their Pulumi.<stack>.yaml files`);
    }
    const project = YAML.parse(fs.readFileSync(path.join(projectDir, "Pulumi.yaml"), "utf8")) ?? {};
    const raw: Record<string, unknown> = {};
    for (const [key, spec] of Object.entries<Record<string, unknown>>(project.config ?? {})) {
        if (spec !== null && typeof spec === "object" && "default" in spec) {
            raw[key.startsWith(PREFIX) ? key.slice(PREFIX.length) : key] = spec.default;
        }
    }
    const stackDoc = YAML.parse(fs.readFileSync(stackFile, "utf8")) ?? {};
    let hasSecrets = false;
    for (const [fullKey, value] of Object.entries<unknown>(stackDoc.config ?? {})) {
        if (fullKey.startsWith(PREFIX)) {
            const decoded = replaceSecure(value);
            hasSecrets ||= JSON.stringify(decoded).includes(ENCRYPTED);
            raw[fullKey.slice(PREFIX.length)] = decoded;
        }
    }
    return { raw, hasSecrets };
}
