import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import type { ObservedClusterModel } from "../config/model";
import { commonLabels, observedNames } from "../names";
import { GatewayApiFrontDoor } from "./gateway-api-front-door";
import { ingressAnnotations, ingressSpec } from "./ingress";

export interface ObservedClusterArgs {
    cluster: ObservedClusterModel;
    /** Provider of this observed cluster; every child uses it. */
    provider: k8s.Provider;
    /** The server certificate the front door presents for `cluster.host` (public) and its key (secret). */
    serverCertificate: pulumi.Input<string>;
    serverPrivateKey: pulumi.Input<string>;
    /** CA certificate(s) that verify Envoy's client certificate. */
    clientCaCertificate: pulumi.Input<string>;
    /** See `AnnotationInput.verifyDepth`. */
    verifyDepth: number;
    /** See `AnnotationInput.clientIdentity`. */
    clientIdentity: string;
}

/**
 * One observed cluster: the server TLS Secret and the mTLS front door in front of its Thanos sidecar, either an
 * ingress-nginx Ingress (with the client CA as a Secret) or a Gateway API front door (GatewayApiFrontDoor).
 */
export class ObservedCluster extends pulumi.ComponentResource {
    /** Name of the Ingress or the Gateway. */
    public readonly frontDoorName: pulumi.Output<string>;

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
        if (cluster.frontDoor === "gateway-api") {
            const frontDoor = new GatewayApiFrontDoor(
                `${name}-gateway-api`,
                { cluster, provider, clientCaCertificate: args.clientCaCertificate, serverTls },
                { parent: this, providers: [provider] },
            );
            this.frontDoorName = frontDoor.gatewayName;
        } else {
            const clientCa = new k8s.core.v1.Secret(
                `${name}-client-ca`,
                { metadata: meta(names.clientCaSecret), type: "Opaque", stringData: { "ca.crt": args.clientCaCertificate } },
                child,
            );
            const ingress = new k8s.networking.v1.Ingress(
                `${name}-ingress`,
                {
                    metadata: {
                        ...meta(names.ingress),
                        annotations: ingressAnnotations({ cluster, verifyDepth: args.verifyDepth, clientIdentity: args.clientIdentity }),
                    },
                    spec: ingressSpec(cluster),
                },
                { ...child, dependsOn: [serverTls, clientCa] },
            );
            this.frontDoorName = ingress.metadata.name;
        }
        this.registerOutputs({ frontDoorName: this.frontDoorName });
    }
}
