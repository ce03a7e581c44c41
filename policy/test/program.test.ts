import assert from "node:assert/strict";
import * as path from "node:path";
import { describe, it } from "node:test";
import { buildModel } from "../../components/config/model";
import { rawConfigFromStackFiles } from "../../components/config/sources";
import { gatewaySpec } from "../../components/observed/gateway-api";
import { ingressAnnotations, ingressSpec } from "../../components/observed/ingress";
import { FILES, renderEnvoyFiles } from "../../components/observer/bootstrap";
import { deploymentSpec } from "../../components/observer/manifests";
import { observedNames, observerNames } from "../../components/names";
import { COMPUTED_STRING, runAll, TYPES } from "./harness";

/** The program's own objects for the dev stack, built by its pure builders, through every policy of the pack. */

const projectDir = path.resolve(__dirname, "../..");
const model = buildModel(rawConfigFromStackFiles(projectDir, "dev").raw, { checkSecretMaterial: false, now: new Date() });
const files = renderEnvoyFiles({ envoy: model.envoy, clusters: model.clusters });
const configMap = { metadata: { name: observerNames.bootstrapConfigMap, namespace: model.observer.namespace }, data: files };

describe("the dev stack's resources pass the envoy-thanos policy pack", () => {
    it("the Envoy ConfigMap", async () => {
        assert.ok(files[FILES.clusters].includes("UpstreamTlsContext"), "the rules see the real CDS file");
        assert.deepEqual(await runAll(TYPES.configMap, configMap), []);
    });

    it("the Envoy Deployment, with its checksum known and still computed (preview)", async () => {
        for (const checksum of ["0123abcd", COMPUTED_STRING]) {
            const deployment = { metadata: { name: observerNames.deployment }, spec: deploymentSpec(model.envoy, checksum) };
            // Only the advisory digest warning: the dev stack pins a version tag (a digest cannot be verified offline).
            const messages = await runAll(TYPES.deployment, deployment);
            assert.deepEqual(
                messages.map((m) => m.split(":")[0]),
                ["images-by-digest"],
                messages.join("\n"),
            );
        }
    });

    it("every observed cluster's front door: cl1's Ingress, cl2's Gateway", async () => {
        assert.deepEqual(
            model.clusters.map((c) => c.frontDoor),
            ["ingress-nginx", "gateway-api"],
        );
        for (const cluster of model.clusters) {
            const violations =
                cluster.frontDoor === "gateway-api"
                    ? await runAll(TYPES.gateway, { metadata: { name: observedNames(cluster.name).gateway }, spec: gatewaySpec(cluster) })
                    : await runAll(TYPES.ingress, {
                          metadata: {
                              name: observedNames(cluster.name).ingress,
                              annotations: ingressAnnotations({ cluster, verifyDepth: 1, clientIdentity: model.clientIdentity }),
                          },
                          spec: ingressSpec(cluster),
                      });
            assert.deepEqual(violations, [], cluster.name);
        }
    });

    it("would catch a regression in the real listeners and clusters (the check is not vacuous)", async () => {
        const withoutTimeouts = { ...configMap, data: { ...files, [FILES.listeners]: files[FILES.listeners].replaceAll(/^\s*timeout: 0s\n/gm, "") } };
        const violations = await runAll(TYPES.configMap, withoutTimeouts);
        assert.equal(violations.length, model.clusters.length);
        assert.ok(
            violations.every((v) => v.startsWith("envoy-routes-no-stream-timeout: ") && v.includes(`data.${FILES.listeners}`)),
            violations.join("\n"),
        );
        const unverified = {
            ...configMap,
            data: { ...files, [FILES.clusters]: files[FILES.clusters].replaceAll(/match_typed_subject_alt_names/g, "x_unchecked") },
        };
        const tls = await runAll(TYPES.configMap, unverified);
        assert.equal(tls.length, model.clusters.length, tls.join("\n"));
        assert.ok(tls.every((v) => v.startsWith("envoy-upstream-tls-verified: ") && v.includes(`data.${FILES.clusters}`)));
    });
});
