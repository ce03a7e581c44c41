import { defaults } from "../defaults";
import { ConfigProblem } from "../errors";
import { BuildOptions } from "../options";
import { StackConfigInput } from "../schema";
import type { ObservedClusterModel } from "../sections/clusters";
import { materialFromFiles } from "./files";
import { GeneratedTlsModel, resolveGenerated } from "./generate";
import { checkMaterial, keyPairOf, SuppliedMaterial } from "./material";
import { materialFromConfig } from "./provided";

export type TlsModel = GeneratedTlsModel | ({ mode: "provided" | "files" } & SuppliedMaterial);

/** Which `tls.*` keys belong to which mode; a key of another mode is a mistake worth naming. */
const TLS_KEYS_BY_MODE = {
    generate: ["validityHours", "earlyRenewalHours", "caValidityHours", "ca"],
    provided: ["caBundle", "clientCaBundle", "client", "servers", "shared"],
    files: ["directory", "files"],
} as const;

/** `tls.*`: keys of another mode are refused; each mode resolves its own keys, and supplied material is checked alike. */
export function resolveTls(input: StackConfigInput, clusters: ObservedClusterModel[], options: BuildOptions, problems: ConfigProblem[]): TlsModel {
    const t = input.tls ?? {};
    const mode = t.mode ?? defaults.tls.mode;
    for (const [otherMode, keys] of Object.entries(TLS_KEYS_BY_MODE)) {
        if (otherMode === mode) continue;
        for (const field of keys) {
            if (t[field] !== undefined) {
                problems.push({ key: `tls.${field}`, message: `is only used with tls.mode: ${otherMode}; remove it or set tls.mode to ${otherMode}` });
            }
        }
    }
    if (mode === "generate") {
        return resolveGenerated(t, problems);
    }
    const material = mode === "provided" ? materialFromConfig(t, clusters, problems) : materialFromFiles(t, clusters, options, problems);
    if (options.checkSecretMaterial) {
        checkMaterial(material, clusters, options.now, problems);
    }
    const servers = Object.fromEntries(Object.entries(material.servers).map(([name, pair]) => [name, keyPairOf(pair)]));
    const caBundle = material.caBundle?.text ?? "";
    return { mode, caBundle, clientCaBundle: material.clientCaBundle?.text ?? caBundle, client: keyPairOf(material.client), servers };
}
