import assert from "node:assert/strict";
import * as crypto from "node:crypto";
import type { DeployedPki } from "./generated-pki";
import type { PulumiProject } from "./pulumi";

/**
 * Where a stack's private keys must never appear in plaintext: its state, its outputs and everything the engine
 * printed. What is looked for is the keys themselves (from a decrypted export), so a key in any encoding is found.
 */

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
