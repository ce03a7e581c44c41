/**
 * TOML text from a plain object (containerd reads only TOML): strings, numbers, booleans and arrays of them as
 * `key = value`, nested objects as `[tables]`. Enough for containerd's configuration; no dates, no arrays of tables.
 */

type Scalar = string | number | boolean;

function key(name: string): string {
    return /^[A-Za-z0-9_-]+$/.test(name) ? name : JSON.stringify(name);
}

function scalar(value: unknown, at: string): string {
    if (typeof value === "string") return JSON.stringify(value);
    if (typeof value === "boolean" || (typeof value === "number" && Number.isFinite(value))) return String(value);
    throw new Error(`TOML: ${at} is not a string, finite number or boolean`);
}

function isTable(value: unknown): value is Record<string, unknown> {
    return typeof value === "object" && value !== null && !Array.isArray(value);
}

function table(object: Record<string, unknown>, header: string[]): string {
    const lines: string[] = [];
    const tables: [string, Record<string, unknown>][] = [];
    for (const [name, value] of Object.entries(object)) {
        const at = [...header, key(name)].join(".");
        if (isTable(value)) tables.push([name, value]);
        else if (Array.isArray(value)) lines.push(`${key(name)} = [${value.map((v: Scalar, i) => scalar(v, `${at}[${i}]`)).join(", ")}]`);
        else lines.push(`${key(name)} = ${scalar(value, at)}`);
    }
    let text = header.length > 0 && lines.length > 0 ? `[${header.join(".")}]\n` : "";
    text += lines.map((l) => `${l}\n`).join("");
    for (const [name, value] of tables) text += `${text === "" ? "" : "\n"}${table(value, [...header, key(name)])}`;
    return text;
}

export function tomlText(object: Record<string, unknown>): string {
    return table(object, []);
}
