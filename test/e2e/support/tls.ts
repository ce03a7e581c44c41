import { X509Certificate } from "node:crypto";
import * as tls from "node:tls";

/** The certificate 127.0.0.1:`port` presents for SNI `servername` (read, not verified). */
export function servedCertificate(port: number, servername: string, timeoutMs = 5_000): Promise<X509Certificate> {
    return new Promise((resolve, reject) => {
        const socket = tls.connect({ host: "127.0.0.1", port, servername, rejectUnauthorized: false, ALPNProtocols: ["h2"] }, () => {
            const raw = socket.getPeerCertificate().raw;
            socket.destroy();
            resolve(new X509Certificate(raw));
        });
        socket.setTimeout(timeoutMs, () => socket.destroy(new Error(`TLS handshake with 127.0.0.1:${port} timed out`)));
        socket.on("error", reject);
    });
}
