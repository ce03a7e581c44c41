import { z } from "zod";
import { CA_SLOTS } from "./defaults";
import { hours, pemSecret } from "./value-schemas";

/** `tls.*`: the keys of the three TLS modes; which mode may use which key is checked in tls/resolve.ts. */

const keyPair = z.strictObject({
    certificate: pemSecret,
    privateKey: pemSecret,
});

/** A path to a PEM file, relative to the project directory (where Pulumi.yaml is) unless absolute. */
const pemFilePath = z.string().min(1, "must be a path to a PEM file");

const keyPairFiles = z.strictObject({
    certificate: pemFilePath.optional(),
    privateKey: pemFilePath.optional(),
});

export const tlsSchema = z.strictObject({
    mode: z.enum(["generate", "provided", "files"]).optional(),
    /** generate: lifetime of the issued certificates, and how long before expiry `pulumi up` renews them. */
    validityHours: hours(1).optional(),
    earlyRenewalHours: hours(0).optional(),
    caValidityHours: hours(1).optional(),
    /** generate: which CA slot signs the certificates and which slots both sides trust (a rotation with overlap, see docs/certificates.md). */
    ca: z
        .strictObject({
            issuing: z.enum(CA_SLOTS, "must be a or b, the CA slot that signs the certificates").optional(),
            trusted: z
                .array(z.enum(CA_SLOTS, "must be a or b"))
                .min(1, "must list at least one CA slot (a, b or both)")
                .max(2, "lists at most the two slots a and b")
                .optional(),
        })
        .optional(),
    /** provided: CA certificates that verify the servers (in Envoy) and, unless clientCaBundle is set, Envoy's client certificate (at the front doors). */
    caBundle: pemSecret.optional(),
    /** provided: CA certificates the front doors verify Envoy's client certificate against; default: caBundle. */
    clientCaBundle: pemSecret.optional(),
    /** provided: Envoy's client certificate. */
    client: keyPair.optional(),
    /** provided: server certificate per cluster name. */
    servers: z.record(z.string(), keyPair).describe("a map from cluster name to certificate and privateKey").optional(),
    /** provided: one certificate used on every side, as in the manual recipe's fullchain.pem/privkey.pem. */
    shared: keyPair.optional(),
    /** files: a directory with the documented file names (docs/certificates.md, "Certificates from files"). */
    directory: z.string().min(1, "must be a directory path").optional(),
    /** files: per-item paths, each overriding the directory's file name for that item. */
    files: z
        .strictObject({
            caBundle: pemFilePath.optional(),
            clientCaBundle: pemFilePath.optional(),
            client: keyPairFiles.optional(),
            servers: z.record(z.string(), keyPairFiles).optional(),
        })
        .optional(),
});

export type KeyPairInput = z.infer<typeof keyPair>;
export type TlsInput = z.infer<typeof tlsSchema>;
