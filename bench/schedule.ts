/** How the data-path sections run their repetitions, shared by bench/queries.ts and bench/datapath.ts. */

export interface Summary {
    median: number;
    min: number;
    max: number;
}

export interface DataPathOptions {
    reps: number;
    /** Queries of each kind per repetition and path. */
    perQuery: number;
    /** ghz calls per run: unary Info, streamed Series. */
    unaryCalls: number;
    streamCalls: number;
    concurrency: number;
    /** Unary calls of the steady run that counts handshakes and retries. */
    steadyCalls: number;
    stats: (values: number[]) => Summary;
    fmt: (s: Summary, digits?: number) => string;
}

/** Every repetition runs every path once, starting one path further each time, so drift and order affect all alike. */
export function rotated<T>(items: T[], rep: number): T[] {
    return items.map((_, i) => items[(i + rep) % items.length]);
}
