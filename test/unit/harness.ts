import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { rawConfigFromStackFiles } from "../../components/config/sources";

/**
 * Runs the program under Pulumi's mock runtime and records what it registers.
 * Each run gets fresh mocks and config, so one test file can run several stacks.
 */

export interface RecordedResource {
    type: string;
    name: string;
    inputs: Record<string, any>;
    /** Name of the provider resource this resource uses ("" for components and default providers). */
    provider: string;
    custom: boolean;
    /** The ID the resource is imported from (the `import` option), if any. */
    importId?: string;
}

export interface RunResult {
    resources: RecordedResource[];
    /** Resolved stack outputs, when the run succeeded. */
    outputs?: Record<string, unknown>;
    /** Names of the stack outputs the engine stores as secrets. */
    secretOutputs?: string[];
    error?: Error;
    /** What the program told the user through `pulumi.log.warn`. */
    warnings: string[];
}

/** Not in the typings, but it is how Pulumi itself waits for a program's registrations to drain before exiting. */
const { waitForRPCs } = require("@pulumi/pulumi/runtime/settings") as { waitForRPCs(): Promise<void> };

/** Mocked outputs of the tls provider, recognisable in assertions. */
export const MOCK_PRIVATE_KEY_MARK = "MOCK PRIVATE KEY";
export const MOCK_CERT_MARK = "MOCK CERTIFICATE";

function mockState(type: string, name: string, inputs: Record<string, any>): Record<string, any> {
    switch (type) {
        case "tls:index/privateKey:PrivateKey":
            return { ...inputs, privateKeyPem: `-----BEGIN PRIVATE KEY-----\n${MOCK_PRIVATE_KEY_MARK} ${name}\n-----END PRIVATE KEY-----\n` };
        case "tls:index/selfSignedCert:SelfSignedCert":
        case "tls:index/locallySignedCert:LocallySignedCert":
            return { ...inputs, certPem: `-----BEGIN CERTIFICATE-----\n${MOCK_CERT_MARK} ${name}\n-----END CERTIFICATE-----\n` };
        case "tls:index/certRequest:CertRequest":
            return { ...inputs, certRequestPem: `-----BEGIN CERTIFICATE REQUEST-----\n${name}\n-----END CERTIFICATE REQUEST-----\n` };
        case "random:index/randomId:RandomId":
            return { ...inputs, hex: "0a1b2c3d" };
        default:
            return inputs;
    }
}

function providerName(reference: string | undefined): string {
    // A provider reference is "<urn>::<id>"; the URN ends with "::<name>".
    if (!reference) {
        return "";
    }
    const urn = reference.slice(0, reference.lastIndexOf("::"));
    return urn.slice(urn.lastIndexOf("::") + 2);
}

const SECRET_SIG = "4dabf18193072939515e22adb298388d";

/** Pulumi secrets reach the mocks wrapped in a signature object; tests look through the wrapper. */
export function isSecret(value: unknown): boolean {
    return value !== null && typeof value === "object" && SECRET_SIG in (value as object);
}

export function plain(value: any): any {
    if (isSecret(value)) return plain(value.value);
    if (Array.isArray(value)) return value.map(plain);
    if (value !== null && typeof value === "object") return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]));
    return value;
}

/** Values the program would receive from `pulumi config` for the `envoy-thanos` namespace. */
export function toRuntimeConfig(config: Record<string, unknown>): Record<string, string> {
    return Object.fromEntries(Object.entries(config).map(([key, value]) => [`envoy-thanos:${key}`, typeof value === "string" ? value : JSON.stringify(value)]));
}

async function resolve(value: unknown): Promise<unknown> {
    if (pulumi.Output.isInstance(value)) {
        return new Promise((done) => (value as pulumi.Output<unknown>).apply(done));
    }
    if (Array.isArray(value)) {
        return Promise.all(value.map(resolve));
    }
    if (value !== null && typeof value === "object") {
        const entries = await Promise.all(Object.entries(value).map(async ([k, v]) => [k, await resolve(v)] as const));
        return Object.fromEntries(entries);
    }
    return value;
}

/**
 * Sets mocks and config, then runs `program` (which must import the code under test lazily, after the mocks).
 * Waits until every registration has been answered.
 */
export async function runWithMocks(
    config: Record<string, unknown>,
    program: () => Record<string, unknown> | Promise<Record<string, unknown>>,
    options: { preview?: boolean } = {},
): Promise<RunResult> {
    const resources: RecordedResource[] = [];
    await pulumi.runtime.setMocks(
        {
            newResource: (args) => {
                resources.push({
                    type: args.type,
                    name: args.name,
                    inputs: args.inputs,
                    provider: providerName(args.provider),
                    custom: args.custom ?? true,
                    importId: args.id || undefined,
                });
                return { id: `${args.name}-id`, state: mockState(args.type, args.name, args.inputs) };
            },
            call: (args) => args.inputs,
        },
        "envoy-thanos",
        "test",
        options.preview ?? false,
    );
    pulumi.runtime.setAllConfig(toRuntimeConfig(config));
    let outputs: Record<string, unknown> | undefined;
    let error: Error | undefined;
    const warnings: string[] = [];
    const log = pulumi.log as { warn: typeof pulumi.log.warn };
    const warn = log.warn;
    log.warn = async (message: string) => void warnings.push(message);
    try {
        outputs = await program();
    } catch (err) {
        error = err as Error;
    } finally {
        log.warn = warn;
    }
    const resolved = outputs === undefined ? undefined : ((await resolve(outputs)) as Record<string, unknown>);
    const secretOutputs: string[] = [];
    for (const [name, value] of Object.entries(outputs ?? {})) {
        if (pulumi.Output.isInstance(value) && (await pulumi.isSecret(value))) secretOutputs.push(name);
    }
    await waitForRPCs();
    return { resources, outputs: resolved, secretOutputs, error, warnings };
}

/** The program as `index.ts` runs it, imported lazily so the mocks are in place first. */
export function runProgram(config: Record<string, unknown>, options: { preview?: boolean } = {}): Promise<RunResult> {
    return runWithMocks(
        config,
        () => {
            const { main } = require("../../components/program") as typeof import("../../components/program");
            return main() as unknown as Promise<Record<string, unknown>>;
        },
        options,
    );
}

export function ofType(result: RunResult, type: string): RecordedResource[] {
    return result.resources.filter((r) => r.type === type);
}

export function named(result: RunResult, type: string, name: string): RecordedResource {
    const found = result.resources.find((r) => r.type === type && r.name === name);
    if (found === undefined) {
        throw new Error(`no ${type} named ${name}; have: ${result.resources.map((r) => `${r.type}/${r.name}`).join(", ")}`);
    }
    return found;
}

/** A stack config like the dev stack, with `n` clusters. */
export function clustersConfig(n: number, extra: Record<string, unknown> = {}): Record<string, unknown> {
    return {
        renderDirectory: "rendered",
        clusters: Array.from({ length: n }, (_, i) => ({ name: `c${i + 1}`, host: `c${i + 1}.observed.example.com` })),
        ...extra,
    };
}

const ROOT = path.resolve(__dirname, "../..");

/** The dev stack's raw config, as committed. */
export function devStackConfig(): Record<string, unknown> {
    return rawConfigFromStackFiles(ROOT, "dev").raw;
}

/** The smallest kubeconfig client-go can connect with: a current-context naming its cluster and user. */
export const MINIMAL_KUBECONFIG = [
    "apiVersion: v1",
    "kind: Config",
    "current-context: edge",
    "contexts:",
    "  - name: edge",
    "    context: { cluster: edge, user: edge }",
    "clusters:",
    "  - name: edge",
    "    cluster: { server: https://203.0.113.10:6443 }",
    "users:",
    "  - name: edge",
    "    user: { token: not-a-real-token }",
    "",
].join("\n");

export interface ChildRecord {
    /** Name of the parent component; undefined for top-level resources. */
    parent?: string;
    name: string;
    /** Names this resource was known by before (its `aliases` that rename). */
    aliasNames: string[];
}

/**
 * The program's resources with their parent component and alias names. A stack transformation sees the options
 * the mocks never receive; it needs the root stack resource, hence `runInPulumiStack`.
 */
export async function runProgramRecordingParents(config: Record<string, unknown>): Promise<{ result: RunResult; children: ChildRecord[] }> {
    const children: ChildRecord[] = [];
    const result = await runWithMocks(config, () => {
        let outputs: Record<string, unknown> = {};
        // The init function has no await, so it runs to completion before runInPulumiStack returns.
        void pulumi.runtime.runInPulumiStack(async () => {
            pulumi.runtime.registerStackTransformation((args) => {
                const parent = args.opts.parent as (pulumi.Resource & { __name?: string }) | undefined;
                const aliases = (args.opts.aliases ?? []) as Array<{ name?: string } | string>;
                children.push({
                    parent: parent?.__name,
                    name: args.name,
                    aliasNames: aliases.flatMap((a) => (typeof a === "object" && typeof a.name === "string" ? [a.name] : [])),
                });
                return undefined;
            });
            const { deploy, loadModel } = require("../../components/program") as typeof import("../../components/program");
            outputs = deploy(loadModel()) as unknown as Record<string, unknown>;
        });
        return outputs;
    });
    return { result, children };
}
