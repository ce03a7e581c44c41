import { ConfigProblem, setSecretFromFile } from "../errors";
import { kubeconfigProblem, looksLikeFilePath } from "../formats";
import { BuildOptions } from "../options";

/** How the program reaches a cluster's API server. `none` only in render mode, where no cluster is contacted. */
export type Connection =
    | { kind: "context"; context: string }
    /** `context` picks one of the kubeconfig's contexts; default: its current-context. */
    | { kind: "kubeconfig"; kubeconfig: string; context?: string }
    | { kind: "none" };

/** `context`, `kubeconfig` (checked when secrets are), or nothing in render mode. */
export function resolveConnection(
    c: { context?: string; kubeconfig?: string },
    key: string,
    renderMode: boolean,
    options: BuildOptions,
    problems: ConfigProblem[],
): Connection {
    if (c.kubeconfig !== undefined) {
        const problem = options.checkSecretMaterial ? kubeconfigProblem(c.kubeconfig, c.context) : undefined;
        if (problem !== undefined) {
            const fix = looksLikeFilePath(c.kubeconfig) ? `: ${setSecretFromFile(`${key}.kubeconfig`, c.kubeconfig.trim())}` : "";
            problems.push({ key: `${key}.${problem.field}`, message: problem.message + fix });
        }
        return { kind: "kubeconfig", kubeconfig: c.kubeconfig, context: c.context };
    }
    if (c.context !== undefined) {
        return { kind: "context", context: c.context };
    }
    if (!renderMode) {
        problems.push({
            key,
            message: `has neither context nor kubeconfig; set ${key}.context to a kubeconfig context, or ${key}.kubeconfig (secret) to kubeconfig content, or set renderDirectory to render manifests without a cluster`,
        });
    }
    return { kind: "none" };
}
