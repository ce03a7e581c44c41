import { execFileSync } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";

/**
 * `tsx tools/real-node/oci-archive.ts --rootfs DIR --ref REF --entrypoint JSON --out FILE`: packs a root file
 * system as a one-layer OCI image archive that `ctr images import` loads under REF. The layer is an uncompressed
 * tar (containerd unpacks it without a gzip pass; the archive stays in the cache, never on a registry).
 */

export interface ImageConfig {
    entrypoint: string[];
    env: string[];
}

interface Descriptor {
    mediaType: string;
    digest: string;
    size: number;
}

const MEDIA = {
    layer: "application/vnd.oci.image.layer.v1.tar",
    config: "application/vnd.oci.image.config.v1+json",
    manifest: "application/vnd.oci.image.manifest.v1+json",
};

/** The blob's descriptor; the blob goes to blobs/sha256/<digest> under `layout`. */
function addBlob(layout: string, mediaType: string, content: Buffer): Descriptor {
    const hex = crypto.createHash("sha256").update(content).digest("hex");
    fs.writeFileSync(path.join(layout, "blobs", "sha256", hex), content);
    return { mediaType, digest: `sha256:${hex}`, size: content.length };
}

function fileDigest(file: string): string {
    const hash = crypto.createHash("sha256");
    const fd = fs.openSync(file, "r");
    try {
        const chunk = Buffer.alloc(1 << 20);
        for (let n = fs.readSync(fd, chunk); n > 0; n = fs.readSync(fd, chunk)) hash.update(chunk.subarray(0, n));
    } finally {
        fs.closeSync(fd);
    }
    return hash.digest("hex");
}

/** The image config, manifest and index for one uncompressed layer, as plain objects. */
export function imageDocuments(layer: Descriptor, ref: string, config: ImageConfig) {
    const imageConfig = {
        architecture: "amd64",
        os: "linux",
        config: { Entrypoint: config.entrypoint, Env: config.env, WorkingDir: "/" },
        // An uncompressed layer's diff ID is its digest.
        rootfs: { type: "layers", diff_ids: [layer.digest] },
    };
    const manifest = (configDescriptor: Descriptor) => ({ schemaVersion: 2, mediaType: MEDIA.manifest, config: configDescriptor, layers: [layer] });
    const index = (manifestDescriptor: Descriptor) => ({
        schemaVersion: 2,
        manifests: [
            {
                ...manifestDescriptor,
                platform: { architecture: "amd64", os: "linux" },
                // ctr names the imported image after this annotation.
                annotations: { "io.containerd.image.name": ref, "org.opencontainers.image.ref.name": ref.slice(ref.lastIndexOf(":") + 1) },
            },
        ],
    });
    return { imageConfig, manifest, index };
}

export function writeOciArchive(options: { rootfs: string; ref: string; config: ImageConfig; out: string }): void {
    const layout = fs.mkdtempSync(path.join(path.dirname(options.out), ".oci-"));
    try {
        fs.mkdirSync(path.join(layout, "blobs", "sha256"), { recursive: true });
        const layerFile = path.join(layout, "layer.tar");
        // Sorted, with fixed times, so the same root file system gives the same digest.
        execFileSync("tar", ["--sort=name", "--mtime=@0", "--numeric-owner", "--xattrs", "-C", options.rootfs, "-cf", layerFile, "."]);
        const layerHex = fileDigest(layerFile);
        const layer = { mediaType: MEDIA.layer, digest: `sha256:${layerHex}`, size: fs.statSync(layerFile).size };
        fs.renameSync(layerFile, path.join(layout, "blobs", "sha256", layerHex));
        const docs = imageDocuments(layer, options.ref, options.config);
        const configDescriptor = addBlob(layout, MEDIA.config, Buffer.from(JSON.stringify(docs.imageConfig)));
        const manifestDescriptor = addBlob(layout, MEDIA.manifest, Buffer.from(JSON.stringify(docs.manifest(configDescriptor))));
        fs.writeFileSync(path.join(layout, "index.json"), JSON.stringify(docs.index(manifestDescriptor)));
        fs.writeFileSync(path.join(layout, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
        const partial = `${options.out}.partial`;
        execFileSync("tar", ["-C", layout, "-cf", partial, "oci-layout", "index.json", "blobs"]);
        fs.renameSync(partial, options.out);
    } finally {
        fs.rmSync(layout, { recursive: true, force: true });
    }
}

function main(argv: string[]): number {
    const value = (flag: string) => {
        const i = argv.indexOf(flag);
        return i >= 0 ? argv[i + 1] : undefined;
    };
    const [rootfs, ref, entrypoint, out] = ["--rootfs", "--ref", "--entrypoint", "--out"].map(value);
    if (!rootfs || !ref || !entrypoint || !out) {
        process.stderr.write("usage: tsx tools/real-node/oci-archive.ts --rootfs DIR --ref REF --entrypoint JSON --out FILE\n");
        return 2;
    }
    writeOciArchive({
        rootfs,
        ref,
        out,
        config: { entrypoint: JSON.parse(entrypoint) as string[], env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"] },
    });
    process.stdout.write(`${out}\n`);
    return 0;
}

if (require.main === module) process.exitCode = main(process.argv.slice(2));
