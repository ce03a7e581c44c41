import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import type { FrontDoorSide } from "./front-door";
import type { Backend } from "./grpc";
import { QuerierClient } from "./grpc";
import { FatalWaitError, waitFor } from "./processes";
import { serialOf, servedCertificate } from "./tls";

/**
 * The check that the data path carries mTLS gRPC with given certificates, written once for every way a test
 * assembles it (a topology fed with deployed certificates, or Envoy and front doors reading what `pulumi up` wrote).
 */

/** One observed cluster's data path: Envoy's listener for it, its front door on the machine's loopback, its backend. */
export interface MtlsSide {
    name: string;
    host: string;
    /** Envoy's listener for this cluster. */
    listenerPort: number;
    /** The front door, as Envoy dials it. */
    frontDoorPort: number;
    frontDoor: FrontDoorSide;
    backend?: Backend;
}

/**
 * Calls through Envoy reach `side`'s backend; its front door serves `server` for the host and records `client` as the
 * certificate it verified on a connection made after the certificates changed (Envoy opens one at least every
 * `envoy.maxRequestsPerConnection` calls, so the tests keep that low). Every call must succeed.
 */
export async function assertMtlsWith(side: MtlsSide, certificates: { client: string; server: string }): Promise<void> {
    const served = await servedCertificate(side.frontDoorPort, side.host);
    const expected = new X509Certificate(certificates.server);
    assert.equal(
        served.fingerprint256,
        expected.fingerprint256,
        `${side.name}'s front door serves ${served.subject} serial ${served.serialNumber} from ${served.issuer}, not the deployed ${expected.serialNumber} from ${expected.issuer}`,
    );
    const expectedSerial = serialOf(certificates.client);
    const since = side.frontDoor.checkpoint();
    const querier = new QuerierClient(`127.0.0.1:${side.listenerPort}`);
    try {
        const request = await waitFor(
            `${side.name}'s front door to verify Envoy's client certificate ${expectedSerial}`,
            30_000,
            async () => {
                const labels = await querier.storeInfo().then(
                    (info) => info.labels,
                    (err: Error) => {
                        throw new FatalWaitError(`a call to ${side.name} failed: ${err.message}`);
                    },
                );
                if (JSON.stringify(labels) !== JSON.stringify([{ name: "cluster", value: side.name }])) {
                    throw new FatalWaitError(`${side.name} answered with labels ${JSON.stringify(labels)}`);
                }
                return side.frontDoor
                    .requests()
                    .slice(since.requests)
                    .find((r) => r.clientSerial === expectedSerial);
            },
            100,
        ).catch((err: Error) => {
            const seen = [
                ...new Set(
                    side.frontDoor
                        .requests()
                        .slice(since.requests)
                        .map((r) => r.clientSerial),
                ),
            ];
            throw new Error(`${err.message}; serials seen since: ${seen.join(", ")}`);
        });
        assert.equal(request.host, side.host, "the front door saw :authority = the cluster's host");
        assert.equal(request.sni, side.host, "the front door saw SNI = the cluster's host");
        assert.equal(request.status, 200);
        if (side.backend) assert.equal(side.backend.calls.at(-1)?.authority, side.host);
    } finally {
        querier.close();
    }
}
