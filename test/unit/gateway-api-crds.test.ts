import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, it } from "node:test";
import { GATEWAY_API_MINIMUM, GATEWAY_API_TESTED, gatewayCrdMessage, gatewayCrdProblem } from "../../components/observed/gateway-api-crds";

/** The Gateway CRD checks on what an API server answers; test/e2e/gateway-api-crds.test.ts runs them against a real one. */

const ROOT = path.resolve(__dirname, "../..");

/** A Gateway CRD as the API server returns it, with or without spec.tls.frontend in its v1 schema. */
function crd(options: { frontend: boolean; bundle?: string; served?: boolean }) {
    const tls = options.frontend ? { properties: { frontend: { type: "object" } } } : { properties: {} };
    return {
        metadata: {
            name: "gateways.gateway.networking.k8s.io",
            annotations:
                options.bundle === undefined
                    ? {}
                    : { "gateway.networking.k8s.io/bundle-version": options.bundle, "gateway.networking.k8s.io/channel": "standard" },
        },
        spec: {
            versions: [
                {
                    name: "v1",
                    served: options.served ?? true,
                    schema: { openAPIV3Schema: { properties: { spec: { properties: { listeners: {}, tls } } } } },
                },
            ],
        },
    };
}

describe("Gateway API CRD check", () => {
    it("accepts a Gateway CRD with spec.tls.frontend", () => {
        assert.equal(gatewayCrdProblem({ status: 200, body: crd({ frontend: true, bundle: "v1.6.1" }) }), undefined);
    });

    it("names missing CRDs, and old ones with their installed version", () => {
        assert.match(
            gatewayCrdProblem({ status: 404, body: {} })!,
            /^has no Gateway API CRDs \(no CustomResourceDefinition gateways\.gateway\.networking\.k8s\.io\)$/,
        );
        assert.equal(
            gatewayCrdProblem({ status: 200, body: crd({ frontend: false, bundle: "v1.2.1" }) }),
            "has Gateway API v1.2.1 (standard channel), whose Gateway has no spec.tls.frontend (client-certificate validation, new in v1.5.0)",
        );
        assert.match(
            gatewayCrdProblem({ status: 200, body: crd({ frontend: true, served: false }) })!,
            /CRDs of unknown version, which does not serve Gateway as gateway\.networking\.k8s\.io\/v1/,
        );
    });

    it("leaves what it cannot judge to the provider: no access, an unreachable server", () => {
        assert.equal(gatewayCrdProblem({ status: 403, body: {} }), undefined);
        assert.equal(gatewayCrdProblem({ unavailable: "connect ECONNREFUSED" }), undefined);
    });

    it("says which cluster and how to fix it", () => {
        const message = gatewayCrdMessage({ name: "cl2" }, 1, "has no Gateway API CRDs");
        assert.match(
            message,
            /^Observed cluster cl2 \(clusters\[1\], front door gateway-api\) has no Gateway API CRDs\. Install the Gateway API CRDs v1\.5\.0 or later, standard channel/,
        );
        assert.match(message, /releases\/download\/v1\.6\.1\/standard-install\.yaml .*clusters\[1\]\.frontDoor: ingress-nginx\.$/);
    });

    it("recommends the Gateway API release the tests install", () => {
        const goMod = fs.readFileSync(path.join(ROOT, "tools/envoy-gateway/go.mod"), "utf8");
        assert.equal(/sigs\.k8s\.io\/gateway-api (v\S+)/.exec(goMod)?.[1], GATEWAY_API_TESTED);
        assert.equal(GATEWAY_API_MINIMUM, "v1.5.0", "spec.tls.frontend is Gateway API v1.5.0's");
    });
});
