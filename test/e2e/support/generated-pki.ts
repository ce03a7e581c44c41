import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { observedNames, observerNames } from "../../../components/names";
import type { Issued } from "../../../tools/pki/openssl-ca";
import { tempDir } from "./processes";
import type { Manifest } from "./rendered";
import { secretData } from "./rendered";

/**
 * The checks of a generate-mode stack's certificates, written once and run on what each path deployed (the
 * rendered manifests, or the objects in real API servers): openssl verifies every chain, SAN, extended key usage,
 * key and lifetime against the stack's configuration (key-secrecy.ts checks where the keys never appear). The
 * expectations are spelled out here, not derived from components/pki/spec.ts, so that a change to the spec fails them.
 */

export interface PemPair {
    certificate: string;
    privateKey: string;
}

/** What a generate-mode stack deployed: Envoy's client Secret, and per observed cluster its server Secret and the client CA its front door verifies against. */
export interface DeployedPki {
    envoy: PemPair & { ca: string };
    clusters: Record<string, { server: PemPair; clientCa: string }>;
}

export interface DeployedCluster {
    name: string;
    frontDoor: "ingress-nginx" | "gateway-api";
    /** The sidecar's namespace, where the cluster's Secrets live. */
    namespace: string;
}

/** Reads one object of the deployment: `where` is "observer" or an observed cluster's name. */
export type ObjectReader = (where: string, kind: "Secret" | "ConfigMap", namespace: string, name: string) => Promise<Manifest>;

/** The deployed certificates, read through `read` from rendered manifests or API servers alike. */
export async function readDeployedPki(read: ObjectReader, observerNamespace: string, clusters: DeployedCluster[]): Promise<DeployedPki> {
    const client = secretData(await read("observer", "Secret", observerNamespace, observerNames.tlsSecret));
    const deployed: DeployedPki = { envoy: { certificate: client["tls.crt"], privateKey: client["tls.key"], ca: client["ca.crt"] }, clusters: {} };
    for (const c of clusters) {
        const names = observedNames(c.name);
        const server = secretData(await read(c.name, "Secret", c.namespace, names.serverTlsSecret));
        // ingress-nginx reads its client CA from a Secret, Envoy Gateway from a ConfigMap.
        const clientCa =
            c.frontDoor === "gateway-api"
                ? (await read(c.name, "ConfigMap", c.namespace, names.clientCaConfigMap)).data["ca.crt"]
                : secretData(await read(c.name, "Secret", c.namespace, names.clientCaSecret))["ca.crt"];
        deployed.clusters[c.name] = { server: { certificate: server["tls.crt"], privateKey: server["tls.key"] }, clientCa };
    }
    return deployed;
}

/** `pair` written to files in `dir`, in the form the test PKI's certificates have (for the front doors and Envoy of a topology). */
export function asIssued(dir: string, name: string, pair: PemPair): Issued {
    fs.mkdirSync(dir, { recursive: true });
    const certificatePath = path.join(dir, `${name}.crt`);
    const privateKeyPath = path.join(dir, `${name}.key`);
    fs.writeFileSync(certificatePath, pair.certificate);
    fs.writeFileSync(privateKeyPath, pair.privateKey, { mode: 0o600 });
    return { ...pair, certificatePath, privateKeyPath };
}

/** The certificates of a PEM bundle, each as its own PEM block. */
export function pemBlocks(bundle: string): string[] {
    return bundle.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/g)?.map((b) => (b.endsWith("\n") ? b : `${b}\n`)) ?? [];
}

/** What openssl reads in one certificate. */
interface CertificateFacts {
    subject: Record<string, string>;
    /** Extension name → its value lines, as `openssl x509 -ext` prints them. */
    extensions: Record<string, string>;
    lifetimeHours: number;
    notBefore: Date;
    curve: string | undefined;
    publicKey: string;
}

class Openssl {
    readonly dir = tempDir("generated-pki");
    private files = 0;

    file(content: string): string {
        const file = path.join(this.dir, `${++this.files}.pem`);
        fs.writeFileSync(file, content, { mode: 0o600 });
        return file;
    }

    run(args: string[]): string {
        return execFileSync("openssl", args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    }

    /** `openssl verify`'s verdict: "OK", or its error text. */
    verify(caBundle: string, certificate: string, options: string[]): string {
        try {
            const out = this.run(["verify", "-x509_strict", "-CAfile", this.file(caBundle), ...options, this.file(certificate)]);
            return out.trim().endsWith(": OK") ? "OK" : out.trim();
        } catch (err) {
            const e = err as { stdout?: string; stderr?: string };
            return `${e.stdout ?? ""}${e.stderr ?? ""}`.trim();
        }
    }

    facts(certificate: string): CertificateFacts {
        const file = this.file(certificate);
        const subject = this.run(["x509", "-in", file, "-noout", "-subject", "-nameopt", "RFC2253"])
            .trim()
            .replace(/^subject=/, "");
        const extensionText = this.run(["x509", "-in", file, "-noout", "-ext", "subjectAltName,extendedKeyUsage,keyUsage,basicConstraints"]);
        const extensions: Record<string, string> = {};
        let current = "";
        for (const line of extensionText.split("\n")) {
            if (/^\S/.test(line)) {
                current = line.replace(/:( critical)?\s*$/, "").replace(/^X509v3 /, "");
                extensions[current] = "";
            } else if (line.trim() !== "") extensions[current] = [extensions[current], line.trim()].filter(Boolean).join(" ");
        }
        const dates = Object.fromEntries(
            this.run(["x509", "-in", file, "-noout", "-dates"])
                .trim()
                .split("\n")
                .map((l) => l.split("=")),
        );
        const notBefore = new Date(dates.notBefore);
        const text = this.run(["x509", "-in", file, "-noout", "-text"]);
        return {
            subject: Object.fromEntries(subject.split(",").map((part) => part.split("=") as [string, string])),
            extensions,
            lifetimeHours: (new Date(dates.notAfter).getTime() - notBefore.getTime()) / 3_600_000,
            notBefore,
            curve: /NIST CURVE: (\S+)/.exec(text)?.[1],
            publicKey: this.run(["x509", "-in", file, "-noout", "-pubkey"]),
        };
    }

    publicKeyOf(privateKey: string): string {
        return this.run(["pkey", "-in", this.file(privateKey), "-pubout"]);
    }

    remove(): void {
        fs.rmSync(this.dir, { recursive: true, force: true });
    }
}

export interface IssuedExpectations {
    clusters: { name: string; host: string }[];
    /** The stack's tls.validityHours and tls.caValidityHours. */
    validityHours: number;
    caValidityHours: number;
    /** How many CAs the bundles carry: 1, or 2 during a rotation's overlap. */
    trustedCas: number;
    /** The CA that must have issued Envoy's and the servers' certificates (alone, without the rest of the bundle); default: the bundle. */
    issuer?: string;
}

const CA_SUBJECT = /^envoy-thanos CA [0-9a-f]{8}$/;

/**
 * openssl's verdict on every deployed certificate: each chain, SAN, extended key usage, key and lifetime as the stack
 * configures them, every front door's client CA the same bundle as Envoy's, and P-256 keys throughout.
 */
export function checkIssued(pki: DeployedPki, expected: IssuedExpectations): void {
    const openssl = new Openssl();
    try {
        const cas = pemBlocks(pki.envoy.ca);
        assert.equal(cas.length, expected.trustedCas, `Envoy's ca.crt carries ${cas.length} CAs`);
        for (const [name, cluster] of Object.entries(pki.clusters)) {
            assert.equal(cluster.clientCa, pki.envoy.ca, `${name}'s front door verifies Envoy against the same CA bundle`);
        }
        for (const ca of cas) {
            const facts = openssl.facts(ca);
            assert.match(facts.subject.CN, CA_SUBJECT, "the CA's name carries the stack's random id");
            assert.equal(facts.subject.O, "envoy-thanos");
            assert.equal(openssl.verify(ca, ca, []), "OK", `the CA ${facts.subject.CN} is self-signed`);
            assert.equal(facts.extensions["Basic Constraints"], "CA:TRUE");
            assert.equal(facts.extensions["Key Usage"], "Digital Signature, Certificate Sign, CRL Sign");
            assert.equal(facts.lifetimeHours, expected.caValidityHours, `${facts.subject.CN} lives tls.caValidityHours`);
            assert.equal(facts.curve, "P-256");
        }
        const issuer = expected.issuer ?? pki.envoy.ca;
        const leaf = (what: string, pair: PemPair, purpose: string, hostname: string | undefined) => {
            const args = ["-purpose", purpose, ...(hostname === undefined ? [] : ["-verify_hostname", hostname])];
            assert.equal(openssl.verify(pki.envoy.ca, pair.certificate, args), "OK", `${what} verifies against the CA bundle`);
            assert.equal(openssl.verify(issuer, pair.certificate, args), "OK", `${what} was issued by the issuing CA`);
            const facts = openssl.facts(pair.certificate);
            assert.equal(facts.publicKey, openssl.publicKeyOf(pair.privateKey), `${what}'s key belongs to its certificate`);
            assert.equal(facts.lifetimeHours, expected.validityHours, `${what} lives tls.validityHours`);
            assert.ok(facts.notBefore.getTime() <= Date.now() + 60_000, `${what} is valid now`);
            assert.equal(facts.curve, "P-256");
            assert.equal(facts.subject.O, "envoy-thanos");
            return facts;
        };
        const client = leaf("Envoy's client certificate", pki.envoy, "sslclient", undefined);
        assert.equal(client.subject.CN, "envoy-thanos-client");
        // The identity both front doors pin: ingress-nginx the CN, Envoy Gateway the DNS SAN.
        assert.equal(client.extensions["Subject Alternative Name"], "DNS:envoy-thanos-client");
        assert.equal(client.extensions["Extended Key Usage"], "TLS Web Client Authentication");
        assert.equal(client.extensions["Key Usage"], "Digital Signature, Key Encipherment");
        for (const { name, host } of expected.clusters) {
            const server = pki.clusters[name]?.server;
            assert.ok(server, `no server certificate deployed for ${name}`);
            const facts = leaf(`${name}'s server certificate`, server, "sslserver", host);
            assert.equal(facts.subject.CN, host);
            assert.equal(facts.extensions["Subject Alternative Name"], `DNS:${host}`, `${name}'s only SAN is its host`);
            assert.equal(facts.extensions["Extended Key Usage"], "TLS Web Server Authentication");
            assert.equal(facts.extensions["Key Usage"], "Digital Signature, Key Encipherment");
            for (const other of expected.clusters.filter((c) => c.host !== host)) {
                assert.notEqual(
                    openssl.verify(pki.envoy.ca, server.certificate, ["-verify_hostname", other.host]),
                    "OK",
                    `${name}'s certificate is not ${other.host}'s`,
                );
            }
        }
    } finally {
        openssl.remove();
    }
}
