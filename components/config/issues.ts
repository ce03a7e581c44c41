import { z } from "zod";
import { ConfigProblem, formatPath } from "./errors";
import { closest } from "./formats";

/**
 * zod issues → problems in the project's words. Rules with their own message (see schema.ts) keep it;
 * everything else is worded here, so no zod default text ("Too small: expected number to be >=1") reaches a user.
 */

/** Keys whose values are credentials or PEM text: messages describe them, never quote them. */
const UNQUOTED_KEYS = new Set(["privateKey", "certificate", "caBundle", "clientCaBundle", "kubeconfig", "shared", "client", "servers"]);

/** Parses with the options that make issues carry the user's value (`reportInput`) and our default wording. */
export function parseWithProblems<T extends z.ZodType>(schema: T, raw: unknown): { data: z.output<T> } | { problems: ConfigProblem[] } {
    const parsed = schema.safeParse(raw, { reportInput: true, error: defaultMessage });
    if (parsed.success) {
        return { data: parsed.data };
    }
    return { problems: parsed.error.issues.map((issue) => describeIssue(schema, issue)) };
}

/** Wording for rules declared without a message of their own. */
function defaultMessage(issue: z.core.$ZodRawIssue): string | undefined {
    if (issue.code === "too_small") {
        const bound = Number(issue.minimum);
        if (issue.origin === "string" && bound === 1) return "is empty; set a value or remove the key";
        if (issue.origin === "array" || issue.origin === "set") return `must list at least ${bound} entr${bound === 1 ? "y" : "ies"}`;
        return issue.inclusive ? `must be at least ${bound}` : `must be more than ${bound}`;
    }
    if (issue.code === "too_big") {
        return issue.inclusive ? `must be at most ${Number(issue.maximum)}` : `must be less than ${Number(issue.maximum)}`;
    }
    return undefined;
}

function describeIssue(schema: z.ZodType, issue: z.core.$ZodIssue): ConfigProblem {
    const key = formatPath(issue.path);
    switch (issue.code) {
        case "unrecognized_keys":
            return unknownKeys(schema, issue.path, issue.keys);
        case "invalid_type":
            if (issue.input === undefined) {
                return { key, message: `is required; set ${describedAt(schema, issue.path) ?? "it"}` };
            }
            return { key, message: wrongType(schema, issue.path, issue.expected, issue.input) };
        case "invalid_union":
            return { key, message: wrongType(schema, issue.path, "union", issue.input) };
        case "invalid_value": {
            const known = issue.values.map(String);
            const suggestion = typeof issue.input === "string" ? closest(issue.input, known) : undefined;
            return {
                key,
                message:
                    `must be one of ${known.join(", ")}; found ${describeValue(issue.input, isUnquoted(issue.path))}` +
                    (suggestion === undefined ? "" : `. Did you mean ${suggestion}?`),
            };
        }
        case "invalid_key":
            // The path ends with the offending key itself; name the map that holds it.
            return { key: formatPath(issue.path.slice(0, -1)), message: issue.issues.map((i) => i.message).join("; ") };
        default:
            return { key, message: issue.message };
    }
}

function unknownKeys(schema: z.ZodType, path: PropertyKey[], keys: string[]): ConfigProblem {
    const parent = formatPath(path);
    const known = knownKeysAt(schema, path);
    const each = keys.map((k) => {
        const full = parent === "" ? k : `${parent}.${k}`;
        const suggestion = closest(k, known);
        return suggestion === undefined ? `'${full}'` : `'${full}' (did you mean '${suggestion}'?)`;
    });
    return {
        key: parent === "" ? keys.join(", ") : parent,
        message:
            `unknown key${keys.length > 1 ? "s" : ""} ${each.join(", ")}; remove or rename ${keys.length > 1 ? "them" : "it"}. ` +
            `Known keys here: ${known.join(", ")} (see docs/configuration.md)`,
    };
}

function wrongType(schema: z.ZodType, path: PropertyKey[], expected: string, input: unknown): string {
    const wanted = describedAt(schema, path) ?? expectedWords(expected);
    let hint = "";
    if (typeof input === "string" && /^-?\d+(\.\d+)?$/.test(input) && (expected === "int" || expected === "number" || expected === "union")) {
        hint = "; write the number without quotes";
    } else if (typeof input === "string" && /^\d+\s*[a-z]+$/i.test(input) && (expected === "int" || expected === "number")) {
        hint = "; write the number alone, in the unit the key names";
    } else if (typeof input === "string" && /^(true|false)$/i.test(input) && expected === "boolean") {
        hint = `; write ${input.toLowerCase()} without quotes`;
    } else if (typeof input === "number" && /duration/.test(wanted)) {
        hint = `; add a unit, e.g. "${input}s"`;
    } else if (expected === "array" && isMap(input)) {
        hint = "; write each entry as a YAML list item starting with '- '";
    }
    return `must be ${wanted}, found ${describeValue(input, isUnquoted(path))}${hint}`;
}

function isMap(value: unknown): boolean {
    return value !== null && typeof value === "object" && !Array.isArray(value);
}

function isUnquoted(path: PropertyKey[]): boolean {
    return path.some((part) => typeof part === "string" && UNQUOTED_KEYS.has(part));
}

function expectedWords(expected: string): string {
    const words: Record<string, string> = {
        string: "text",
        number: "a number",
        int: "a whole number",
        boolean: "true or false",
        array: "a list",
        object: "a map of keys",
        record: "a map of keys",
    };
    return words[expected] ?? expected;
}

/** What the user wrote, for a message; secret values are described by type only. */
function describeValue(value: unknown, secret: boolean): string {
    if (value === null) return "null (an empty value)";
    if (Array.isArray(value)) return `a list of ${value.length} entr${value.length === 1 ? "y" : "ies"}`;
    if (typeof value === "object") return "a map of keys";
    if (typeof value === "boolean") return `the boolean ${value}`;
    if (typeof value === "number") return secret ? "a number" : `the number ${value}`;
    if (typeof value === "string") {
        if (secret) return "text";
        const shown = value.length > 40 ? `${value.slice(0, 40)}…` : value;
        return `the text ${JSON.stringify(shown)}`;
    }
    return typeof value;
}

/** The schema a path leads to, looking through optional, nullable and default wrappers. */
function schemaAt(schema: z.ZodType, path: ReadonlyArray<PropertyKey>): z.ZodType | undefined {
    let current: z.ZodType | undefined = unwrap(schema);
    for (const part of path) {
        if (current === undefined) return undefined;
        const def = current._zod.def as unknown as { type: string; shape?: Record<string, z.ZodType>; element?: z.ZodType; valueType?: z.ZodType };
        if (def.type === "object") current = def.shape?.[String(part)];
        else if (def.type === "array") current = def.element;
        else if (def.type === "record") current = def.valueType;
        else return undefined;
        current = current === undefined ? undefined : unwrap(current);
    }
    return current;
}

function unwrap(schema: z.ZodType): z.ZodType {
    let current = schema;
    for (;;) {
        const def = current._zod.def as unknown as { type: string; innerType?: z.ZodType };
        if (
            (def.type === "optional" || def.type === "default" || def.type === "nullable") &&
            def.innerType !== undefined &&
            current.description === undefined
        ) {
            current = def.innerType;
        } else {
            return current;
        }
    }
}

function describedAt(schema: z.ZodType, path: ReadonlyArray<PropertyKey>): string | undefined {
    return schemaAt(schema, path)?.description;
}

function knownKeysAt(schema: z.ZodType, path: ReadonlyArray<PropertyKey>): string[] {
    const target = schemaAt(schema, path);
    const def = target?._zod.def as unknown as { type: string; shape?: Record<string, z.ZodType> } | undefined;
    return def?.type === "object" && def.shape !== undefined ? Object.keys(def.shape) : [];
}
