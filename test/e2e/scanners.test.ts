import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import * as YAML from "yaml";
import { TLS_FILE_NAMES } from "../../components/config/tls-files";
import { OpensslCa } from "../../tools/pki/openssl-ca";
import { requireTool, tempDir } from "./support/processes";
import { PulumiProject, requirePulumi } from "./support/pulumi";

/**
 * Two third-party scanners, checkov and kube-score, on the manifests the real engine renders for the dev stack as
 * committed and for a three-cluster staging-like stack. Every finding fails unless tools/scanner-allowlist.yaml
 * accepts it with a reason; an allowlist entry that matches nothing fails too, so no reason outlives its finding.
 */

const ROOT = path.resolve(__dirname, "../..");
const ALLOWLIST = path.join(ROOT, "tools/scanner-allowlist.yaml");
const tools = [
    requireTool("checkov", "bash tools/setup.sh (pip install checkov into .venv)"),
    requireTool("kube-score", "bash tools/setup.sh (builds kube-score)"),
];
const missing = tools.find((t): t is { skip: string } => typeof t === "object");
const skip = requirePulumi() || (missing ? missing.skip : false);

interface Finding {
    scanner: "checkov" | "kube-score";
    check: string;
    /** `Kind/namespace/name`. */
    object: string;
    detail: string;
}

interface AllowEntry {
    scanner: string;
    check: string;
    /** `Kind/namespace/name`, `*` matching any run of characters. */
    object: string;
    reason: string;
}

function checkovFindings(dir: string): Finding[] {
    // --skip-download: no guideline or policy download (the machine has no route; CI must not depend on one).
    const run = spawnSync("checkov", ["-d", dir, "--framework", "kubernetes", "-o", "json", "--compact", "--quiet", "--skip-download"], { encoding: "utf8" });
    assert.ok(run.status === 0 || run.status === 1, `checkov exited ${run.status}: ${run.stderr.slice(-2000)}`);
    assert.equal(run.stderr.trim(), "", "checkov printed errors");
    const reports = [JSON.parse(run.stdout)].flat();
    return reports.flatMap((r: any) =>
        (r.results?.failed_checks ?? []).map((f: any): Finding => {
            // checkov names resources Kind.namespace.name (Pods synthesised from workloads carry their labels after).
            const [kind, namespace, ...rest] = String(f.resource).split(".");
            const name = kind === "Pod" ? rest[0] : rest.join(".");
            return { scanner: "checkov", check: f.check_id, object: `${kind}/${namespace}/${name}`, detail: f.check_name };
        }),
    );
}

function kubeScoreFindings(dir: string): Finding[] {
    const files: string[] = [];
    const walk = (d: string) =>
        fs
            .readdirSync(d, { withFileTypes: true })
            .forEach((e) => (e.isDirectory() ? walk(path.join(d, e.name)) : e.name.endsWith(".yaml") && files.push(path.join(d, e.name))));
    walk(dir);
    const run = spawnSync("kube-score", ["score", "--output-format", "json", ...files], { encoding: "utf8" });
    assert.ok(run.status === 0 || run.status === 1, `kube-score exited ${run.status}: ${run.stderr.slice(-2000)}`);
    return JSON.parse(run.stdout).flatMap((o: any) =>
        o.checks
            .filter((c: any) => !c.skipped && c.grade < 10)
            .map((c: any): Finding => ({
                scanner: "kube-score",
                check: c.check.id,
                object: `${o.type_meta.kind}/${o.object_meta.namespace ?? ""}/${o.object_meta.name}`,
                detail: (c.comments ?? []).map((m: any) => m.summary).join("; "),
            })),
    );
}

/** Certificates for `tls.mode: files` in the documented layout, from the program's spec. */
function materialDirectory(hosts: Record<string, string>): string {
    const dir = tempDir("scan-pki");
    const ca = OpensslCa.create(path.join(dir, "work"), "scan");
    const client = ca.client();
    const write = (name: string, text: string) => {
        fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
        fs.writeFileSync(path.join(dir, name), text);
    };
    write(TLS_FILE_NAMES.caBundle, ca.ca.certificate);
    write(TLS_FILE_NAMES.clientCertificate, client.certificate);
    write(TLS_FILE_NAMES.clientPrivateKey, client.privateKey);
    for (const [name, host] of Object.entries(hosts)) {
        const server = ca.server(host);
        write(TLS_FILE_NAMES.serverCertificate(name), server.certificate);
        write(TLS_FILE_NAMES.serverPrivateKey(name), server.privateKey);
    }
    return dir;
}

const matches = (entry: AllowEntry, f: Finding) =>
    entry.scanner === f.scanner &&
    entry.check === f.check &&
    new RegExp(
        `^${entry.object
            .split("*")
            .map((p) => p.replace(/[.+?^${}()|[\]\\/]/g, "\\$&"))
            .join(".*")}$`,
    ).test(f.object);

describe("third-party scanners on the rendered manifests", { skip }, () => {
    const project = skip ? undefined! : new PulumiProject({ PULUMI_CONFIG_PASSPHRASE: "envoy-thanos-dev" });
    const rendered: Record<string, string> = {};

    before(async () => {
        fs.copyFileSync(path.join(ROOT, "Pulumi.dev.yaml"), path.join(project.dir, "Pulumi.dev.yaml"));
        rendered.dev = path.join(project.dir, "rendered");
        // Staging's shape with three clusters, rendered: certificates from files, a NetworkPolicy, overrides.
        rendered.staging = tempDir("scan-staging");
        const dev = YAML.parse(fs.readFileSync(path.join(ROOT, "Pulumi.dev.yaml"), "utf8")).config;
        const hosts = { cl1: "cl1m.example.com", cl2: "cl2m.example.com", cl3: "cl3m.example.com" };
        project.writeStack("scan", {
            renderDirectory: rendered.staging,
            tls: { mode: "files", directory: materialDirectory(hosts) },
            sidecar: dev["envoy-thanos:sidecar"],
            envoy: { replicas: 3 },
            networkPolicy: { enabled: true, querierNamespaceSelector: { "kubernetes.io/metadata.name": "monitoring" } },
            clusters: [
                { name: "cl1", host: hosts.cl1, port: 10002 },
                { name: "cl2", host: hosts.cl2, port: 10003, address: "lb.dc2.example.net:8443", frontDoor: "gateway-api", sidecar: { port: 10901 } },
                { name: "cl3", host: hosts.cl3, port: 10004, sidecar: { namespace: "prometheus", port: 10901 }, ingress: { className: "nginx-internal" } },
            ],
        });
        await project.ok(["stack", "select", "--create", "dev"]);
        await project.ok(["up", "-s", "dev", "--yes", "--skip-preview"]);
        await project.ok(["stack", "select", "--create", "scan"]);
        await project.ok(["up", "-s", "scan", "--yes", "--skip-preview"]);
    });

    after(async () => {
        for (const stack of ["dev", "scan"]) await project?.run(["destroy", "-s", stack, "--yes", "--skip-preview"]);
    });

    it("find nothing that the allowlist does not accept with a reason, and the allowlist has no stale entry", () => {
        const allow = YAML.parse(fs.readFileSync(ALLOWLIST, "utf8")) as AllowEntry[];
        for (const entry of allow) assert.ok(entry.reason?.trim(), `allowlist entry ${entry.scanner} ${entry.check} has no reason`);
        // Both front doors are among what the scanners read: Ingresses, and a Gateway with its route and policies.
        for (const dir of Object.values(rendered)) {
            const texts = (fs.readdirSync(dir, { recursive: true }) as string[])
                .filter((f) => f.endsWith(".yaml"))
                .map((f) => fs.readFileSync(path.join(dir, f), "utf8"));
            for (const kind of ["Ingress", "Gateway", "GRPCRoute"])
                assert.ok(
                    texts.some((t) => t.includes(`kind: ${kind}\n`)),
                    `${dir} has a ${kind}`,
                );
        }
        const findings = Object.values(rendered).flatMap((dir) => [...checkovFindings(dir), ...kubeScoreFindings(dir)]);
        assert.ok(findings.length > 0 || allow.length === 0, "the scanners ran and reported something to compare");
        const unlisted = findings.filter((f) => !allow.some((e) => matches(e, f)));
        assert.deepEqual(
            unlisted,
            [],
            `findings not in tools/scanner-allowlist.yaml:\n${unlisted.map((f) => `${f.scanner} ${f.check} ${f.object}: ${f.detail}`).join("\n")}`,
        );
        const stale = allow.filter((e) => !findings.some((f) => matches(e, f)));
        assert.deepEqual(stale, [], "allowlist entries that match no finding any more: remove them");
    });
});
