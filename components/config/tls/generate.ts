import { CaSlot, defaults, renewalWindowHours } from "../defaults";
import { ConfigProblem } from "../errors";
import { TlsInput } from "../tls-schema";

export interface GeneratedTlsModel {
    mode: "generate";
    validityHours: number;
    earlyRenewalHours: number;
    caValidityHours: number;
    /** The CA slot that signs the certificates, and the slots whose CA certificates both sides trust. */
    ca: { issuing: CaSlot; trusted: CaSlot[] };
}

/** `tls.mode: generate`: lifetimes and CA slots of the private CA that `@pulumi/tls` runs. */
export function resolveGenerated(t: TlsInput, problems: ConfigProblem[]): GeneratedTlsModel {
    const issuing = t.ca?.issuing ?? defaults.tls.ca.issuing;
    // No default follows issuing: moving it alone would switch CAs without the overlap; say so instead.
    const trusted = t.ca?.trusted ?? [...defaults.tls.ca.trusted];
    if (new Set(trusted).size !== trusted.length) {
        problems.push({ key: "tls.ca.trusted", message: `lists a slot twice (${trusted.join(", ")}); list a, b or both once` });
    }
    if (!trusted.includes(issuing)) {
        problems.push({
            key: "tls.ca.trusted",
            message: `(${trusted.join(", ")}) must include tls.ca.issuing (${issuing}): both sides must trust the CA that signs the certificates`,
        });
    }
    const validityHours = t.validityHours ?? defaults.tls.validityHours;
    const model: GeneratedTlsModel = {
        mode: "generate",
        validityHours,
        earlyRenewalHours: t.earlyRenewalHours ?? renewalWindowHours(validityHours),
        caValidityHours: t.caValidityHours ?? defaults.tls.caValidityHours,
        ca: { issuing, trusted },
    };
    if (model.earlyRenewalHours >= model.validityHours) {
        problems.push({
            key: "tls.earlyRenewalHours",
            message: `(${model.earlyRenewalHours}) must be less than tls.validityHours (${model.validityHours}); lower it, raise tls.validityHours, or remove it to take the default that follows the lifetime`,
        });
    }
    if (model.validityHours > model.caValidityHours) {
        problems.push({
            key: "tls.validityHours",
            message: `(${model.validityHours}) must not exceed tls.caValidityHours (${model.caValidityHours}); lower it or raise tls.caValidityHours`,
        });
    }
    return model;
}
