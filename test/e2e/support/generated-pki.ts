import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { observedNames, observerNames } from "../../../components/names";
import type { Issued } from "../../../tools/pki/openssl-ca";
import { tempDir } from "./processes";
import type { PulumiProject } from "./pulumi";
import type { Manifest } from "./rendered";
import { secretData } from "./rendered";

/**
 * The checks of a generate-mode stack's certificates, written once and run on what each path deployed (the
 * rendered manifests, or the objects in real API servers): openssl verifies every chain, SAN, extended key usage,
 * key and lifetime against the stack's configuration, and the private keys appear only as ciphertext in the state,
 * the outputs and the engine's log. The expectations are spelled out here, not derived from components/pki/spec.ts,
 * so that a change to the spec fails them.
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

export function serialOf(pem: string): string {
    return new crypto.X509Certificate(pem).serialNumber.toLowerCase().replace(/^0+(?=.)/, "");
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

/** A `pulumi stack export --show-secrets` state's private keys: every PEM the tls provider keeps for each PrivateKey resource. */
function privateKeysOf(decryptedState: string): string[] {
    const resources = JSON.parse(decryptedState).deployment.resources as { type: string; outputs?: Record<string, unknown> }[];
    const plain = (value: unknown): string | undefined => {
        if (typeof value === "string") return value;
        const envelope = value as { plaintext?: string } | undefined;
        return envelope?.plaintext === undefined ? undefined : (JSON.parse(envelope.plaintext) as string);
    };
    return resources
        .filter((r) => r.type === "tls:index/privateKey:PrivateKey")
        .flatMap((r) => ["privateKeyPem", "privateKeyPemPkcs8", "privateKeyOpenssh"].map((field) => plain(r.outputs?.[field])))
        .filter((pem): pem is string => pem !== undefined && pem !== "");
}

/**
 * `bytes` as they would show inside any base64 or base64url text, whatever their offset there: for each of the three
 * alignments, the characters that only these bytes determine.
 */
function base64Forms(bytes: Buffer): string[] {
    return [0, 1, 2].flatMap((offset) => {
        const shifted = Buffer.concat([Buffer.alloc(offset), bytes]);
        return [shifted.toString("base64"), shifted.toString("base64url")].map((text) => text.slice(4, -4));
    });
}

/**
 * Text that gives a private key away: its private scalar in hex, and in base64 or base64url at any offset (so inside
 * any PEM or DER form of the key, or a base64 value holding one); and a PEM private key marker base64-encoded (a
 * Secret's data as Kubernetes keeps it).
 */
function keyMaterial(privateKeyPems: string[]): string[] {
    const needles = new Set<string>(base64Forms(Buffer.from(" PRIVATE KEY-----")));
    for (const pem of privateKeyPems) {
        if (pem.includes("OPENSSH")) continue; // the same key as the PEM forms
        const scalar = Buffer.from(crypto.createPrivateKey(pem).export({ format: "jwk" }).d!, "base64url");
        needles.add(scalar.toString("hex"));
        for (const form of base64Forms(scalar)) needles.add(form);
    }
    return [...needles];
}

/** Asserts that no text in `texts` (what → text) holds a PEM private key or any piece of `needles`. */
function assertNoPlaintextKeys(texts: Record<string, string>, needles: string[]): void {
    assert.ok(needles.length > 0, "no key material to look for");
    for (const [what, text] of Object.entries(texts)) {
        assert.doesNotMatch(text, /PRIVATE KEY/, `a PEM private key in ${what}`);
        const lower = text.toLowerCase();
        // Hex may be written in either case; base64 is compared as it is.
        const found = needles.map((n) => (text.includes(n) ? text.indexOf(n) : /^[0-9a-f]+$/.test(n) ? lower.indexOf(n) : -1)).filter((i) => i >= 0);
        // Where, by the nearest field name before each find: never the key material itself.
        const fields = found.map((i) => [...text.slice(Math.max(0, i - 2000), i).matchAll(/"([\w.-]+)":/g)].pop()?.[1] ?? "?");
        assert.equal(found.length, 0, `${found.length} pieces of private keys in plaintext in ${what}, after fields ${[...new Set(fields)].join(", ")}`);
    }
}

/** Asserts that every PrivateKey resource in an exported (encrypted) state keeps its PEM as ciphertext. */
function assertKeysEncrypted(state: string): void {
    const keys = (JSON.parse(state).deployment.resources as { type: string; urn: string; outputs?: Record<string, any> }[]).filter(
        (r) => r.type === "tls:index/privateKey:PrivateKey",
    );
    assert.ok(keys.length > 0, "no PrivateKey in the state");
    for (const key of keys) {
        for (const field of ["privateKeyPem", "privateKeyPemPkcs8", "privateKeyOpenssh"]) {
            assert.equal(typeof key.outputs?.[field]?.ciphertext, "string", `${key.urn} keeps ${field} as ciphertext`);
        }
    }
}

/**
 * The private keys of `stack` (the CAs' and every deployed one) appear only as ciphertext in its state, in its outputs
 * (`stack output --json --show-secrets=false`) and in everything the engine printed in `project` so far.
 */
export async function assertKeysOnlyCiphertext(project: PulumiProject, stack: string, deployed: DeployedPki): Promise<void> {
    const state = await project.exportState(stack);
    assertKeysEncrypted(state);
    const needles = keyMaterial(privateKeysOf(await project.decryptedState(stack)));
    const deployedKeys = keyMaterial([deployed.envoy.privateKey, ...Object.values(deployed.clusters).map((c) => c.server.privateKey)]);
    assert.ok(
        deployedKeys.every((n) => needles.includes(n)),
        "the keys looked for include every deployed one",
    );
    const outputs = (await project.ok(["stack", "output", "-s", stack, "--json", "--show-secrets=false"])).stdout;
    // Never `assert.equal`: a failure would print the key.
    assert.ok(JSON.parse(outputs).clientPrivateKey === "[secret]", "the output clientPrivateKey is a secret");
    assertNoPlaintextKeys({ state, outputs, log: project.transcript.join("\n") }, needles);
}
