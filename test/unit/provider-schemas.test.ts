import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, it } from "node:test";

/**
 * The tls and random plugins are built from upstream source vendored in third_party/ (older commits than the SDKs in
 * package-lock.json, since no newer one could be brought). What the engine sends a plugin is decided by the SDK's
 * resource classes, so the vendored schema must serve every token, property and secret field those classes use,
 * except the skew named here.
 */

/**
 * @pulumi/tls 5.6 added write-only private-key inputs (`...PemWo`, sent only when set, with a `...WoVersion` to
 * trigger updates) that the vendored v5.5.1-9 provider lacks. The program passes private keys through the classic
 * `privateKeyPem`/`caPrivateKeyPem` inputs, which both serve; a test below keeps it so.
 */
const KNOWN_SKEW: Record<string, string[]> = {
    tls: [
        "tls:index/certRequest:CertRequest.privateKeyPemWo",
        "tls:index/certRequest:CertRequest.privateKeyPemWoVersion",
        "tls:index/locallySignedCert:LocallySignedCert.caPrivateKeyPemWo",
        "tls:index/locallySignedCert:LocallySignedCert.caPrivateKeyPemWoVersion",
        "tls:index/selfSignedCert:SelfSignedCert.privateKeyPemWo",
        "tls:index/selfSignedCert:SelfSignedCert.privateKeyPemWoVersion",
    ],
    random: [],
};

const ROOT = path.resolve(__dirname, "../..");

interface SchemaResource {
    properties?: Record<string, { secret?: boolean }>;
    inputProperties?: Record<string, { secret?: boolean }>;
}

interface SdkResource {
    file: string;
    token: string;
    /** Every property the class reads back (state and outputs). */
    properties: Set<string>;
    /** The properties its constructor sends from the user's arguments. */
    inputs: Set<string>;
    secretOutputs: Set<string>;
}

/** The resource classes of an SDK package, read from its compiled JavaScript (the code the program runs). */
function sdkResources(pkg: string): SdkResource[] {
    const dir = path.join(ROOT, "node_modules", "@pulumi", pkg);
    const resources: SdkResource[] = [];
    for (const file of fs.readdirSync(dir).filter((f) => f.endsWith(".js"))) {
        const source = fs.readFileSync(path.join(dir, file), "utf8");
        const token = /static __pulumiType = '([^']+)'/.exec(source)?.[1];
        if (!token?.includes(":")) continue; // the provider class's token is the bare package name
        const assigned = [...source.matchAll(/resourceInputs\["(\w+)"\] = (\S+)/g)];
        const secrets = /additionalSecretOutputs: \[([^\]]*)\]/.exec(source)?.[1] ?? "";
        resources.push({
            file,
            token,
            properties: new Set(assigned.map((m) => m[1])),
            inputs: new Set(assigned.filter((m) => m[2].startsWith("args?.") || m[2].startsWith("(args?.")).map((m) => m[1])),
            secretOutputs: new Set([...secrets.matchAll(/"(\w+)"/g)].map((m) => m[1])),
        });
    }
    return resources;
}

function vendoredSchema(pkg: string): { resources: Record<string, SchemaResource> } {
    const file = path.join(ROOT, "third_party", `pulumi-${pkg}`, "provider", "cmd", `pulumi-resource-${pkg}`, "schema.json");
    return JSON.parse(fs.readFileSync(file, "utf8"));
}

for (const pkg of ["tls", "random"]) {
    describe(`the vendored ${pkg} plugin serves what @pulumi/${pkg} calls`, () => {
        const schema = vendoredSchema(pkg);
        const resources = sdkResources(pkg);

        it("reads the SDK's resource classes", () => {
            // Guards the parsing above: a layout change in the SDK must not make the checks below vacuous.
            assert.ok(resources.length >= (pkg === "tls" ? 4 : 8), `found ${resources.map((r) => r.token).join(", ")}`);
            for (const resource of resources) assert.ok(resource.inputs.size > 0 && resource.properties.size > 0, resource.file);
        });

        it("every resource token, input and output property, with the same secret fields, but for the named skew", () => {
            const unserved: string[] = [];
            for (const resource of resources) {
                const served = schema.resources[resource.token];
                assert.ok(served, `${resource.token} (${resource.file}) is not in the vendored schema`);
                const inputs = Object.keys(served.inputProperties ?? {});
                const outputs = Object.keys(served.properties ?? {});
                for (const property of resource.properties) {
                    if (!outputs.includes(property) || (resource.inputs.has(property) && !inputs.includes(property))) {
                        unserved.push(`${resource.token}.${property}`);
                    }
                }
                const secretInSchema = outputs.filter((p) => served.properties![p].secret);
                const secretInSdk = [...resource.secretOutputs].filter((p) => !unserved.includes(`${resource.token}.${p}`));
                assert.deepEqual(secretInSdk.sort(), secretInSchema.sort(), `${resource.token}: secret outputs`);
            }
            assert.deepEqual([...new Set(unserved)].sort(), KNOWN_SKEW[pkg].sort());
        });

        it("the program uses none of the unserved properties", () => {
            const sources = fs.readdirSync(path.join(ROOT, "components"), { recursive: true, encoding: "utf8" }).filter((f) => f.endsWith(".ts"));
            for (const unserved of KNOWN_SKEW[pkg]) {
                const property = unserved.split(".")[1];
                for (const file of sources) {
                    assert.ok(!fs.readFileSync(path.join(ROOT, "components", file), "utf8").includes(property), `components/${file} uses ${property}`);
                }
            }
        });
    });
}
