import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { ConfigError } from "./config/errors";
import { buildModel, Model } from "./config/model";
import { rawConfigFromRuntime } from "./config/sources";
import { kubeGet } from "./kube-api";
import { ObservedCluster } from "./observed/cluster";
import { GATEWAY_CRD_PATH, gatewayCrdMessage, gatewayCrdProblem } from "./observed/gateway-api-crds";
import { ObserverGateway } from "./observer/gateway";
import { ObserverMonitoring } from "./observer/monitoring";
import { nativeQuerierMounts } from "./observer/native";
import { NativeQuerierAccess } from "./observer/native-access";
import { clusterSummaries, ClusterSummary, endpointSdFile, querierFlags } from "./outputs";
import { Pki } from "./pki/pki";
import { providerArgs } from "./providers";

/**
 * Reads and validates the stack configuration before any resource is registered.
 * A user error becomes a RunError: Pulumi prints its message without a stack trace.
 */
export function loadModel(now: Date = new Date()): Model {
    try {
        return buildModel(rawConfigFromRuntime(pulumi.runtime.allConfig()), { checkSecretMaterial: true, now });
    } catch (err) {
        if (err instanceof ConfigError) {
            throw new pulumi.RunError(err.message);
        }
        throw err;
    }
}

/**
 * The Gateway API CRD problems of the gateway-api clusters, read through each cluster's connection (none in render
 * mode, where no cluster is contacted); one message per cluster.
 */
export async function gatewayApiCrdProblems(model: Model): Promise<string[]> {
    if (model.renderDirectory !== undefined) return [];
    const checks = model.clusters.map(async (cluster, index) => {
        if (cluster.frontDoor !== "gateway-api") return [];
        const result = await kubeGet(cluster.connection, GATEWAY_CRD_PATH);
        if ("unavailable" in result) {
            void pulumi.log.debug(`Gateway API CRDs of cluster ${cluster.name} not checked (${result.unavailable}); the provider reports what is missing`);
        }
        const problem = gatewayCrdProblem(result);
        return problem === undefined ? [] : [gatewayCrdMessage(cluster, index, problem)];
    });
    return (await Promise.all(checks)).flat();
}

/** The program: the configuration, then the clusters' Gateway API CRDs, are checked before any resource is registered. */
export async function main(): Promise<ProgramOutputs> {
    const model = loadModel();
    const problems = await gatewayApiCrdProblems(model);
    if (problems.length > 0) {
        throw new pulumi.RunError(problems.join("\n"));
    }
    return deploy(model);
}

export interface ProgramOutputs {
    /** `--endpoint=dnssrv+...` per observed cluster in config order (envoy mode), or the endpoint config file flag (native). */
    querierFlags: string[];
    /** Body of the file for `thanos query --endpoint.sd-config-file`. */
    endpointSdFile: string;
    /** Native mode: the volumes and mounts the querier's pod needs; null in envoy mode (an undefined output warns). */
    querierMounts: ReturnType<typeof nativeQuerierMounts> | null;
    clusters: ClusterSummary[];
    /** Public CA certificate that signs the server and client certificates. */
    caCertificate: pulumi.Output<string>;
    /** Envoy's client certificate and key, so that `npm run status` checks each cluster as Envoy does. The key is a secret (Pki). */
    clientCertificate: pulumi.Output<string>;
    clientPrivateKey: pulumi.Output<string>;
    renderDirectory?: string;
}

/** Declares everything for a validated model: providers, PKI, the observer gateway, each observed cluster. */
export function deploy(model: Model): ProgramOutputs {
    for (const warning of model.warnings) {
        void pulumi.log.warn(warning);
    }
    if (model.renderDirectory !== undefined) {
        void pulumi.log.warn(
            `Render mode: manifests are written under ${model.renderDirectory}/ instead of applied. ` +
                "Rendered Secrets contain private keys in plaintext; do not commit that directory.",
        );
    }
    if (model.observer.mode === "envoy" && !model.networkPolicy.enabled && model.renderDirectory === undefined) {
        void pulumi.log.warn(
            "networkPolicy.enabled is false: any pod in the observer cluster can use Envoy's listeners, which present Envoy's " +
                "client certificate to every observed cluster. Keep it on unless another control restricts who reaches Envoy.",
        );
    }
    const observerProvider = new k8s.Provider("observer", providerArgs(model.observer.connection, model.renderDirectory, "observer"));
    const pki = new Pki("pki", { tls: model.tls, clusters: model.clusters });
    const client = { clientCertificate: pki.client.certificate, clientPrivateKey: pki.client.privateKey, caCertificate: pki.caCertificate };
    if (model.observer.mode === "native") {
        new NativeQuerierAccess("querier-access", {
            namespace: model.observer.namespace,
            createNamespace: model.observer.createNamespace,
            clusters: model.clusters,
            provider: observerProvider,
            ...client,
        });
    } else {
        const gateway = new ObserverGateway("observer", { model, provider: observerProvider, ...client });
        const { prometheusRule, serviceMonitor, dashboard } = model.monitoring;
        if (prometheusRule.enabled || serviceMonitor.enabled || dashboard.enabled) {
            new ObserverMonitoring("monitoring", { model, provider: observerProvider, dependsOn: [gateway] });
        }
    }
    // One CA level for the generated CA; provided chains may carry one intermediate.
    const verifyDepth = model.tls.mode === "generate" ? 1 : 2;
    for (const cluster of model.clusters) {
        const provider = new k8s.Provider(`observed-${cluster.name}`, providerArgs(cluster.connection, model.renderDirectory, cluster.name));
        const server = pki.servers[cluster.name];
        new ObservedCluster(`cluster-${cluster.name}`, {
            cluster,
            provider,
            serverCertificate: server.certificate,
            serverPrivateKey: server.privateKey,
            clientCaCertificate: pki.clientCaCertificate,
            verifyDepth,
            clientIdentity: model.clientIdentity,
        });
    }
    return {
        querierFlags: querierFlags(model),
        endpointSdFile: endpointSdFile(model),
        clusters: clusterSummaries(model),
        querierMounts: model.observer.mode === "native" ? nativeQuerierMounts() : null,
        caCertificate: pki.caCertificate,
        clientCertificate: pki.client.certificate,
        clientPrivateKey: pki.client.privateKey,
        renderDirectory: model.renderDirectory,
    };
}
