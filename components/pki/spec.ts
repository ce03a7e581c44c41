/**
 * What the generated certificates look like, as plain data. The Pki component feeds it to `@pulumi/tls`;
 * the end-to-end tests feed the same spec to openssl, so a change here changes the test material too.
 */

/** The tls provider's default ECDSA curve is P-224, which BoringSSL (Envoy) and many clients refuse. */
export const KEY_SPEC = { algorithm: "ECDSA", ecdsaCurve: "P256" } as const;

export const ORGANIZATION = "envoy-thanos";
export const CLIENT_COMMON_NAME = "envoy-thanos-client";
/**
 * The identity a front door accepts: ingress-nginx matches the subject's CN, Envoy Gateway a DNS subjectAltName
 * (it has no CN matcher), so Envoy's client certificate carries the same name in both.
 */
export const CLIENT_IDENTITY = CLIENT_COMMON_NAME;

export interface CertificateSpec {
    commonName: string;
    organization: string;
    dnsNames: string[];
    /** Names as `@pulumi/tls` spells them (`server_auth`, `cert_signing`, ...). */
    allowedUses: string[];
    isCa: boolean;
}

/** The CA's name carries a per-stack random id, so the CAs of two environments are never confused by subject. */
export function caSpec(caId: string): CertificateSpec {
    return {
        commonName: `envoy-thanos CA ${caId}`,
        organization: ORGANIZATION,
        dnsNames: [],
        allowedUses: ["cert_signing", "crl_signing", "digital_signature"],
        isCa: true,
    };
}

/** The certificate an observed cluster's ingress presents: its only DNS SAN is the cluster's host. */
export function serverSpec(host: string): CertificateSpec {
    return {
        commonName: host,
        organization: ORGANIZATION,
        dnsNames: [host],
        allowedUses: ["server_auth", "digital_signature", "key_encipherment"],
        isCa: false,
    };
}

/** The certificate Envoy presents to every observed cluster. */
export function clientSpec(): CertificateSpec {
    return {
        commonName: CLIENT_COMMON_NAME,
        organization: ORGANIZATION,
        dnsNames: [CLIENT_IDENTITY],
        allowedUses: ["client_auth", "digital_signature", "key_encipherment"],
        isCa: false,
    };
}
