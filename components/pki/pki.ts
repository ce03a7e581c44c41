import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import * as tls from "@pulumi/tls";
import type { CaSlot } from "../config/defaults";
import type { TlsModel } from "../config/model";
import { caSpec, CertificateSpec, clientSpec, KEY_SPEC, serverSpec } from "./spec";

export interface CertificateAndKey {
    /** PEM chain, public. */
    certificate: pulumi.Output<string>;
    /** PEM private key, always a Pulumi secret. */
    privateKey: pulumi.Output<string>;
}

export interface PkiArgs {
    tls: TlsModel;
    /** Observed clusters the PKI issues a server certificate for. */
    clusters: { name: string; host: string }[];
}

/**
 * The certificates of the data path: a CA, one server certificate per observed cluster, one client certificate for Envoy.
 * `generate` issues them with `@pulumi/tls`; `provided` and `files` pass operator PEM material through (already checked in the
 * model), its private keys wrapped as secrets here, before anything else sees them.
 */
export class Pki extends pulumi.ComponentResource {
    /** CA certificate(s) that verify the servers (in Envoy, or the native querier): every trusted CA. Public. */
    public readonly caCertificate: pulumi.Output<string>;
    /** CA certificate(s) the front doors verify Envoy's client certificate against; generate mode: caCertificate. Public. */
    public readonly clientCaCertificate: pulumi.Output<string>;
    public readonly client: CertificateAndKey;
    public readonly servers: Record<string, CertificateAndKey>;

    constructor(name: string, args: PkiArgs, opts?: pulumi.ComponentResourceOptions) {
        super("envoy-thanos:pki:Pki", name, {}, opts);
        if (args.tls.mode !== "generate") {
            const provided = args.tls;
            const pass = (pair: { certificate: string; privateKey: string }): CertificateAndKey => ({
                certificate: pulumi.output(pair.certificate),
                privateKey: pulumi.secret(pair.privateKey),
            });
            this.caCertificate = pulumi.output(provided.caBundle);
            this.clientCaCertificate = pulumi.output(provided.clientCaBundle);
            this.client = pass(provided.client);
            this.servers = Object.fromEntries(args.clusters.map((c) => [c.name, pass(provided.servers[c.name])]));
        } else {
            // Children are named `<component>-<role>`; the alias keeps the state of stacks created when they were named `<role>`.
            const child = (role: string): pulumi.CustomResourceOptions => ({ parent: this, aliases: [{ name: role }] });
            const lifetime = { validityPeriodHours: args.tls.validityHours, earlyRenewalHours: args.tls.earlyRenewalHours };
            const caValidityHours = args.tls.caValidityHours;
            // Slot a keeps the resource names of a single CA, so existing stacks do not replace theirs.
            const slotName = (slot: CaSlot, base: string) => (slot === "a" ? base : `${base}-${slot}`);
            const newCa = (slot: CaSlot) => {
                const caId = new random.RandomId(`${name}-${slotName(slot, "ca-id")}`, { byteLength: 4 }, child(slotName(slot, "ca-id")));
                const key = new tls.PrivateKey(`${name}-${slotName(slot, "ca")}`, KEY_SPEC, child(slotName(slot, "ca")));
                const cert = new tls.SelfSignedCert(
                    `${name}-${slotName(slot, "ca")}`,
                    {
                        privateKeyPem: key.privateKeyPem,
                        subject: caId.hex.apply((id) => subjectOf(caSpec(id))),
                        isCaCertificate: true,
                        allowedUses: caSpec("").allowedUses,
                        validityPeriodHours: caValidityHours,
                        earlyRenewalHours: lifetime.earlyRenewalHours,
                    },
                    child(slotName(slot, "ca")),
                );
                return { key, cert };
            };
            const cas = new Map(args.tls.ca.trusted.map((slot) => [slot, newCa(slot)]));
            const { key: caKey, cert: ca } = cas.get(args.tls.ca.issuing)!;
            const issue = (role: string, spec: CertificateSpec): CertificateAndKey => {
                const resourceName = `${name}-${role}`;
                const key = new tls.PrivateKey(resourceName, KEY_SPEC, child(role));
                const request = new tls.CertRequest(
                    resourceName,
                    { privateKeyPem: key.privateKeyPem, subject: subjectOf(spec), dnsNames: spec.dnsNames },
                    child(role),
                );
                const cert = new tls.LocallySignedCert(
                    resourceName,
                    {
                        certRequestPem: request.certRequestPem,
                        caPrivateKeyPem: caKey.privateKeyPem,
                        caCertPem: ca.certPem,
                        allowedUses: spec.allowedUses,
                        ...lifetime,
                    },
                    child(role),
                );
                return { certificate: cert.certPem, privateKey: pulumi.secret(key.privateKeyPem) };
            };
            // Every trusted CA, so that during a rotation each side accepts certificates of the old and the new CA.
            this.caCertificate = pulumi.all([...cas.values()].map((c) => c.cert.certPem)).apply(joinPem);
            this.clientCaCertificate = this.caCertificate;
            this.client = issue("client", clientSpec());
            this.servers = Object.fromEntries(args.clusters.map((c) => [c.name, issue(`server-${c.name}`, serverSpec(c.host))]));
        }
        this.registerOutputs({ caCertificate: this.caCertificate, clientCaCertificate: this.clientCaCertificate });
    }
}

function joinPem(pems: string[]): string {
    return pems.map((pem) => (pem.endsWith("\n") ? pem : `${pem}\n`)).join("");
}

function subjectOf(spec: CertificateSpec) {
    return { commonName: spec.commonName, organization: spec.organization };
}
