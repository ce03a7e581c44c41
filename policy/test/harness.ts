import type { ResourceValidation, ResourceValidationArgs, ResourceValidationPolicy } from "@pulumi/policy";
import * as engineProxy from "@pulumi/policy/proxy";
import * as YAML from "yaml";
import { policies } from "../policies";

/**
 * Runs policies the way the Pulumi engine does, without the engine: builds ResourceValidationArgs for a
 * resource type and its props, calls each validateResource with a collecting reportViolation, and
 * returns the messages. Props are wrapped in @pulumi/policy's own unknown-checking proxy, as in a preview.
 */

// Internal to @pulumi/policy (no typings), but it is exactly what the policy server wraps props in.
const engine = engineProxy as unknown as { unknownCheckingProxy<T extends object>(props: T): T; unknownStringValue: string; unknownObjectValue: string };

/** Put these where a preview would have a computed value. */
export const COMPUTED_STRING = engine.unknownStringValue;
export const COMPUTED_OBJECT = engine.unknownObjectValue;

export const TYPES = {
    configMap: "kubernetes:core/v1:ConfigMap",
    deployment: "kubernetes:apps/v1:Deployment",
    statefulSet: "kubernetes:apps/v1:StatefulSet",
    daemonSet: "kubernetes:apps/v1:DaemonSet",
    pod: "kubernetes:core/v1:Pod",
    ingress: "kubernetes:networking.k8s.io/v1:Ingress",
    gateway: "kubernetes:gateway.networking.k8s.io/v1:Gateway",
} as const;

class NotApplicable extends Error {}

export async function runPolicy(policy: ResourceValidationPolicy, type: string, props: object): Promise<string[]> {
    const violations: string[] = [];
    const validations: ResourceValidation[] = policy.validateResource === undefined ? [] : ([] as ResourceValidation[]).concat(policy.validateResource);
    const proxied = engine.unknownCheckingProxy(props) as Record<string, unknown>;
    const isType = (resourceClass: unknown) => (resourceClass as { __pulumiType?: string }).__pulumiType === type;
    for (const validate of validations) {
        const args: ResourceValidationArgs = {
            type,
            props: proxied,
            urn: `urn:pulumi:test::envoy-thanos::${type}::test`,
            name: "test",
            opts: {
                protect: false,
                ignoreChanges: [],
                aliases: [],
                customTimeouts: { createSeconds: 0, updateSeconds: 0, deleteSeconds: 0 },
                additionalSecretOutputs: [],
            },
            stackTags: new Map(),
            isType,
            asType: ((resourceClass: unknown) => (isType(resourceClass) ? proxied : undefined)) as ResourceValidationArgs["asType"],
            getConfig: <T extends object>() => ({}) as T,
            notApplicable: (reason?: string) => {
                throw new NotApplicable(reason);
            },
        };
        try {
            await validate(args, (message) => violations.push(message));
        } catch (err) {
            if (!(err instanceof NotApplicable)) {
                throw err;
            }
        }
    }
    return violations;
}

export function policy(name: string): ResourceValidationPolicy {
    const found = policies.find((p) => p.name === name);
    if (found === undefined) {
        throw new Error(`no policy ${name}`);
    }
    return found;
}

/** Every policy of the pack on one resource: `policy name: message` per violation. */
export async function runAll(type: string, props: object): Promise<string[]> {
    const results = await Promise.all(policies.map(async (p) => (await runPolicy(p, type, props)).map((m) => `${p.name}: ${m}`)));
    return results.flat();
}

/** A ConfigMap whose envoy.yaml is `bootstrap`. */
export function envoyConfigMap(bootstrap: unknown): object {
    return { metadata: { name: "envoy" }, data: { "envoy.yaml": YAML.stringify(bootstrap) } };
}
