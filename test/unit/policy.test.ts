import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as YAML from "yaml";
import { FILES } from "../../components/observer/bootstrap";
import { adminAddressViolations, routeTimeoutViolations, upstreamTlsViolations } from "../../policy/rules/envoy";
import {
    configMapPrivateKeyViolations,
    gatewayMtlsViolations,
    grpcIngressAnnotationViolations,
    grpcIngressMtlsViolations,
    imagePinViolations,
    nonRootViolations,
    resourceLimitViolations,
} from "../../policy/rules/kubernetes";
import { devStackConfig, plain, RecordedResource, runProgram } from "./harness";

/**
 * The policy pack's rules on the resources the program registers under Pulumi's mocks (the offline
 * engine's language host is too old to run a policy pack, so `pulumi preview --policy-pack` cannot run here).
 */

function violations(resource: RecordedResource): string[] {
    const props = plain(resource.inputs);
    switch (resource.type) {
        case "kubernetes:core/v1:ConfigMap":
            return [
                ...upstreamTlsViolations(props),
                ...routeTimeoutViolations(props),
                ...adminAddressViolations(props),
                ...configMapPrivateKeyViolations(props),
            ];
        case "kubernetes:networking.k8s.io/v1:Ingress":
            return [...grpcIngressMtlsViolations(props), ...grpcIngressAnnotationViolations(props)];
        case "kubernetes:gateway.networking.k8s.io/v1:Gateway":
            return gatewayMtlsViolations(props);
        case "kubernetes:apps/v1:Deployment": {
            const pod = props.spec.template.spec;
            return [...resourceLimitViolations(pod), ...nonRootViolations(pod), ...imagePinViolations(pod)];
        }
        default:
            return [];
    }
}

describe("policy pack on the program's resources", () => {
    it("passes every resource of the dev stack", async () => {
        const result = await runProgram(devStackConfig());
        const checked = result.resources.filter((r) => ["ConfigMap", "Ingress", "Gateway", "Deployment"].some((k) => r.type.endsWith(`:${k}`)));
        assert.equal(checked.length, 5, "the bootstrap and cl2's CA ConfigMap, cl1's Ingress, cl2's Gateway, one Deployment");
        for (const r of checked) assert.deepEqual(violations(r), [], `${r.type} ${r.name}`);
    });

    it("passes every resource of the dev stack with every monitoring object on (the dashboard ConfigMap too)", async () => {
        const on = { enabled: true };
        const result = await runProgram({ ...devStackConfig(), monitoring: { prometheusRule: on, serviceMonitor: on, dashboard: on } });
        assert.equal(result.error, undefined, result.error?.message);
        const configMaps = result.resources.filter((r) => r.type === "kubernetes:core/v1:ConfigMap");
        assert.deepEqual(configMaps.map((r) => r.name).sort(), ["cluster-cl2-gateway-api-client-ca", "monitoring-dashboard", "observer-bootstrap"]);
        for (const r of result.resources) assert.deepEqual(violations(r), [], `${r.type} ${r.name}`);
    });

    it("rejects the same resources once a protection is removed", async () => {
        const result = await runProgram(devStackConfig());
        const configMap = result.resources.find((r) => r.type === "kubernetes:core/v1:ConfigMap" && r.name === "observer-bootstrap")!;
        const cds = YAML.parse(configMap.inputs.data[FILES.clusters]);
        for (const c of cds.resources) {
            delete c.transport_socket.typed_config.common_tls_context.combined_validation_context.default_validation_context;
        }
        const broken = { ...configMap, inputs: { ...configMap.inputs, data: { ...configMap.inputs.data, [FILES.clusters]: YAML.stringify(cds) } } };
        assert.ok(violations(broken).length >= 2, "one violation per cluster without SAN matching");
        const ingress = result.resources.find((r) => r.type === "kubernetes:networking.k8s.io/v1:Ingress")!;
        const annotations = { ...ingress.inputs.metadata.annotations };
        delete annotations["nginx.ingress.kubernetes.io/auth-tls-verify-client"];
        assert.equal(violations({ ...ingress, inputs: { ...ingress.inputs, metadata: { ...ingress.inputs.metadata, annotations } } }).length, 1);
        const snippet = { ...ingress.inputs.metadata.annotations, "nginx.ingress.kubernetes.io/server-snippet": "ssl_verify_client off;" };
        assert.equal(violations({ ...ingress, inputs: { ...ingress.inputs, metadata: { ...ingress.inputs.metadata, annotations: snippet } } }).length, 1);
        const gateway = result.resources.find((r) => r.type === "kubernetes:gateway.networking.k8s.io/v1:Gateway")!;
        const withoutValidation = { ...gateway.inputs.spec, tls: undefined };
        assert.equal(violations({ ...gateway, inputs: { ...gateway.inputs, spec: withoutValidation } }).length, 1);
    });
});
