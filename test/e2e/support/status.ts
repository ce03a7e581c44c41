import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { TLS_FILE_NAMES } from "../../../components/config/tls-files";
import { tempDir } from "./processes";
import type { Topology } from "./topology";

/** `npm run status` as a separate process, the way an operator runs it, against a test topology's front doors. */

const ROOT = path.join(__dirname, "..", "..", "..");

export interface Run {
    code: number | null;
    stdout: string;
    stderr: string;
}

export function runStatus(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<Run> {
    return new Promise((resolve, reject) => {
        const child = spawn(process.execPath, ["--import", "tsx", path.join(ROOT, "tools", "status.ts"), ...args], {
            cwd: ROOT,
            env,
            stdio: ["ignore", "pipe", "pipe"],
        });
        let stdout = "";
        let stderr = "";
        child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
        child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
        // Bounded: every hop has a timeout of its own; this is the backstop.
        const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
        child.once("error", reject);
        child.once("close", (code) => {
            clearTimeout(timer);
            resolve({ code, stdout, stderr });
        });
    });
}

export function writeTlsDir(ca: string, client: { certificate: string; privateKey: string }): string {
    const dir = tempDir("status-tls");
    fs.writeFileSync(path.join(dir, TLS_FILE_NAMES.caBundle), ca);
    fs.writeFileSync(path.join(dir, TLS_FILE_NAMES.clientCertificate), client.certificate);
    fs.writeFileSync(path.join(dir, TLS_FILE_NAMES.clientPrivateKey), client.privateKey, { mode: 0o600 });
    return dir;
}

/** `--cluster name=host@address` for each named cluster: the address of its front door (nginx), as Envoy dials it. */
export function clusterArguments(topology: Topology, names: string[]): string[] {
    return names.flatMap((name) => {
        const c = topology.model.clusters.find((m) => m.name === name);
        if (c === undefined) throw new Error(`no cluster ${name}`);
        return ["--cluster", `${c.name}=${c.host}@${c.address.host}:${c.address.port}`];
    });
}
