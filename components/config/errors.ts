/** How configuration problems are named and reported; every config check speaks through this module. */

export const CONFIG_NAMESPACE = "envoy-thanos";

export interface ConfigProblem {
    /** Config key as a user types it with `pulumi config set --path`, e.g. `clusters[1].host`. */
    key: string;
    message: string;
}

/** A configuration the program cannot deploy. Its message lists every problem, one per line, with the full key. */
export class ConfigError extends Error {
    readonly problems: ConfigProblem[];

    constructor(problems: ConfigProblem[]) {
        // One certificate can be checked for several uses (tls.shared); say each problem once.
        const unique = problems.filter((p, i) => problems.findIndex((q) => q.key === p.key && q.message === p.message) === i);
        super(
            `Invalid ${CONFIG_NAMESPACE} stack configuration:\n` +
                unique.map((p) => `  - ${CONFIG_NAMESPACE}:${p.key}: ${p.message}`).join("\n") +
                `\nChange a value with: pulumi config set --path '${CONFIG_NAMESPACE}:<key>' <value> (add --secret for keys, certificates and kubeconfigs), or edit Pulumi.<stack>.yaml.`,
        );
        this.problems = unique;
        this.name = "ConfigError";
    }
}

/** `["clusters", 1, "host"]` → `clusters[1].host`. */
export function formatPath(path: ReadonlyArray<PropertyKey>): string {
    let out = "";
    for (const part of path) {
        if (typeof part === "number") {
            out += `[${part}]`;
        } else {
            out += out === "" ? String(part) : `.${String(part)}`;
        }
    }
    return out;
}

/** The command that sets a secret key from a file's content. */
export function setSecretFromFile(key: string, file: string): string {
    return `pulumi config set --secret --path '${CONFIG_NAMESPACE}:${key}' "$(cat ${file})"`;
}
