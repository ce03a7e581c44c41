import { X509Certificate } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { INGRESS_ANNOTATION, observedNames } from "../../../components/names";
import { ingressAnnotations, ingressSpec } from "../../../components/observed/ingress";
import { Issued, OpensslCa } from "../../../tools/pki/openssl-ca";
import { FrontDoorCluster, FrontDoorContext, FrontDoorRequest, FrontDoorSide, Refusal, RunningFrontDoor } from "./front-door";
import { IngressObject, Nginx, SecretStore, translateIngress, TranslateOptions } from "./nginx";
import { ProcessGroup, waitFor } from "./processes";
import { normalizeSerial, servedCertificate } from "./tls";

/**
 * The ingress-nginx front door as the tests run it: one real nginx per cluster, configured by our translator
 * (`translateIngress`) from the Ingress and Secrets the program's builders make for that cluster, or (`startNginxSide`)
 * from those `pulumi up` wrote into an API server.
 */

export interface NginxSide extends FrontDoorSide {
    readonly nginx: Nginx;
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
        if (door.envoyGatewayPolicies !== undefined) throw new Error("nginx reads no Envoy Gateway policy");
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
        return startNginxSide(ingress, secretsOf(ingress, door), {
            workDir: path.join(this.context.dir, `nginx-${cluster.name}`),
            group: this.context.group,
            port: door.port,
            configMap: door.ingressNginxConfigMap,
            defaultCertificate: this.fakeCertificate,
            resolveService: (namespace, service, port) => {
                if (namespace !== ns || service !== cluster.sidecar.service || port.name !== cluster.sidecar.port) {
                    throw new Error(`Ingress points at ${namespace}/${service}:${port.name ?? port.number}, not the sidecar Service`);
                }
                return door.backendAddress;
            },
        });
    }

    async stop(): Promise<void> {
        // Every nginx runs in the topology's process group, which the topology stops.
    }
}

/** The Secrets an Ingress names, holding `tls`: its TLS Secret and its client CA Secret (auth-tls-secret). */
function secretsOf(ingress: IngressObject, tls: { server: { certificate: string; privateKey: string }; clientCa: string }): SecretStore {
    const ns = ingress.metadata.namespace;
    return {
        [`${ns}/${ingress.spec.tls[0].secretName}`]: { "tls.crt": tls.server.certificate, "tls.key": tls.server.privateKey },
        [ingress.metadata.annotations[INGRESS_ANNOTATION.authTlsSecret]]: { "ca.crt": tls.clientCa },
    };
}

export interface NginxSideOptions extends Pick<TranslateOptions, "resolveService" | "configMap" | "defaultCertificate"> {
    workDir: string;
    group: ProcessGroup;
    /** The loopback port that stands for the cluster's 443. */
    port: number;
}

/**
 * One real nginx serving one cluster from an Ingress and the Secrets it names (`secrets`: at least those), whether the
 * program's builders made them or `pulumi up` wrote them into an API server; `updateTls` replaces the Secrets' content.
 */
export async function startNginxSide(ingress: IngressObject, secrets: SecretStore, options: NginxSideOptions): Promise<NginxSide> {
    const { workDir, port } = options;
    fs.mkdirSync(workDir, { recursive: true });
    const render = (store: SecretStore) => translateIngress(ingress, store, { ...options, listenPort: port });
    const nginx = new Nginx(workDir, port, options.group);
    await nginx.start(render(secrets));
    return {
        nginx,
        requests: (): FrontDoorRequest[] =>
            nginx.accessLog().map((entry) => ({ sni: entry.sni, host: entry.host, status: entry.status, clientSerial: normalizeSerial(entry.clientSerial) })),
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
        updateTls: async (tls) => {
            const workers = new Set(nginx.processes().slice(1));
            nginx.reconfigure(render({ ...secrets, ...secretsOf(ingress, tls) }));
            // The reload is asynchronous: the master reads the new configuration, then starts new workers, and only they
            // accept new connections once the old ones have stopped listening.
            const host = ingress.spec.rules[0].host;
            const expected = new X509Certificate(tls.server.certificate).fingerprint256;
            await waitFor(`nginx to serve its new configuration for ${host}`, 10_000, async () => {
                if (
                    !nginx
                        .processes()
                        .slice(1)
                        .some((pid) => !workers.has(pid))
                )
                    return undefined;
                return (await servedCertificate(port, host).catch(() => undefined))?.fingerprint256 === expected ? true : undefined;
            });
        },
    };
}
