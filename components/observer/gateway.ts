import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import type { Model } from "../config/model";
import { observerNames } from "../names";
import { TLS_KEYS, renderEnvoyFiles } from "./bootstrap";
import { clusterServiceSpec, deploymentSpec, disruptionBudgetSpec, labels, metricsServiceSpec, networkPolicySpec, podChecksum } from "./manifests";

export interface ObserverGatewayArgs {
    model: Pick<Model, "observer" | "envoy" | "clusters" | "networkPolicy">;
    /** Provider of the observer cluster; every child uses it. */
    provider: k8s.Provider;
    /** Envoy's client certificate (public) and key (secret). */
    clientCertificate: pulumi.Input<string>;
    clientPrivateKey: pulumi.Input<string>;
    /** CA certificate(s) Envoy trusts for the remote servers. */
    caCertificate: pulumi.Input<string>;
}

/** Envoy on the observer cluster: one listener and one ClusterIP Service per observed cluster. */
export class ObserverGateway extends pulumi.ComponentResource {
    public readonly namespace: string;
    /** Service name per observed cluster name. */
    public readonly serviceNames: Record<string, pulumi.Output<string>>;

    constructor(name: string, args: ObserverGatewayArgs, opts?: pulumi.ComponentResourceOptions) {
        super("envoy-thanos:observer:ObserverGateway", name, {}, opts);
        const { model, provider } = args;
        const namespace = model.observer.namespace;
        // Children are named `<component>-<role>`; the alias keeps the state of stacks created when they were named `<role>`.
        const child = (role: string, dependsOn: pulumi.Resource[] = []): pulumi.CustomResourceOptions => ({
            parent: this,
            provider,
            dependsOn,
            aliases: [{ name: role }],
        });
        const meta = (objectName: string, component: string) => ({ name: objectName, namespace, labels: labels(component) });

        const namespaceDeps: pulumi.Resource[] = [];
        if (model.observer.createNamespace) {
            // Retained on destroy (and when createNamespace flips): deleting a namespace deletes whatever else lives in it.
            namespaceDeps.push(
                new k8s.core.v1.Namespace(
                    `${name}-namespace`,
                    { metadata: { name: namespace, labels: labels("namespace") } },
                    { ...child("namespace"), retainOnDelete: true },
                ),
            );
        }

        const files = renderEnvoyFiles({ envoy: model.envoy, clusters: model.clusters });
        const configMap = new k8s.core.v1.ConfigMap(
            `${name}-bootstrap`,
            { metadata: meta(observerNames.bootstrapConfigMap, "gateway"), data: files },
            child("bootstrap", namespaceDeps),
        );
        const tlsSecret = new k8s.core.v1.Secret(
            `${name}-client-tls`,
            {
                metadata: meta(observerNames.tlsSecret, "gateway"),
                type: "kubernetes.io/tls",
                stringData: {
                    [TLS_KEYS.certificate]: args.clientCertificate,
                    [TLS_KEYS.privateKey]: pulumi.secret(args.clientPrivateKey),
                    [TLS_KEYS.ca]: args.caCertificate,
                },
            },
            child("client-tls", namespaceDeps),
        );
        // Certificates are not in the checksum: Envoy reloads the Secret's files itself (SDS).
        new k8s.apps.v1.Deployment(
            `${name}-envoy`,
            {
                metadata: meta(observerNames.deployment, "gateway"),
                spec: deploymentSpec(model.envoy, podChecksum(files)),
            },
            child("envoy", [configMap, tlsSecret]),
        );
        new k8s.policy.v1.PodDisruptionBudget(
            `${name}-envoy`,
            { metadata: meta(observerNames.disruptionBudget, "gateway"), spec: disruptionBudgetSpec() },
            child("envoy", namespaceDeps),
        );
        this.serviceNames = {};
        for (const c of model.clusters) {
            const service = new k8s.core.v1.Service(
                `${name}-service-${c.name}`,
                { metadata: meta(c.serviceName, "gateway"), spec: clusterServiceSpec(c) },
                { ...child(`service-${c.name}`, namespaceDeps), ...(model.observer.adoptServices ? adoptionOptions(namespace, c.serviceName) : keepClusterIp) },
            );
            this.serviceNames[c.name] = service.metadata.name;
        }
        new k8s.core.v1.Service(
            `${name}-metrics`,
            { metadata: meta(observerNames.metricsService, "metrics"), spec: metricsServiceSpec(model.envoy) },
            child("metrics", namespaceDeps),
        );
        if (model.networkPolicy.enabled) {
            new k8s.networking.v1.NetworkPolicy(
                `${name}-envoy`,
                { metadata: meta(observerNames.networkPolicy, "gateway"), spec: networkPolicySpec(model) },
                child("envoy", namespaceDeps),
            );
        }
        this.namespace = namespace;
        this.registerOutputs({ serviceNames: this.serviceNames });
    }
}

/**
 * The running Service is imported as it is: same object, same ClusterIP, still selecting the recipe's Envoy. Its
 * labels and spec differ from the program's, which an import refuses unless they are ignored; the next `up` without
 * `observer.adoptServices` updates them in place, once this `up` has waited for the program's Envoy to be ready.
 */
function adoptionOptions(namespace: string, serviceName: string): pulumi.CustomResourceOptions {
    return { import: `${namespace}/${serviceName}`, ignoreChanges: ["metadata.labels", "metadata.annotations", "spec"] };
}

/**
 * The program never sets a ClusterIP, but an imported Service's state holds the live one, and the provider replaces
 * a Service whose `spec.clusterIP` changes: without this, the `up` after the import would drop it and replace the
 * Service under the querier. On a Service the program created, there is nothing to keep.
 */
const keepClusterIp: pulumi.CustomResourceOptions = { ignoreChanges: ["spec.clusterIP"] };
