import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import type { ObservedClusterModel } from "../config/model";
import { commonLabels, observedNames } from "../names";
import { ingressAnnotations, ingressSpec } from "./ingress";

export interface ObservedClusterArgs {
    cluster: ObservedClusterModel;
    /** Provider of this observed cluster; every child uses it. */
    provider: k8s.Provider;
    /** The server certificate the ingress presents for `cluster.host` (public) and its key (secret). */
    serverCertificate: pulumi.Input<string>;
    serverPrivateKey: pulumi.Input<string>;
    /** CA certificate(s) that verify Envoy's client certificate. */
    clientCaCertificate: pulumi.Input<string>;
    /** See `AnnotationInput.verifyDepth`. */
    verifyDepth: number;
}

/** One observed cluster: the TLS Secrets and the mTLS Ingress in front of its Thanos sidecar. */
export class ObservedCluster extends pulumi.ComponentResource {
    public readonly ingressName: pulumi.Output<string>;

    constructor(name: string, args: ObservedClusterArgs, opts?: pulumi.ComponentResourceOptions) {
        super("envoy-thanos:observed:ObservedCluster", name, {}, opts);
        const { cluster, provider } = args;
        const names = observedNames(cluster.name);
        const meta = (objectName: string) => ({
            name: objectName,
            namespace: cluster.sidecar.namespace,
            labels: { ...commonLabels, "app.kubernetes.io/component": "observed" },
        });
        const child: pulumi.CustomResourceOptions = { parent: this, provider };

        const serverTls = new k8s.core.v1.Secret(
            `${name}-server-tls`,
            {
                metadata: meta(names.serverTlsSecret),
                type: "kubernetes.io/tls",
                stringData: { "tls.crt": args.serverCertificate, "tls.key": pulumi.secret(args.serverPrivateKey) },
            },
            child,
        );
        const clientCa = new k8s.core.v1.Secret(
            `${name}-client-ca`,
            { metadata: meta(names.clientCaSecret), type: "Opaque", stringData: { "ca.crt": args.clientCaCertificate } },
            child,
        );
        const ingress = new k8s.networking.v1.Ingress(
            `${name}-ingress`,
            {
                metadata: { ...meta(names.ingress), annotations: ingressAnnotations({ cluster, verifyDepth: args.verifyDepth }) },
                spec: ingressSpec(cluster),
            },
            { ...child, dependsOn: [serverTls, clientCa] },
        );
        this.ingressName = ingress.metadata.name;
        this.registerOutputs({ ingressName: this.ingressName });
    }
}
