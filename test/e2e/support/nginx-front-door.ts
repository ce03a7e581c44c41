import * as fs from "node:fs";
import * as path from "node:path";
import { observedNames } from "../../../components/names";
import { ingressAnnotations, ingressSpec } from "../../../components/observed/ingress";
import { Issued, OpensslCa } from "../../../tools/pki/openssl-ca";
import { FrontDoorCluster, FrontDoorContext, FrontDoorRequest, FrontDoorSide, Refusal, RunningFrontDoor } from "./front-door";
import { IngressObject, Nginx, SecretStore, translateIngress } from "./nginx";

/**
 * The ingress-nginx front door as the tests run it: one real nginx per cluster, configured by our translator
 * (`translateIngress`) from the Ingress and Secrets the program's builders make for that cluster.
 */

export interface NginxSide extends FrontDoorSide {
    readonly nginx: Nginx;
}

/** nginx's `$ssl_client_serial` (upper-case hex, leading zeros kept) in the form `FrontDoorRequest` uses. */
export function normalizeSerial(serial: string): string {
    return serial.toLowerCase().replace(/^0+(?=.)/, "");
}

const REFUSED_IN_ERROR_LOG: Partial<Record<Refusal, RegExp>> = {
    "no-client-certificate": /client sent no required SSL certificate/,
    "client-certificate-from-another-ca": /client SSL certificate verify error/,
};

export class NginxFrontDoor implements RunningFrontDoor {
    readonly kind = "nginx";
    readonly gaps: readonly string[] = [];
    /** One certificate for every catch-all server, as ingress-nginx has its one "fake" certificate. */
    private readonly fakeCertificate: Issued;

    constructor(private readonly context: FrontDoorContext) {
        this.fakeCertificate = OpensslCa.create(path.join(context.dir, "nginx-fake"), "fake").server("ingress.local");
    }

    async add(door: FrontDoorCluster): Promise<NginxSide> {
        const { cluster } = door;
        const names = observedNames(cluster.name);
        const ns = cluster.sidecar.namespace;
        const ingress: IngressObject = {
            metadata: {
                name: names.ingress,
                namespace: ns,
                annotations: ingressAnnotations({ cluster, verifyDepth: 1, clientIdentity: door.clientIdentity }),
            },
            spec: ingressSpec(cluster) as IngressObject["spec"],
        };
        const secretsOf = (tls: { server: Issued; clientCa: string }): SecretStore => ({
            [`${ns}/${names.serverTlsSecret}`]: { "tls.crt": tls.server.certificate, "tls.key": tls.server.privateKey },
            [`${ns}/${names.clientCaSecret}`]: { "ca.crt": tls.clientCa },
        });
        const workDir = path.join(this.context.dir, `nginx-${cluster.name}`);
        fs.mkdirSync(workDir, { recursive: true });
        const render = (tls: { server: Issued; clientCa: string }) =>
            translateIngress(ingress, secretsOf(tls), {
                listenPort: door.port,
                workDir,
                sslProtocols: door.sslProtocols,
                defaultCertificate: this.fakeCertificate,
                resolveService: (namespace, service, port) => {
                    if (namespace !== ns || service !== cluster.sidecar.service || port.name !== cluster.sidecar.port) {
                        throw new Error(`Ingress points at ${namespace}/${service}:${port.name ?? port.number}, not the sidecar Service`);
                    }
                    return door.backendAddress;
                },
            });
        const nginx = new Nginx(workDir, door.port, this.context.group);
        await nginx.start(render(door));
        return {
            nginx,
            requests: (): FrontDoorRequest[] =>
                nginx
                    .accessLog()
                    .map((entry) => ({ sni: entry.sni, host: entry.host, status: entry.status, clientSerial: normalizeSerial(entry.clientSerial) })),
            log: () => nginx.errorLog(),
            processes: () => nginx.processes(),
            checkpoint: () => ({ requests: nginx.accessLog().length, logLength: nginx.errorLog().length }),
            assertRefused: async (reason, since) => {
                const pattern = REFUSED_IN_ERROR_LOG[reason];
                if (pattern !== undefined) {
                    if (!pattern.test(nginx.errorLog().slice(since.logLength))) throw new Error(`nginx's error log does not show ${reason} (${pattern})`);
                    return;
                }
                // auth-tls-match-cn: the certificate verifies, then the request is answered 403.
                const logged = nginx.accessLog().slice(since.requests);
                if (logged.length === 0 || !logged.every((l) => l.status === 403 && l.clientVerify === "SUCCESS")) {
                    throw new Error(`nginx did not verify the certificate and then refuse its identity with 403: ${JSON.stringify(logged)}`);
                }
            },
            updateTls: async (tls) => nginx.reconfigure(render({ ...door, ...tls })),
        };
    }

    async stop(): Promise<void> {
        // Every nginx runs in the topology's process group, which the topology stops.
    }
}
