import { spawn } from "node:child_process";
import * as tls from "node:tls";
import { OpensslCa } from "../tools/pki/openssl-ca";
import { procTicksMs } from "./accounting";

/**
 * The floor: one TLS 1.3 connection over loopback moving `mib` MiB from a sender process to this one, with no
 * proxy and no gRPC, so that each path's throughput can be read against what the machine's TLS can do at all.
 * Both ends are OpenSSL (through Node's tls), in two processes as a client and a server are.
 */

export interface FloorResult {
    mibPerSecond: number;
    /** CPU of both ends per MB moved. */
    cpuMsPerMb: number;
}

const SENDER = `
const tls = require("node:tls");
const [key, cert, mib] = [process.env.FLOOR_KEY, process.env.FLOOR_CERT, Number(process.env.FLOOR_MIB)];
const block = Buffer.alloc(1024 * 1024, 7);
const server = tls.createServer({ key, cert, minVersion: "TLSv1.3" }, (socket) => {
    let sent = 0;
    const pump = () => {
        while (sent < mib) {
            sent++;
            if (!socket.write(block)) return socket.once("drain", pump);
        }
        socket.end(() => server.close());
    };
    pump();
});
server.listen(0, "127.0.0.1", () => process.stdout.write(String(server.address().port) + "\\n"));
`;

export async function tlsFloor(mib: number): Promise<FloorResult> {
    const ca = OpensslCa.create(undefined, "floor");
    const server = ca.server("floor.example.com");
    const child = spawn(process.execPath, ["-e", SENDER], {
        env: { ...process.env, FLOOR_KEY: server.privateKey, FLOOR_CERT: server.certificate, FLOOR_MIB: String(mib) },
        stdio: ["ignore", "pipe", "inherit"],
    });
    try {
        const port = await new Promise<number>((resolve, reject) => {
            const timer = setTimeout(() => reject(new Error("the TLS floor's sender did not start in 10 s")), 10_000);
            child.stdout.once("data", (d) => {
                clearTimeout(timer);
                resolve(Number(String(d).trim()));
            });
            child.once("exit", (code) => reject(new Error(`the TLS floor's sender exited ${code}`)));
        });
        const cpu0 = procTicksMs([process.pid, child.pid!]);
        const t0 = performance.now();
        const received = await new Promise<number>((resolve, reject) => {
            let bytes = 0;
            const socket = tls.connect({ host: "127.0.0.1", port, servername: "floor.example.com", ca: ca.ca.certificate, minVersion: "TLSv1.3" });
            const timer = setTimeout(() => socket.destroy(new Error("the TLS floor took more than 120 s")), 120_000);
            socket.on("data", (d: Buffer) => (bytes += d.length));
            socket.on("end", () => {
                clearTimeout(timer);
                resolve(bytes);
            });
            socket.on("error", reject);
        });
        const seconds = (performance.now() - t0) / 1000;
        const cpu = procTicksMs([process.pid, child.pid!]) - cpu0;
        if (received !== mib * 1024 * 1024) throw new Error(`the TLS floor received ${received} bytes, expected ${mib} MiB`);
        return { mibPerSecond: mib / seconds, cpuMsPerMb: cpu / (received / 1e6) };
    } finally {
        child.kill();
    }
}
