import { ConfigProblem } from "../errors";
import { KeyPairInput, TlsInput } from "../tls-schema";
import type { ObservedClusterModel } from "../sections/clusters";
import { checkUnknownServerNames, Material, PairItem } from "./material";

/** A pair from config values: each part is its own key. */
function configPair(pair: KeyPairInput, key: string): PairItem {
    const part = (field: string) => ({ key: `${key}.${field}`, origin: "" });
    return { ...pair, key, origin: "", parts: { certificate: part("certificate"), privateKey: part("privateKey") } };
}

/** `tls.mode: provided`: PEM text from config values, each located by its own key. */
export function materialFromConfig(t: TlsInput, clusters: ObservedClusterModel[], problems: ConfigProblem[]): Material {
    const missing = (key: string, what: string) => problems.push({ key, message: `is missing: tls.mode is provided, so set ${what}` });
    if (t.caBundle === undefined) {
        missing("tls.caBundle", "tls.caBundle to the CA certificate(s) that issued the server and client certificates");
    }
    const clientInput: KeyPairInput | undefined = t.client ?? t.shared;
    if (clientInput === undefined) {
        missing("tls.client", "tls.client.certificate and tls.client.privateKey, or tls.shared for one certificate on every side");
    }
    checkUnknownServerNames(Object.keys(t.servers ?? {}), "tls.servers", clusters, problems);
    const servers: Record<string, PairItem> = {};
    for (const c of clusters) {
        const pair = t.servers?.[c.name] ?? t.shared;
        if (pair === undefined) {
            missing(`tls.servers.${c.name}`, `tls.servers.${c.name}.certificate and .privateKey, or tls.shared`);
        } else {
            servers[c.name] = configPair(pair, t.servers?.[c.name] !== undefined ? `tls.servers.${c.name}` : "tls.shared");
        }
    }
    return {
        caBundle: t.caBundle === undefined ? undefined : { text: t.caBundle, key: "tls.caBundle", origin: "" },
        clientCaBundle: t.clientCaBundle === undefined ? undefined : { text: t.clientCaBundle, key: "tls.clientCaBundle", origin: "" },
        client: clientInput === undefined ? undefined : configPair(clientInput, t.client !== undefined ? "tls.client" : "tls.shared"),
        servers,
    };
}
