import { z } from "zod";
import { DurationUse, durationProblem, ipAddressProblem, portNameProblem, QuantityResource, quantityProblem } from "./formats";

/**
 * The value types of the stack configuration (labels, hostnames, ports, durations, quantities, PEM text), each with
 * the message the user reads when a value is not one; schema.ts and tls-schema.ts build the sections from them.
 */

/** DNS-1123 label: what Kubernetes accepts as a namespace or Service name segment. */
const dnsLabel = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
/** RFC 1123 hostname, lowercase, at least one dot-free label, no wildcard. */
const hostnamePattern = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$/;
/** Envoy's circuit breaker and connection thresholds are uint32. */
const UINT32_MAX = 4_294_967_295;

/** Turns the problem a pure check finds (see formats.ts) into a zod issue. */
export function check<T>(problemOf: (value: T) => string | undefined) {
    return (value: T, ctx: z.core.$RefinementCtx<T>) => {
        const problem = problemOf(value);
        if (problem !== undefined) {
            ctx.addIssue({ code: "custom", message: problem });
        }
    };
}

/** Kubernetes label keys/values are validated by the API server; here only their shape as a string map. */
export const labelMap = z.record(z.string().min(1, "has an empty label name; remove it"), z.string()).describe("a map of label names to values");

export const dnsLabelSchema = z
    .string()
    .max(63, "must be at most 63 characters (a DNS-1123 label)")
    .regex(dnsLabel, "must be a DNS-1123 label: lowercase letters, digits and '-', starting and ending with a letter or digit")
    .describe("a DNS-1123 label such as monitoring");

/** DNS-1123 subdomain: what Kubernetes accepts as an object name, and Gateway API as a listener (section) name. */
export const dnsSubdomainSchema = z
    .string()
    .max(253, "must be at most 253 characters (a DNS-1123 subdomain)")
    .regex(
        /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/,
        "must be lowercase letters, digits, '-' and '.', starting and ending with a letter or digit",
    )
    .describe("a Kubernetes object name such as shared-gateway");

export const hostnameSchema = z
    .string()
    .regex(hostnamePattern, "must be a lowercase DNS hostname such as cl1m.example.com (no scheme, port, wildcard or uppercase)")
    .superRefine(check(ipAddressProblem))
    .describe("a DNS hostname such as cl1m.example.com");

export const durationSchema = (use: DurationUse) =>
    z
        .string()
        .superRefine(check((value: string) => durationProblem(value, use)))
        .describe("a duration such as 500ms, 5s, 2m or 1h, in quotes");

export const wholeNumber = (range: string) => z.int(`must be a whole number (${range})`).describe(`a whole number (${range})`);

export const portNumber = wholeNumber("a port, 1-65535").min(1, "must be between 1 and 65535").max(65535, "must be between 1 and 65535");

/** Envoy runs without capabilities, so it cannot bind privileged ports. */
export const listenPort = wholeNumber("a port, 1024-65535")
    .min(1024, "must be between 1024 and 65535 (Envoy runs as non-root without NET_BIND_SERVICE)")
    .max(65535, "must be between 1024 and 65535");

export const threshold = (min: number) =>
    wholeNumber(`${min}-${UINT32_MAX}`).min(min, `must be at least ${min}`).max(UINT32_MAX, `must be at most ${UINT32_MAX}`);

export const hours = (min: number) => wholeNumber(`hours, ${min} or more`).min(min, `must be at least ${min} hour${min === 1 ? "" : "s"}`);

export const nonEmpty = (description: string) => z.string().min(1, "is empty; set a value or remove the key").describe(description);

export const pemSecret = z
    .string()
    .min(1, 'is empty; set the PEM text: pulumi config set --secret --path ... "$(cat file.pem)"')
    .describe('PEM text (pulumi config set --secret --path ... "$(cat file.pem)")');

export const kubeconfigContent = nonEmpty('kubeconfig content (pulumi config set --secret --path ... "$(cat file)")');

export const portNameSchema = z.string().superRefine(check(portNameProblem)).describe("a Service port name such as envoy-cl1");

/** `pulumi config set --path ...cpu 2` stores a number; Kubernetes takes either form. */
export const quantitySchema = (resource: QuantityResource) =>
    z
        .union([z.string(), z.number().transform(String)])
        .pipe(z.string().superRefine(check((value: string) => quantityProblem(value, resource))))
        .describe(resource === "cpu" ? "a CPU quantity such as 500m or 2" : `a ${resource} quantity such as 512Mi or 1Gi`);
