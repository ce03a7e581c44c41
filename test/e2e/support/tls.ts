import { X509Certificate } from "node:crypto";
import * as net from "node:net";
import * as tls from "node:tls";

/** A serial as a front door logs it (nginx's `$ssl_client_serial`: upper-case hex, leading zeros kept) in the form `FrontDoorRequest` uses: lower-case, no leading zeros. */
export function normalizeSerial(serial: string): string {
    return serial.toLowerCase().replace(/^0+(?=.)/, "");
}

/** The serial of a PEM certificate, normalized. */
export function serialOf(pem: string): string {
    return normalizeSerial(new X509Certificate(pem).serialNumber);
}

/** The twelve bytes every PROXY protocol v2 header starts with. */
const PROXY_V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
/** Version 2, command PROXY; address family INET, protocol STREAM. */
const PROXY_V2_COMMAND = 0x21;
const PROXY_V2_TCP4 = 0x11;

/** The PROXY protocol v2 header of a TCP/IPv4 connection, as HAProxy's `send-proxy-v2` writes it before the payload. */
export function proxyV2Header(source: { address: string; port: number }, destination: { address: string; port: number }): Buffer {
    const addresses = Buffer.alloc(12);
    Buffer.from(source.address.split(".").map(Number)).copy(addresses, 0);
    Buffer.from(destination.address.split(".").map(Number)).copy(addresses, 4);
    addresses.writeUInt16BE(source.port, 8);
    addresses.writeUInt16BE(destination.port, 10);
    const length = Buffer.alloc(2);
    length.writeUInt16BE(addresses.length);
    return Buffer.concat([PROXY_V2_SIGNATURE, Buffer.from([PROXY_V2_COMMAND, PROXY_V2_TCP4]), length, addresses]);
}

/**
 * The certificate 127.0.0.1:`port` presents for SNI `servername` (read, not verified); with `proxyV2`, the connection
 * starts with a PROXY protocol v2 header, for a front door that expects one.
 */
export function servedCertificate(port: number, servername: string, options: { proxyV2?: boolean; timeoutMs?: number } = {}): Promise<X509Certificate> {
    const timeoutMs = options.timeoutMs ?? 5_000;
    return new Promise((resolve, reject) => {
        const tcp = net.connect({ host: "127.0.0.1", port }, () => {
            if (options.proxyV2) tcp.write(proxyV2Header({ address: tcp.localAddress!, port: tcp.localPort! }, { address: "127.0.0.1", port }));
            const socket = tls.connect({ socket: tcp, servername, rejectUnauthorized: false, ALPNProtocols: ["h2"] }, () => {
                const raw = socket.getPeerCertificate().raw;
                socket.destroy();
                resolve(new X509Certificate(raw));
            });
            socket.on("error", reject);
        });
        tcp.setTimeout(timeoutMs, () => tcp.destroy(new Error(`TLS handshake with 127.0.0.1:${port} timed out`)));
        tcp.on("error", reject);
    });
}
