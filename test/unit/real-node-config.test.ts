import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { imageDocuments } from "../../tools/real-node/oci-archive";
import { containerdConfig, kubeletConfig } from "../e2e/support/node-config";
import { tomlText } from "../e2e/support/toml";

describe("the real node's configuration files", () => {
    it("TOML: scalars before tables, dotted plugin names quoted, nested tables by their full path", () => {
        const text = tomlText({ version: 2, disabled: ["a.b", "c"], plugins: { "io.x.v1.cri": { on: true, runtimes: { runc: { n: 1 } } } } });
        assert.equal(text, 'version = 2\ndisabled = ["a.b", "c"]\n\n[plugins."io.x.v1.cri"]\non = true\n\n[plugins."io.x.v1.cri".runtimes.runc]\nn = 1\n');
        assert.throws(() => tomlText({ bad: null }), /bad is not a string, finite number or boolean/);
    });

    it("containerd keeps everything under its directory, uses cgroupfs, and cannot lower OOM scores", () => {
        const text = tomlText(containerdConfig("/tmp/node/containerd"));
        for (const line of [
            'root = "/tmp/node/containerd/root"',
            'state = "/tmp/node/containerd/state"',
            "restrict_oom_score_adj = true",
            "SystemdCgroup = false",
            'Root = "/tmp/node/containerd/runc"',
            'conf_dir = "/tmp/node/containerd/net.d"',
        ]) {
            assert.ok(text.includes(`${line}\n`), `${line} in\n${text}`);
        }
    });

    it("the kubelet accepts cgroup v1 and syncs volumes every few seconds", () => {
        const config = kubeletConfig({ runtimeSocket: "/s.sock", cgroupRoot: "/n", resolvConf: "/r", podLogsDir: "/l" }) as Record<string, unknown>;
        assert.equal(config.failCgroupV1, false);
        assert.equal(config.cgroupDriver, "cgroupfs");
        assert.equal(config.containerRuntimeEndpoint, "unix:///s.sock");
        assert.equal(config.syncFrequency, "5s");
    });

    it("an OCI image index names the image for ctr, and the config's diff ID is the uncompressed layer's digest", () => {
        const layer = { mediaType: "application/vnd.oci.image.layer.v1.tar", digest: "sha256:ab", size: 3 };
        const docs = imageDocuments(layer, "docker.io/envoyproxy/envoy:v1.40.0", { entrypoint: ["/usr/local/bin/envoy"], env: [] });
        assert.deepEqual(docs.imageConfig.rootfs.diff_ids, ["sha256:ab"]);
        assert.deepEqual(docs.imageConfig.config.Entrypoint, ["/usr/local/bin/envoy"]);
        const index = docs.index({ mediaType: "m", digest: "sha256:cd", size: 1 });
        assert.equal(index.manifests[0].annotations["io.containerd.image.name"], "docker.io/envoyproxy/envoy:v1.40.0");
        assert.equal(index.manifests[0].annotations["org.opencontainers.image.ref.name"], "v1.40.0");
        assert.deepEqual(docs.manifest({ mediaType: "c", digest: "sha256:ef", size: 2 }).layers, [layer]);
    });
});
