import type { TlsModel } from "../config/model";

/**
 * Resource plugins, beyond kubernetes, that the engine must load for a TLS mode: generate mode issues
 * its certificates with @pulumi/tls and names the CA with @pulumi/random. Kept beside the Pki component
 * so that the wrapper (tools/pulumi.sh) can say, before the engine starts, which ones are missing.
 */
export function providerPluginsFor(mode: TlsModel["mode"]): string[] {
    return mode === "generate" ? ["tls", "random"] : [];
}
