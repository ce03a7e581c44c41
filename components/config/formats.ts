import * as net from "node:net";
import { parseFamiliarName } from "@swimlane/docker-reference";
import * as YAML from "yaml";
import { IMAGE_PIN_FIX, IMAGE_PIN_WHY, imagePinProblem } from "../image-pin";

/**
 * Pure checks of single values against the rules Envoy and Kubernetes apply to them later.
 * Each returns a problem as text (no key: the caller attaches it), or undefined when the value is usable.
 */

/** Kubernetes' IANA_SVC_NAME rule for port names (validation.IsValidPortName). */
export function portNameProblem(portName: string): string | undefined {
    if (portName.length > 15) {
        return `is ${portName.length} characters; Kubernetes allows at most 15 for a port name`;
    }
    if (/^[0-9]+$/.test(portName)) {
        return "is all digits, so Kubernetes cannot tell it from a port number; write the number without quotes, or use the port's name";
    }
    if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(portName) || portName.includes("--") || !/[a-z]/.test(portName)) {
        return "must be lowercase letters, digits and single '-' (at least one letter, no '-' at either end), as Kubernetes requires for port names";
    }
    return undefined;
}

export function ipAddressProblem(host: string): string | undefined {
    return net.isIP(host) === 0
        ? undefined
        : "is an IP address, which can be neither an Ingress host nor a TLS SNI name; set the DNS name the certificate covers, and put the IP in address";
}

/**
 * Docker's reference grammar as containerd and the kubelet apply it (`ParseNormalizedNamed`): `[registry/]repo[:tag][@digest]`.
 * @swimlane/docker-reference ports that grammar from the distribution/reference Go package, with no dependencies.
 */
export function imageReferenceProblem(image: string): string | undefined {
    try {
        parseFamiliarName(image);
        return undefined;
    } catch (err) {
        const reason = (err as Error).message.replace(/^invalid reference format: /, "");
        return `is not an image reference the kubelet can pull (${reason}); write [registry/]repository[:tag][@sha256:digest] in lowercase, e.g. envoyproxy/envoy:v1.40.0`;
    }
}

/** The policy pack's images-pinned rule, in the config's words: the two refuse the same references. */
export function imagePinRefusal(image: string): string | undefined {
    const problem = imagePinProblem(image);
    return problem === undefined ? undefined : `${problem} (${IMAGE_PIN_WHY}); ${IMAGE_PIN_FIX}`;
}

const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/;
/** The largest google.protobuf.Duration, in seconds (10,000 years). */
const MAX_PROTOBUF_SECONDS = 315_576_000_000;

/** Seconds in a duration as users write it (`500ms`, `5s`, `2m`, `1h`), or undefined when it is not one. */
export function durationSeconds(value: string): number | undefined {
    const match = DURATION.exec(value);
    if (match === null) {
        return undefined;
    }
    const factor = { ms: 0.001, s: 1, m: 60, h: 3600 }[match[2] as "ms" | "s" | "m" | "h"];
    return Number(match[1]) * factor;
}

/** Who reads a duration, and what 0s means to it (undefined: 0s is refused). */
export interface DurationUse {
    reader: "Envoy" | "Prometheus";
    zero?: string;
}

/**
 * Bounds on a duration: at least 1ms (anything shorter is rounded to 0 on the way to Envoy), or exactly 0 where
 * `zero` says what 0 means; at most protobuf's maximum, beyond what Envoy or Prometheus can hold.
 */
export function durationProblem(value: string, use: DurationUse): string | undefined {
    const seconds = durationSeconds(value);
    if (seconds === undefined) {
        return "must be a duration such as 500ms, 5s, 2m or 1h (a number and a unit)";
    }
    if (seconds === 0) {
        return use.zero === undefined ? `must be more than 0; ${use.reader} refuses a zero duration here` : undefined;
    }
    if (seconds < 0.001) {
        return `must be at least 1ms${use.zero === undefined ? "" : `, or 0s (${use.zero})`}; ${use.reader} counts in milliseconds`;
    }
    if (seconds > MAX_PROTOBUF_SECONDS) {
        return `is longer than ${use.reader} can represent (at most ${MAX_PROTOBUF_SECONDS}s); use a shorter duration`;
    }
    return undefined;
}

/**
 * Kubernetes' resource.Quantity grammar: <signed number><suffix>, suffix one of the binary SI (Ki..Ei),
 * decimal SI (m, "", k, M, G, T, P, E) or an exponent (e3, E-2). Returns the value, or undefined when not a quantity.
 * There is no small maintained npm parser for it (the official client bundles one in a large package), so this follows
 * apimachinery's parseQuantityString.
 */
const QUANTITY = /^([+-]?(?:\d+(?:\.\d*)?|\.\d+))(Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E|[eE][+-]?\d+)?$/;
const SUFFIX_FACTOR: Record<string, number> = {
    Ki: 2 ** 10,
    Mi: 2 ** 20,
    Gi: 2 ** 30,
    Ti: 2 ** 40,
    Pi: 2 ** 50,
    Ei: 2 ** 60,
    m: 1e-3,
    "": 1,
    k: 1e3,
    M: 1e6,
    G: 1e9,
    T: 1e12,
    P: 1e15,
    E: 1e18,
};

export function parseQuantity(value: string): number | undefined {
    const match = QUANTITY.exec(value);
    if (match === null) {
        return undefined;
    }
    const suffix = match[2] ?? "";
    const factor = /^[eE]./.test(suffix) ? 10 ** Number(suffix.slice(1)) : SUFFIX_FACTOR[suffix];
    return Number(match[1]) * factor;
}

/** The container resources the program sets; all but cpu count bytes. */
export type QuantityResource = "cpu" | "memory" | "ephemeral-storage";

export function quantityProblem(value: string, resource: QuantityResource): string | undefined {
    const example = resource === "cpu" ? "500m or 2" : "512Mi or 1Gi";
    const amount = parseQuantity(value);
    if (amount === undefined) {
        const unit = /^\d+(?:\.\d+)?([a-zA-Z]+)$/.exec(value)?.[1];
        const prefix = unit?.[0].toUpperCase();
        const decimal = prefix === "K" ? "k" : prefix;
        const hint = unit !== undefined && /^[KMGTPE]i?B$/i.test(unit) ? ` (${unit} is not a Kubernetes unit; write ${prefix}i or ${decimal})` : "";
        return `is not a Kubernetes quantity${hint}; write it as ${example}`;
    }
    if (amount <= 0) {
        return `must be more than 0; write it as ${example}`;
    }
    if (resource !== "cpu" && !Number.isInteger(amount)) {
        return `is a fraction of a byte${value.endsWith("m") ? " ('m' means milli)" : ""}; write it as ${example}`;
    }
    return undefined;
}

/** Text that is a file name rather than file content: one line, no spaces, path-like. */
export function looksLikeFilePath(value: string): boolean {
    const text = value.trim();
    return !text.includes("\n") && !/\s/.test(text) && (/^(~|\.{1,2})?\//.test(text) || /\.(pem|crt|cer|key|yaml|yml|conf|config)$/i.test(text));
}

/**
 * What client-go needs from kubeconfig content to connect: a YAML map with a contexts list, the context to use
 * (`context` when set, else its current-context) among them, and that context's cluster and user entries.
 * `field` says which key is at fault. Never quotes the content (it holds credentials).
 */
export function kubeconfigProblem(content: string, context?: string): { field: "kubeconfig" | "context"; message: string } | undefined {
    const kubeconfig = (message: string) => ({ field: "kubeconfig" as const, message });
    if (looksLikeFilePath(content)) {
        return kubeconfig("looks like a file path; set the file's content instead");
    }
    let doc: unknown;
    try {
        doc = YAML.parse(content);
    } catch (err) {
        const line = (err as { linePos?: Array<{ line: number }> }).linePos?.[0]?.line;
        return kubeconfig(`is not valid YAML${line === undefined ? "" : ` (line ${line})`}; set the content of a kubeconfig file`);
    }
    const config = doc as { contexts?: unknown; clusters?: unknown; users?: unknown; "current-context"?: unknown } | null;
    if (config === null || typeof config !== "object" || Array.isArray(config) || !Array.isArray(config.contexts) || config.contexts.length === 0) {
        return kubeconfig(
            "is not a kubeconfig (it has no contexts list); set the content of a kubeconfig file, e.g. from kubectl config view --minify --flatten",
        );
    }
    const contexts = config.contexts as Array<{ name?: unknown; context?: { cluster?: unknown; user?: unknown } } | null>;
    let chosen: (typeof contexts)[number] | undefined;
    if (context !== undefined) {
        chosen = contexts.find((c) => c?.name === context);
        if (chosen === undefined) {
            return {
                field: "context",
                message: `'${context}' is not one of the contexts in the kubeconfig set beside it; use a name that kubectl config get-contexts lists for that file`,
            };
        }
    } else {
        const current = config["current-context"];
        if (typeof current !== "string" || current === "") {
            return kubeconfig(
                "sets no current-context, so the provider would not know which context to use; set context beside it, or run kubectl config use-context on that file",
            );
        }
        chosen = contexts.find((c) => c?.name === current);
        if (chosen === undefined) {
            return kubeconfig("has a current-context that names none of its contexts; run kubectl config use-context on that file with one of them");
        }
    }
    const names = (list: unknown) => (Array.isArray(list) ? list.map((entry: { name?: unknown } | null) => entry?.name) : []);
    if (!names(config.clusters).includes(chosen?.context?.cluster)) {
        return kubeconfig("has a context whose cluster is not in its clusters list; export it with kubectl config view --minify --flatten");
    }
    if (!names(config.users).includes(chosen?.context?.user)) {
        return kubeconfig("has a context whose user is not in its users list; export it with kubectl config view --minify --flatten");
    }
    return undefined;
}

/** Optimal string alignment distance: edits, with a swap of two neighbours counted as one (`hots` → `host`). */
function editDistance(a: string, b: string): number {
    const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
    for (let j = 1; j <= b.length; j++) d[0][j] = j;
    for (let i = 1; i <= a.length; i++) {
        for (let j = 1; j <= b.length; j++) {
            const cost = a[i - 1] === b[j - 1] ? 0 : 1;
            d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
            if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
                d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
            }
        }
    }
    return d[a.length][b.length];
}

/** The known value closest to what the user wrote, when it is close enough to be a typo (or a prefix, `warn` → `warning`). */
export function closest(value: string, known: readonly string[]): string | undefined {
    const wrote = value.toLowerCase();
    let best: { candidate: string; distance: number } | undefined;
    for (const candidate of known) {
        const lower = candidate.toLowerCase();
        const edits = editDistance(wrote, lower);
        // A truncation counts as a near miss, ranked behind a one-letter typo (`cluster` → `clusters`, not `clusterDomain`).
        // Replacing every letter is no typo (`c` is not a near miss of `a`).
        const near = edits < lower.length && edits <= Math.max(1, Math.floor(lower.length / 3));
        const distance = near ? edits : lower.startsWith(wrote) && wrote.length >= 3 ? 1.5 : Infinity;
        if (distance !== Infinity && (best === undefined || distance < best.distance)) {
            best = { candidate, distance };
        }
    }
    return best?.candidate;
}
