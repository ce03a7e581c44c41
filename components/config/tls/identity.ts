import { leafCertificate } from "../../pki/material";
import { CLIENT_IDENTITY } from "../../pki/spec";
import { ConfigProblem } from "../errors";
import { BuildOptions } from "../options";
import { StackConfigInput } from "../schema";
import type { ObservedClusterModel } from "../sections/clusters";
import type { TlsModel } from "./resolve";

/** The subject CN of the first certificate in `pem`, or undefined when there is none or it cannot be read. */
function commonNameOf(pem: string): string | undefined {
    // Unreadable material gives undefined here; the material checks report it.
    return leafCertificate(pem)
        ?.subject.split("\n")
        .find((line) => line.startsWith("CN="))
        ?.slice(3);
}

/**
 * Envoy Gateway pins a client by subjectAltName only, so a gateway-api cluster needs Envoy's client certificate to carry
 * its CN as a DNS subjectAltName too. Generated certificates do; supplied ones are checked here.
 */
function checkClientIdentity(certificatePem: string, identity: string, key: string, problems: ConfigProblem[]): void {
    // Unreadable material is reported by the material checks.
    const leaf = leafCertificate(certificatePem);
    if (leaf === undefined || leaf.checkHost(identity, { subject: "never" }) !== undefined) return;
    problems.push({
        key,
        message:
            `Envoy's client certificate (CN=${identity}) has no DNS subjectAltName ${identity}; a gateway-api front door (Envoy Gateway) ` +
            `pins the client by subjectAltName. Issue it with subjectAltName=DNS:${identity}, or set frontDoor: ingress-nginx`,
    });
}

/**
 * The client identity every front door accepts: `envoy-thanos-client` for generated certificates, a supplied
 * certificate's own CN otherwise; with a gateway-api cluster, that CN must also be a DNS subjectAltName.
 */
export function resolveClientIdentity(
    input: StackConfigInput,
    tls: TlsModel,
    clusters: ObservedClusterModel[],
    options: BuildOptions,
    problems: ConfigProblem[],
): string {
    const clientIdentity =
        tls.mode === "generate" || !options.checkSecretMaterial ? CLIENT_IDENTITY : (commonNameOf(tls.client.certificate) ?? CLIENT_IDENTITY);
    if (tls.mode !== "generate" && options.checkSecretMaterial && clusters.some((c) => c.frontDoor === "gateway-api")) {
        const t = input.tls ?? {};
        const key =
            t.mode === "provided"
                ? t.client !== undefined
                    ? "tls.client"
                    : "tls.shared"
                : t.files?.client?.certificate !== undefined
                  ? "tls.files.client.certificate"
                  : "tls.directory";
        checkClientIdentity(tls.client.certificate, clientIdentity, key, problems);
    }
    return clientIdentity;
}
