import { execFileSync } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { caSpec, CertificateSpec, clientSpec, serverSpec } from "../../components/pki/spec";

/**
 * Certificates made by the real openssl CLI from the program's own certificate spec (components/pki/spec.ts),
 * so that the tests and the bench have the layout the program issues
 * with @pulumi/tls.
 */

export interface Issued {
    certificate: string;
    privateKey: string;
    certificatePath: string;
    privateKeyPath: string;
}

export interface IssueOptions {
    /** Validity window; defaults to one hour ago until one day from now. */
    notBefore?: Date;
    notAfter?: Date;
    /** ECDSA curve name as openssl spells it; default prime256v1 (P-256), as KEY_SPEC says. */
    curve?: string;
    /** Issue an RSA key instead (for tests of other key types). */
    rsaBits?: number;
}

const USAGE: Record<string, { keyUsage?: string; extendedKeyUsage?: string }> = {
    cert_signing: { keyUsage: "keyCertSign" },
    crl_signing: { keyUsage: "cRLSign" },
    digital_signature: { keyUsage: "digitalSignature" },
    key_encipherment: { keyUsage: "keyEncipherment" },
    server_auth: { extendedKeyUsage: "serverAuth" },
    client_auth: { extendedKeyUsage: "clientAuth" },
};

function extensions(spec: CertificateSpec): string {
    const keyUsage = spec.allowedUses.map((u) => USAGE[u]?.keyUsage).filter(Boolean);
    const eku = spec.allowedUses.map((u) => USAGE[u]?.extendedKeyUsage).filter(Boolean);
    const unknown = spec.allowedUses.filter((u) => USAGE[u] === undefined);
    if (unknown.length > 0) {
        throw new Error(`test PKI does not know allowed use(s) ${unknown.join(", ")}; add them to USAGE`);
    }
    const lines = [`basicConstraints = critical, CA:${spec.isCa ? "TRUE" : "FALSE"}`, "subjectKeyIdentifier = hash", "authorityKeyIdentifier = keyid"];
    if (keyUsage.length > 0) lines.push(`keyUsage = critical, ${keyUsage.join(", ")}`);
    if (eku.length > 0) lines.push(`extendedKeyUsage = ${eku.join(", ")}`);
    if (spec.dnsNames.length > 0) lines.push(`subjectAltName = ${spec.dnsNames.map((d) => `DNS:${d}`).join(", ")}`);
    return lines.join("\n") + "\n";
}

function opensslDate(d: Date): string {
    // openssl ca's -startdate/-enddate: YYYYMMDDHHMMSSZ
    return d
        .toISOString()
        .replace(/[-:T]/g, "")
        .replace(/\.\d+Z$/, "Z");
}

function run(args: string[], cwd: string): void {
    execFileSync("openssl", args, { cwd, stdio: ["ignore", "pipe", "pipe"] });
}

/** A directory-backed certificate authority; every certificate it issues is written under `dir`. */
export class OpensslCa {
    readonly dir: string;
    readonly ca: Issued;
    private serial = 1;

    private constructor(dir: string, ca: Issued) {
        this.dir = dir;
        this.ca = ca;
    }

    static create(dir: string = fs.mkdtempSync(path.join(os.tmpdir(), "envoy-thanos-pki-")), name = "test", options: IssueOptions = {}): OpensslCa {
        fs.mkdirSync(dir, { recursive: true });
        const key = path.join(dir, `ca-${name}.key`);
        const cert = path.join(dir, `ca-${name}.crt`);
        const spec = caSpec(name);
        newKey(key, options, dir);
        fs.writeFileSync(path.join(dir, `ca-${name}.ext`), extensions(spec));
        const notBefore = options.notBefore ?? new Date(Date.now() - 3600_000);
        const notAfter = options.notAfter ?? new Date(Date.now() + 7 * 86400_000);
        // A self-signed CA through `openssl ca -selfsign` so that the validity window can be set explicitly.
        const csr = path.join(dir, `ca-${name}.csr`);
        run(["req", "-new", "-key", key, "-out", csr, "-subj", subjectOf(spec)], dir);
        const tca = new OpensslCa(dir, { certificate: "", privateKey: fs.readFileSync(key, "utf8"), certificatePath: cert, privateKeyPath: key });
        tca.signWith(csr, cert, key, path.join(dir, `ca-${name}.ext`), notBefore, notAfter, true);
        const ca = { certificate: fs.readFileSync(cert, "utf8"), privateKey: fs.readFileSync(key, "utf8"), certificatePath: cert, privateKeyPath: key };
        return new OpensslCa(dir, ca);
    }

    /** Issues a certificate for `spec`, files named `<name>.crt` / `<name>.key`. */
    issue(name: string, spec: CertificateSpec, options: IssueOptions = {}): Issued {
        const key = path.join(this.dir, `${name}.key`);
        const cert = path.join(this.dir, `${name}.crt`);
        const csr = path.join(this.dir, `${name}.csr`);
        const ext = path.join(this.dir, `${name}.ext`);
        newKey(key, options, this.dir);
        fs.writeFileSync(ext, extensions(spec));
        run(["req", "-new", "-key", key, "-out", csr, "-subj", subjectOf(spec)], this.dir);
        this.signWith(
            csr,
            cert,
            this.ca.privateKeyPath,
            ext,
            options.notBefore ?? new Date(Date.now() - 3600_000),
            options.notAfter ?? new Date(Date.now() + 86400_000),
            false,
        );
        return { certificate: fs.readFileSync(cert, "utf8"), privateKey: fs.readFileSync(key, "utf8"), certificatePath: cert, privateKeyPath: key };
    }

    server(host: string, options: IssueOptions = {}): Issued {
        return this.issue(`server-${host}`, serverSpec(host), options);
    }

    client(name = "client", options: IssueOptions = {}): Issued {
        return this.issue(name, clientSpec(), options);
    }

    private signWith(csr: string, out: string, caKey: string, ext: string, notBefore: Date, notAfter: Date, selfSign: boolean): void {
        const db = path.join(this.dir, "ca-db");
        fs.mkdirSync(db, { recursive: true });
        const index = path.join(db, `index-${this.serial}.txt`);
        fs.writeFileSync(index, "");
        const conf = path.join(db, `ca-${this.serial}.cnf`);
        fs.writeFileSync(
            conf,
            [
                "[ca]",
                "default_ca = test_ca",
                "[test_ca]",
                `database = ${index}`,
                `new_certs_dir = ${db}`,
                `serial = ${path.join(db, "serial")}`,
                "default_md = sha256",
                "policy = any",
                "unique_subject = no",
                "copy_extensions = none",
                "[any]",
                "commonName = supplied",
                "organizationName = optional",
                "",
            ].join("\n"),
        );
        // Random serials: a rotated certificate must be told apart from the one it replaces.
        fs.writeFileSync(path.join(db, "serial"), `${crypto.randomBytes(8).toString("hex")}\n`);
        this.serial++;
        const args = ["ca", "-batch", "-notext", "-config", conf, "-in", csr, "-out", out, "-keyfile", caKey, "-extfile", ext];
        args.push("-startdate", opensslDate(notBefore), "-enddate", opensslDate(notAfter));
        if (selfSign) {
            args.push("-selfsign");
        } else {
            args.push("-cert", this.ca.certificatePath);
        }
        run(args, this.dir);
    }
}

function newKey(file: string, options: IssueOptions, cwd: string): void {
    if (options.rsaBits !== undefined) {
        run(["genpkey", "-algorithm", "RSA", "-pkeyopt", `rsa_keygen_bits:${options.rsaBits}`, "-out", file], cwd);
    } else {
        run(["genpkey", "-algorithm", "EC", "-pkeyopt", `ec_paramgen_curve:${options.curve ?? "prime256v1"}`, "-out", file], cwd);
    }
}

function subjectOf(spec: CertificateSpec): string {
    return `/O=${spec.organization}/CN=${spec.commonName}`;
}
