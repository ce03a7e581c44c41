/**
 * Reading resource inputs safely. During `pulumi preview` some inputs are not known yet; the engine
 * hands policies a proxy that throws when such a value is read. Rules work on a plain copy in which
 * those values are the UNKNOWN marker, so "missing" (undefined) and "not known yet" (UNKNOWN) differ:
 * a rule flags what is missing or wrong and skips what it cannot see.
 */

export const UNKNOWN: unique symbol = Symbol("unknown during preview");

/** A plain deep copy of `value`; every property the engine's proxy refuses to read becomes UNKNOWN. */
export function knownOnly(value: unknown): unknown {
    if (value === null || typeof value !== "object") {
        return value;
    }
    const copy: Record<string, unknown> | unknown[] = Array.isArray(value) ? [] : {};
    for (const key of Object.keys(value)) {
        let item: unknown;
        try {
            item = (value as Record<string, unknown>)[key];
        } catch {
            // The proxy's UnknownValueError: the value is computed during the update.
            item = UNKNOWN;
        }
        (copy as Record<string, unknown>)[key] = knownOnly(item);
    }
    return copy;
}

/** `value.a.b.c`: undefined when a step is missing (or not an object), UNKNOWN when a step is unknown. */
export function at(value: unknown, ...path: (string | number)[]): unknown {
    let current = value;
    for (const key of path) {
        if (current === UNKNOWN) {
            return UNKNOWN;
        }
        if (current === null || typeof current !== "object") {
            return undefined;
        }
        current = (current as Record<string, unknown>)[key];
    }
    return current;
}

/** The array at `path`, or [] (missing or unknown: nothing to check). */
export function list(value: unknown, ...path: (string | number)[]): unknown[] {
    const found = at(value, ...path);
    return Array.isArray(found) ? found : [];
}

/** The entries of the object at `path`, or [] when it is missing, unknown or not an object. */
export function entries(value: unknown, ...path: (string | number)[]): [string, unknown][] {
    const found = at(value, ...path);
    return found !== null && typeof found === "object" && !Array.isArray(found) ? Object.entries(found) : [];
}

/** Known to be absent or empty: undefined, null, "", [] or {}. UNKNOWN is not missing. */
export function isMissing(value: unknown): boolean {
    if (value === undefined || value === null || value === "") {
        return true;
    }
    if (Array.isArray(value)) {
        return value.length === 0;
    }
    return typeof value === "object" && Object.keys(value).length === 0;
}

export function str(value: unknown): string | undefined {
    return typeof value === "string" ? value : undefined;
}
