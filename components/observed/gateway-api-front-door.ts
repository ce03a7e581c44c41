import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import type { ObservedClusterModel } from "../config/model";
import { commonLabels, observedNames } from "../names";
import {
    backendTrafficPolicySpec,
    clientCaData,
    clientTrafficPolicySpec,
    ENVOY_GATEWAY_VERSION,
    GATEWAY_API_VERSION,
    gatewaySpec,
    grpcRouteSpec,
    REFERENCE_GRANT_VERSION,
    referenceGrantSpec,
    WAIT_FOR_ANNOTATION,
    waitFor,
} from "./gateway-api";

export interface GatewayApiFrontDoorArgs {
    /** A cluster whose front door is gateway-api. */
    cluster: ObservedClusterModel;
    /** Provider of this observed cluster; every child uses it. */
    provider: k8s.Provider;
    /** CA certificate(s) that verify Envoy's client certificate; go into a ConfigMap (`ca.crt`), since they are public. */
    clientCaCertificate: pulumi.Input<string>;
    /** The server certificate Secret (created by the parent), which the Gateway's listener presents. */
    serverTls: k8s.core.v1.Secret;
}

/**
 * The Gateway API front door of one observed cluster: CA ConfigMap, Gateway and GRPCRoute in the sidecar's
 * namespace, plus Envoy Gateway's BackendTrafficPolicy and ClientTrafficPolicy when the implementation is Envoy
 * Gateway. `pulumi up` waits until the Gateway is Programmed, the route Accepted with ResolvedRefs and the policies
 * Accepted (see `waitFor`). With `gatewayApi.existingGateway` the route attaches to that Gateway's listener instead:
 * no Gateway and no ClientTrafficPolicy (a policy lives in its target's namespace, the platform team's), and a
 * ReferenceGrant when that Gateway is in another namespace.
 */
export class GatewayApiFrontDoor extends pulumi.ComponentResource {
    /** The Gateway the route attaches to: the program's own (its name), or the platform team's (`namespace/name`). */
    public readonly gatewayName: pulumi.Output<string>;

    constructor(name: string, args: GatewayApiFrontDoorArgs, opts?: pulumi.ComponentResourceOptions) {
        super("envoy-thanos:observed:GatewayApiFrontDoor", name, {}, opts);
        const { cluster, provider } = args;
        const names = observedNames(cluster.name);
        const meta = (objectName: string, kind?: Parameters<typeof waitFor>[0]) => ({
            name: objectName,
            namespace: cluster.sidecar.namespace,
            labels: { ...commonLabels, "app.kubernetes.io/component": "observed" },
            ...(kind === undefined ? {} : { annotations: { [WAIT_FOR_ANNOTATION]: waitFor(kind) } }),
        });
        const child: pulumi.CustomResourceOptions = { parent: this, provider };

        const clientCa = new k8s.core.v1.ConfigMap(
            `${name}-client-ca`,
            { metadata: meta(names.clientCaConfigMap), data: pulumi.output(args.clientCaCertificate).apply(clientCaData) },
            child,
        );
        const existing = cluster.gatewayApi.existingGateway;
        let gateway: k8s.apiextensions.CustomResource | undefined;
        if (existing === undefined) {
            gateway = new k8s.apiextensions.CustomResource(
                `${name}-gateway`,
                { apiVersion: GATEWAY_API_VERSION, kind: "Gateway", metadata: meta(names.gateway, "Gateway"), spec: gatewaySpec(cluster) },
                { ...child, dependsOn: [args.serverTls, clientCa] },
            );
            this.gatewayName = gateway.metadata.name;
        } else {
            this.gatewayName = pulumi.output(`${existing.namespace}/${existing.name}`);
        }
        const grant = referenceGrantSpec(cluster);
        const referenceGrant =
            grant === undefined
                ? undefined
                : new k8s.apiextensions.CustomResource(
                      `${name}-reference-grant`,
                      { apiVersion: REFERENCE_GRANT_VERSION, kind: "ReferenceGrant", metadata: meta(names.referenceGrant), spec: grant },
                      child,
                  );
        // The route is ready (Accepted, ResolvedRefs) only once its listener can use the certificate and the CA.
        const routeDependsOn = gateway !== undefined ? [gateway] : [args.serverTls, clientCa, ...(referenceGrant === undefined ? [] : [referenceGrant])];
        const route = new k8s.apiextensions.CustomResource(
            `${name}-route`,
            { apiVersion: GATEWAY_API_VERSION, kind: "GRPCRoute", metadata: meta(names.route, "GRPCRoute"), spec: grpcRouteSpec(cluster) },
            { ...child, dependsOn: routeDependsOn },
        );
        if (cluster.gatewayApi.implementation === "envoy-gateway") {
            new k8s.apiextensions.CustomResource(
                `${name}-backend-traffic`,
                {
                    apiVersion: ENVOY_GATEWAY_VERSION,
                    kind: "BackendTrafficPolicy",
                    metadata: meta(names.backendTrafficPolicy, "Policy"),
                    spec: backendTrafficPolicySpec(cluster),
                },
                { ...child, dependsOn: [route] },
            );
        }
        if (cluster.gatewayApi.implementation === "envoy-gateway" && gateway !== undefined) {
            new k8s.apiextensions.CustomResource(
                `${name}-client-traffic`,
                {
                    apiVersion: ENVOY_GATEWAY_VERSION,
                    kind: "ClientTrafficPolicy",
                    metadata: meta(names.clientTrafficPolicy, "Policy"),
                    spec: clientTrafficPolicySpec(cluster),
                },
                { ...child, dependsOn: [gateway] },
            );
        }

        this.registerOutputs({ gatewayName: this.gatewayName });
    }
}
