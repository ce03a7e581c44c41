import * as crypto from "node:crypto";

/**
 * Checks of operator-supplied PEM material (`tls.mode: provided` or `files`), with Node's own X.509 parser.
 * Each check returns problems as text with the field they are about; the caller attaches the config key
 * (and catches a file path given instead of PEM text first). Messages never quote key material.
 */

const CERT_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;
/** A private key block of any kind (PKCS#8, PKCS#1, SEC1, encrypted): what must never be in a certificate value. */
const PRIVATE_KEY_BLOCK = /-----BEGIN [A-Z ]*PRIVATE KEY-----/;
const ENCRYPTED_KEY = /-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type:\s*4,ENCRYPTED/;
const EKU_SERVER_AUTH = "1.3.6.1.5.5.7.3.1";
const EKU_CLIENT_AUTH = "1.3.6.1.5.5.7.3.2";
const MAX_CHAIN_DEPTH = 8;

/** One problem; `field` is the key under the checked entry it is about (`privateKey`), when it is not the entry itself. */
export interface MaterialProblem {
    field?: "certificate" | "privateKey";
    message: string;
}

type Parsed<T> = { value: T } | { problem: string };

function parseCertificates(pem: string): Parsed<crypto.X509Certificate[]> {
    const blocks = pem.match(CERT_BLOCK) ?? [];
    if (blocks.length === 0) {
        return { problem: "contains no PEM CERTIFICATE block (-----BEGIN CERTIFICATE-----); set the certificate's PEM text" };
    }
    try {
        return { value: blocks.map((block) => new crypto.X509Certificate(block)) };
    } catch {
        return { problem: "has a CERTIFICATE block that is not a valid certificate; check that the PEM text was copied whole" };
    }
}

/** The first certificate of `pem` (the leaf of a chain), or undefined when there is none that parses; the checks say why. */
export function leafCertificate(pem: string): crypto.X509Certificate | undefined {
    const parsed = parseCertificates(pem);
    return "value" in parsed ? parsed.value[0] : undefined;
}

function parsePrivateKey(pem: string): Parsed<crypto.KeyObject> {
    if (ENCRYPTED_KEY.test(pem)) {
        return {
            problem: "is encrypted; decrypt it with openssl pkey -in key.pem -out key.plain.pem (it asks for the passphrase) and use key.plain.pem instead",
        };
    }
    try {
        return { value: crypto.createPrivateKey(pem) };
    } catch {
        return { problem: "is not a PEM private key (PKCS#8, PKCS#1 or SEC1); set the key's PEM text (-----BEGIN ... PRIVATE KEY-----)" };
    }
}

export interface CaBundleCheck {
    problems: string[];
    /** The CA certificates, only when the bundle is usable: chains are checked against it only then. */
    roots?: crypto.X509Certificate[];
}

export function checkCaBundle(pem: string, now: Date): CaBundleCheck {
    const parsed = parseCertificates(pem);
    if ("problem" in parsed) {
        return { problems: [parsed.problem] };
    }
    const problems: string[] = [];
    parsed.value.forEach((cert, i) => {
        if (!cert.ca) {
            problems.push(
                `certificate #${i + 1} (${cert.subject.replace(/\n/g, ", ")}) is not a CA certificate (basicConstraints CA:FALSE); ` +
                    "set the certificate of the CA that issued the server and client certificates",
            );
        }
        if (new Date(cert.validTo) < now) {
            problems.push(`certificate #${i + 1} expired on ${cert.validTo}; set the CA's renewed certificate`);
        }
    });
    return problems.length === 0 ? { problems, roots: parsed.value } : { problems };
}

export interface KeyPairCheck {
    /** What the certificate is for: Envoy presents a client certificate, nginx a server certificate. */
    purpose: "client" | "server";
    /** Hostnames the certificate must cover (server purpose). */
    hosts: string[];
    now: Date;
    /** How messages name the CA bundle (`tls.caBundle`, or its file). */
    caName: string;
    /** The usable CA bundle's certificates; without them the chain is not checked (the bundle's own problem is reported). */
    roots?: crypto.X509Certificate[];
}

/** Problems with a certificate chain and its private key; an empty list means usable. */
export function checkKeyPair(certificatePem: string, privateKeyPem: string, check: KeyPairCheck): MaterialProblem[] {
    // Each pasted into the other's place is one mistake; either alone is named for what it holds.
    const certificateHoldsKey = PRIVATE_KEY_BLOCK.test(certificatePem) && !certificatePem.includes("-----BEGIN CERTIFICATE-----");
    const keyHoldsCertificate = privateKeyPem.includes("-----BEGIN CERTIFICATE-----") && !PRIVATE_KEY_BLOCK.test(privateKeyPem);
    if (certificateHoldsKey && keyHoldsCertificate) {
        return [
            {
                message:
                    "the certificate and the private key look swapped (the certificate holds a PRIVATE KEY block, the private key a CERTIFICATE block); swap the two",
            },
        ];
    }
    const chain = parseCertificates(certificatePem);
    const key = parsePrivateKey(privateKeyPem);
    const unreadable: MaterialProblem[] = [];
    if (certificateHoldsKey) {
        unreadable.push({
            field: "certificate",
            message: "holds a private key, not a certificate; set the certificate's PEM text (-----BEGIN CERTIFICATE-----)",
        });
    } else if ("problem" in chain) {
        unreadable.push({ field: "certificate", message: chain.problem });
    }
    if (keyHoldsCertificate) {
        unreadable.push({ field: "privateKey", message: "holds a certificate, not a private key; set the key's PEM text (-----BEGIN ... PRIVATE KEY-----)" });
    } else if ("problem" in key) {
        unreadable.push({ field: "privateKey", message: key.problem });
    }
    if ("problem" in chain || "problem" in key) {
        return unreadable;
    }
    const [leaf, ...intermediates] = chain.value;
    const problems: MaterialProblem[] = [];
    const certificateProblem = (message: string) => problems.push({ field: "certificate", message });
    if (!leaf.checkPrivateKey(key.value)) {
        problems.push({
            field: "privateKey",
            message: "does not belong to the certificate (the public keys differ); set the key the certificate was issued for",
        });
    }
    if (new Date(leaf.validTo) < check.now) {
        certificateProblem(`expired on ${leaf.validTo}; set a renewed certificate`);
    }
    if (new Date(leaf.validFrom) > check.now) {
        certificateProblem(`is not valid before ${leaf.validFrom}; check the issuing host's clock or wait`);
    }
    for (const host of check.hosts) {
        // subject: "never" so that only the DNS SANs count, as in Envoy's SAN matcher and in browsers.
        if (leaf.checkHost(host, { subject: "never" }) === undefined) {
            certificateProblem(`does not cover host ${host} (no matching DNS subjectAltName); issue it with ${host} as a DNS SAN`);
        }
    }
    const eku = leaf.keyUsage;
    const wanted = check.purpose === "client" ? EKU_CLIENT_AUTH : EKU_SERVER_AUTH;
    if (eku !== undefined && eku.length > 0 && !eku.includes(wanted)) {
        certificateProblem(
            `has an extended key usage without ${check.purpose === "client" ? "clientAuth" : "serverAuth"}, ` +
                `so ${check.purpose === "client" ? "nginx" : "Envoy"} will reject it; issue it with that usage`,
        );
    }
    if (check.roots !== undefined && !chainsToRoot(leaf, intermediates, check.roots)) {
        certificateProblem(
            `is not signed by a CA in ${check.caName} (directly or through the intermediates that follow it); add the issuing CA to ${check.caName}`,
        );
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
