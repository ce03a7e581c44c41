import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import type { ObservedClusterModel } from "../config/model";
import { commonLabels, observerNames } from "../names";
import { TLS_KEYS } from "./bootstrap";
import { NATIVE_MOUNTS, nativeEndpointSdFile } from "./native";

export interface NativeQuerierAccessArgs {
    /** The querier's namespace: a pod mounts only Secrets and ConfigMaps of its own namespace. */
    namespace: string;
    createNamespace: boolean;
    clusters: Pick<ObservedClusterModel, "host" | "address">[];
    /** Provider of the observer cluster; every child uses it. */
    provider: k8s.Provider;
    /** The client certificate the querier presents (public) and its key (secret). */
    clientCertificate: pulumi.Input<string>;
    clientPrivateKey: pulumi.Input<string>;
    /** CA certificate(s) the querier trusts for the front doors. */
    caCertificate: pulumi.Input<string>;
}

/**
 * `observer.mode: native`: what the Thanos querier mounts to reach every observed cluster itself, with no Envoy:
 * a TLS Secret (client certificate, key, CA bundle) and a ConfigMap with the per-endpoint TLS endpoint config.
 */
export class NativeQuerierAccess extends pulumi.ComponentResource {
    public readonly secretName: pulumi.Output<string>;
    public readonly endpointsConfigMapName: pulumi.Output<string>;

    constructor(name: string, args: NativeQuerierAccessArgs, opts?: pulumi.ComponentResourceOptions) {
        super("envoy-thanos:observer:NativeQuerierAccess", name, {}, opts);
        const child = (dependsOn: pulumi.Resource[]): pulumi.CustomResourceOptions => ({ parent: this, provider: args.provider, dependsOn });
        const metadata = (objectName: string) => ({
            name: objectName,
            namespace: args.namespace,
            labels: { ...commonLabels, "app.kubernetes.io/component": "querier-access" },
        });
        const namespaceDeps: pulumi.Resource[] = [];
        if (args.createNamespace) {
            // Retained on destroy: the querier's namespace holds the querier itself.
            namespaceDeps.push(
                new k8s.core.v1.Namespace(
                    `${name}-namespace`,
                    { metadata: { name: args.namespace, labels: commonLabels } },
                    { ...child([]), retainOnDelete: true },
                ),
            );
        }
        const tls = new k8s.core.v1.Secret(
            `${name}-tls`,
            {
                metadata: metadata(observerNames.querierTlsSecret),
                type: "kubernetes.io/tls",
                stringData: {
                    [TLS_KEYS.certificate]: args.clientCertificate,
                    [TLS_KEYS.privateKey]: pulumi.secret(args.clientPrivateKey),
                    [TLS_KEYS.ca]: args.caCertificate,
                },
            },
            child(namespaceDeps),
        );
        const endpoints = new k8s.core.v1.ConfigMap(
            `${name}-endpoints`,
            {
                metadata: metadata(observerNames.querierEndpointsConfigMap),
                data: { [NATIVE_MOUNTS.endpointsFile]: nativeEndpointSdFile(args.clusters) },
            },
            child(namespaceDeps),
        );
        this.secretName = tls.metadata.name;
        this.endpointsConfigMapName = endpoints.metadata.name;
        this.registerOutputs({ secretName: this.secretName, endpointsConfigMapName: this.endpointsConfigMapName });
    }
}
