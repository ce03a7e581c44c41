import * as crypto from "node:crypto";

/**
 * Checks of operator-supplied PEM material (`tls.mode: provided` or `files`), with Node's own X.509 parser.
 * Each check returns problems as text; the caller attaches the config key. Messages never quote key material.
 */

const CERT_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;
const EKU_SERVER_AUTH = "1.3.6.1.5.5.7.3.1";
const EKU_CLIENT_AUTH = "1.3.6.1.5.5.7.3.2";
const MAX_CHAIN_DEPTH = 8;

export function parseCertificates(pem: string): crypto.X509Certificate[] {
    const blocks = pem.match(CERT_BLOCK) ?? [];
    return blocks.map((block) => new crypto.X509Certificate(block));
}

export interface KeyPairCheck {
    /** What the certificate is for: Envoy presents a client certificate, nginx a server certificate. */
    purpose: "client" | "server";
    /** Hostnames the certificate must cover (server purpose). */
    hosts: string[];
    now: Date;
    /** How messages name the CA bundle (`tls.caBundle`, or its file). */
    caName: string;
}

/** Problems with a CA bundle; an empty list means usable. */
export function checkCaBundle(pem: string, now: Date): string[] {
    let certs: crypto.X509Certificate[];
    try {
        certs = parseCertificates(pem);
    } catch {
        return ["is not valid PEM: a CERTIFICATE block could not be parsed"];
    }
    if (certs.length === 0) {
        return ["contains no PEM CERTIFICATE block"];
    }
    const problems: string[] = [];
    certs.forEach((cert, i) => {
        if (!cert.ca) {
            problems.push(`certificate #${i + 1} (${cert.subject.replace(/\n/g, ", ")}) is not a CA certificate (basicConstraints CA:FALSE)`);
        }
        if (new Date(cert.validTo) < now) {
            problems.push(`certificate #${i + 1} expired on ${cert.validTo}`);
        }
    });
    return problems;
}

/** Problems with a certificate chain + private key against a CA bundle; an empty list means usable. */
export function checkKeyPair(certificatePem: string, privateKeyPem: string, caBundlePem: string, check: KeyPairCheck): string[] {
    let chain: crypto.X509Certificate[];
    try {
        chain = parseCertificates(certificatePem);
    } catch {
        return ["certificate is not valid PEM: a CERTIFICATE block could not be parsed"];
    }
    if (chain.length === 0) {
        return ["certificate contains no PEM CERTIFICATE block"];
    }
    let key: crypto.KeyObject;
    try {
        key = crypto.createPrivateKey(privateKeyPem);
    } catch {
        return ["privateKey is not a PEM private key (PKCS#8, PKCS#1 or SEC1)"];
    }
    const [leaf, ...intermediates] = chain;
    const problems: string[] = [];
    if (!leaf.checkPrivateKey(key)) {
        problems.push("privateKey does not belong to the certificate (the public keys differ)");
    }
    if (new Date(leaf.validTo) < check.now) {
        problems.push(`certificate expired on ${leaf.validTo}`);
    }
    if (new Date(leaf.validFrom) > check.now) {
        problems.push(`certificate is not valid before ${leaf.validFrom}`);
    }
    for (const host of check.hosts) {
        // subject: "never" so that only the DNS SANs count, as in Envoy's SAN matcher and in browsers.
        if (leaf.checkHost(host, { subject: "never" }) === undefined) {
            problems.push(`certificate does not cover host ${host} (no matching DNS subjectAltName)`);
        }
    }
    const eku = leaf.keyUsage;
    const wanted = check.purpose === "client" ? EKU_CLIENT_AUTH : EKU_SERVER_AUTH;
    if (eku !== undefined && eku.length > 0 && !eku.includes(wanted)) {
        problems.push(
            `certificate's extended key usage lacks ${check.purpose === "client" ? "clientAuth" : "serverAuth"}, ` +
                `so ${check.purpose === "client" ? "nginx" : "Envoy"} will reject it`,
        );
    }
    let roots: crypto.X509Certificate[] = [];
    try {
        roots = parseCertificates(caBundlePem);
    } catch {
        // The CA bundle's own check reports this.
    }
    if (roots.length > 0 && !chainsToRoot(leaf, intermediates, roots)) {
        problems.push(`certificate is not signed by a CA in ${check.caName} (directly or through the intermediates that follow it)`);
    }
    return problems;
}

function chainsToRoot(leaf: crypto.X509Certificate, intermediates: crypto.X509Certificate[], roots: crypto.X509Certificate[]): boolean {
    let current = leaf;
    for (let depth = 0; depth < MAX_CHAIN_DEPTH; depth++) {
        if (roots.some((root) => current.checkIssued(root) && current.verify(root.publicKey))) {
            return true;
        }
        const issuer = intermediates.find((c) => c !== current && current.checkIssued(c) && current.verify(c.publicKey));
        if (issuer === undefined) {
            return false;
        }
        current = issuer;
    }
    return false;
}
