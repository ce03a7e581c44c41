/**
 * Kubernetes resource quantities as the Envoy settings need them: CPU in cores, memory in bytes.
 * Only the forms people write for a container's limits; anything else is undefined (the model reports it).
 */

const MEMORY_SUFFIX: Record<string, number> = {
    "": 1,
    k: 1e3,
    M: 1e6,
    G: 1e9,
    T: 1e12,
    Ki: 2 ** 10,
    Mi: 2 ** 20,
    Gi: 2 ** 30,
    Ti: 2 ** 40,
};

/** `1`, `2.5`, `500m` → cores. */
export function cpuCores(quantity: string): number | undefined {
    const match = /^(\d+(?:\.\d+)?)(m?)$/.exec(quantity);
    if (match === null) return undefined;
    const cores = Number(match[1]) / (match[2] === "m" ? 1000 : 1);
    return cores > 0 ? cores : undefined;
}

/** `512Mi`, `1Gi`, `500M`, `1073741824` → bytes. */
export function memoryBytes(quantity: string): number | undefined {
    const match = /^(\d+(?:\.\d+)?)(k|M|G|T|Ki|Mi|Gi|Ti)?$/.exec(quantity);
    if (match === null) return undefined;
    const bytes = Math.floor(Number(match[1]) * MEMORY_SUFFIX[match[2] ?? ""]);
    return bytes > 0 ? bytes : undefined;
}
