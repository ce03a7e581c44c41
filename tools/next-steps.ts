import * as fs from "node:fs";
import * as path from "node:path";

/**
 * `pulumi stack output --json | node --import tsx tools/next-steps.ts <stack>`: what `npm run up` prints after a
 * successful update: where the manifests are (render mode), the querier flags, and what to do next.
 */

interface StackOutputs {
    querierFlags?: string[];
    renderDirectory?: string;
    clusters?: { name: string; service: string; port: number; host: string }[];
}

/** Rendered manifest files per sub-directory (observer, then one per observed cluster). */
function renderedFiles(directory: string): [string, number][] {
    if (!fs.existsSync(directory)) return [];
    const count = (dir: string): number =>
        fs
            .readdirSync(dir, { withFileTypes: true })
            .reduce((n, e) => n + (e.isDirectory() ? count(path.join(dir, e.name)) : e.name.endsWith(".yaml") ? 1 : 0), 0);
    return fs
        .readdirSync(directory, { withFileTypes: true })
        .filter((e) => e.isDirectory())
        .map((e): [string, number] => [path.join(directory, e.name), count(path.join(directory, e.name))]);
}

function main(stack: string, outputsJson: string): string {
    const outputs = JSON.parse(outputsJson) as StackOutputs;
    const lines: string[] = [""];
    if (outputs.renderDirectory !== undefined) {
        lines.push(`Manifests rendered under ${outputs.renderDirectory}/ (nothing was applied to a cluster):`);
        for (const [dir, files] of renderedFiles(outputs.renderDirectory)) {
            lines.push(`  ${dir}/  ${files} file${files === 1 ? "" : "s"}`);
        }
        lines.push("  They hold private keys in plaintext Secrets: keep the directory out of git (it is git-ignored).");
        lines.push("");
    }
    lines.push("Querier flags (add them to `thanos query`, or use the endpointSdFile output with --endpoint.sd-config-file):");
    for (const flag of outputs.querierFlags ?? []) lines.push(`  ${flag}`);
    lines.push("");
    lines.push("Next steps:");
    if (outputs.renderDirectory !== undefined) {
        lines.push(`  - Read what would be deployed: ls -R ${outputs.renderDirectory}/; the Envoy configuration alone: npm run -s envoy-config -- ${stack}`);
        lines.push(`  - Change the stack (Pulumi.${stack}.yaml), then npm run preview -- -s ${stack} shows the difference.`);
        lines.push('  - Deploy to real clusters: a stack per environment with kubeconfig contexts (docs/deploying.md, "Moving to real clusters").');
        lines.push(`  - Clean up: npm run destroy -- -s ${stack} --yes`);
    } else {
        const services = (outputs.clusters ?? []).map((c) => `${c.service}:${c.port} → ${c.host}`).join(", ");
        lines.push(`  - Envoy's Services on the observer: ${services}`);
        lines.push("  - Point the querier at them with the flags above; its Stores page then lists every observed cluster.");
        lines.push(`  - A change to Pulumi.${stack}.yaml: npm run preview -- -s ${stack}, then npm run up -- -s ${stack}`);
    }
    return lines.join("\n") + "\n";
}

process.stdout.write(main(process.argv[2] ?? "", fs.readFileSync(0, "utf8")));
