import assert from "node:assert/strict";
import { expectedSha256, QuerierClient, StreamResult } from "./grpc";
import { sleep } from "./processes";

/**
 * The querier's load while something changes: long streams (paced, and idle-then-resume) and a steady run of unary
 * calls, each through Envoy's listener of a cluster; every failure is recorded with the moment it happened.
 */

/** A paced stream (a frame every 2 s) and an idle-then-resume one (silent for 5/8 of the time, then 5 frames a second apart), each lasting `seconds`. */
function streamRequests(seconds: number) {
    return [
        { frames: Math.round(seconds / 2), intervalMs: 2000, frameBytes: 256 },
        { frames: 5, initialDelayMs: seconds * 625, intervalMs: 1000, frameBytes: 256 },
    ];
}

const UNARY_DEADLINE_MS = 15_000;

export class QuerierLoad {
    readonly streamFailures: string[] = [];
    readonly unaryFailures: string[] = [];
    unaryCalls = 0;
    streamsStarted = 0;
    streamsDone = 0;
    private readonly started = Date.now();
    private readonly streams: Promise<void>[] = [];
    private unaryRunning = false;
    private unary?: Promise<void>;

    /** `clients`: the querier's clients by cluster name (a connection each, to that cluster's Envoy listener or Service). */
    constructor(private readonly clients: Record<string, QuerierClient>) {}

    /** Seconds since the load was created, for the failure records and a test's diagnostics. */
    at(): string {
        return `${((Date.now() - this.started) / 1000).toFixed(1)} s`;
    }

    /** Starts `count` streams spread over `clusters`, alternately paced and idle-then-resume, of about `seconds` each. */
    startStreams(clusters: string[], count: number, seconds = 40): void {
        const [paced, idleThenResume] = streamRequests(seconds);
        for (let i = 0; i < count; i++) {
            const index = this.streamsStarted++;
            const cluster = clusters[i % clusters.length];
            const request = index % 2 === 0 ? paced : idleThenResume;
            this.streams.push(
                this.clients[cluster].series(request, 120_000).then(
                    (result: StreamResult) => {
                        this.streamsDone++;
                        if (
                            result.frames !== request.frames ||
                            result.sha256 !== expectedSha256(request.frames, request.frameBytes) ||
                            result.backend !== cluster
                        ) {
                            this.streamFailures.push(`stream ${index} on ${cluster}: ${result.frames} frames from ${result.backend}`);
                        }
                    },
                    (err: Error) => {
                        this.streamsDone++;
                        this.streamFailures.push(`stream ${index} on ${cluster} failed at ${this.at()}: ${err.message}`);
                    },
                ),
            );
        }
    }

    /** Unary calls every 100 ms on each of `clusters`, each on a connection of its own to `addressOf(cluster)`, until `stop`. */
    startUnary(clusters: string[], addressOf: (cluster: string) => string): void {
        this.unaryRunning = true;
        this.unary = Promise.all(
            clusters.map(async (cluster) => {
                const c = new QuerierClient(addressOf(cluster));
                try {
                    for (let i = 0; this.unaryRunning && i < 5000; i++) {
                        // A cut call fails at once; the deadline only bounds a stall, so it leaves room for a loaded machine.
                        await c.storeInfo(UNARY_DEADLINE_MS).then(
                            () => this.unaryCalls++,
                            (err: Error) => this.unaryFailures.push(`${cluster} at ${this.at()}: ${err.message}`),
                        );
                        await sleep(100);
                    }
                } finally {
                    c.close();
                }
            }),
        ).then(() => undefined);
    }

    /** Ends the unary calls. */
    async stopUnary(): Promise<void> {
        this.unaryRunning = false;
        await this.unary;
    }

    /** Ends the unary calls and closes the querier's clients: what a test runs when it is done with the load. */
    async stop(): Promise<void> {
        await this.stopUnary();
        for (const client of Object.values(this.clients)) client.close();
    }

    /** Fails unless no stream and no unary call failed, and more than `minimumUnaryCalls` unary calls were made. */
    assertNoFailure(minimumUnaryCalls: number): void {
        assert.deepEqual(this.streamFailures, [], "no stream may fail");
        assert.deepEqual(this.unaryFailures, [], "no unary call may fail");
        assert.ok(this.unaryCalls > minimumUnaryCalls, `only ${this.unaryCalls} unary calls`);
    }

    /** Waits for every stream started so far. */
    async streamsEnded(): Promise<void> {
        await Promise.all(this.streams);
    }
}
