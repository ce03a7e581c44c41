import * as crypto from "node:crypto";
import type * as k8s from "@pulumi/kubernetes";
import type { Input } from "@pulumi/pulumi";
import type { EnvoyModel, Model, ObservedClusterModel } from "../config/model";
import { commonLabels, gatewaySelector, observerNames } from "../names";
import { BootstrapPaths, FILES, POD_PATHS } from "./bootstrap";

/**
 * Plain Kubernetes object specs for the observer side. No Pulumi engine needed: the gateway component
 * wires them to resources, tests inspect them directly.
 */

type DeploymentSpec = k8s.types.input.apps.v1.DeploymentSpec;
type ServiceSpec = k8s.types.input.core.v1.ServiceSpec;

/**
 * Envoy's image runs under any UID (its files are world-readable and it writes nowhere); one above 10000 shares
 * no ID with a host user, as scanners ask. The same number serves as GID and fsGroup for the Secret volume.
 */
const ENVOY_UID = 10101;
export const CHECKSUM_ANNOTATION = "envoy-thanos.io/checksum";
const METRICS_PORT_NAME = "metrics";

/**
 * A digest over everything the pods read at start: a change of config or certificates rolls them.
 * Public material only; keys change together with their certificates.
 */
export function podChecksum(files: Record<string, string>, publicPem: string[]): string {
    const hash = crypto.createHash("sha256");
    for (const name of Object.keys(files).sort()) {
        hash.update(name).update("\0").update(files[name]).update("\0");
    }
    for (const pem of publicPem) {
        hash.update(pem).update("\0");
    }
    return hash.digest("hex");
}

/** Envoy's command line in the pod; the end-to-end tests run Envoy with the same arguments. */
export function envoyArgs(logLevel: string, paths: BootstrapPaths = POD_PATHS): string[] {
    return [
        "--config-path",
        `${paths.configDir}/${FILES.bootstrap}`,
        "--log-level",
        logLevel,
        // Hot restart needs shared memory and a restart wrapper; Kubernetes rolls pods instead.
        "--disable-hot-restart",
    ];
}

export function labels(component: string): Record<string, string> {
    return { ...commonLabels, "app.kubernetes.io/component": component };
}

/** `checksum` may be unknown until the certificates exist; only the annotation waits for it. */
export function deploymentSpec(envoy: EnvoyModel, clusters: ObservedClusterModel[], checksum: Input<string>): DeploymentSpec {
    const probe = (initialDelaySeconds: number, periodSeconds: number) => ({
        httpGet: { path: "/ready", port: METRICS_PORT_NAME },
        initialDelaySeconds,
        periodSeconds,
        timeoutSeconds: 2,
        failureThreshold: 3,
    });
    return {
        replicas: envoy.replicas,
        selector: { matchLabels: { ...gatewaySelector } },
        // maxUnavailable 0: a rollout never lowers serving capacity below the configured replicas.
        strategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
        template: {
            metadata: {
                labels: { ...commonLabels, ...gatewaySelector },
                annotations: {
                    [CHECKSUM_ANNOTATION]: checksum,
                    "prometheus.io/scrape": "true",
                    "prometheus.io/port": String(envoy.metricsPort),
                    "prometheus.io/path": "/stats/prometheus",
                },
            },
            spec: {
                automountServiceAccountToken: false,
                securityContext: {
                    runAsNonRoot: true,
                    runAsUser: ENVOY_UID,
                    runAsGroup: ENVOY_UID,
                    fsGroup: ENVOY_UID,
                    seccompProfile: { type: "RuntimeDefault" },
                },
                affinity: {
                    podAntiAffinity: {
                        preferredDuringSchedulingIgnoredDuringExecution: [
                            {
                                weight: 100,
                                podAffinityTerm: { topologyKey: "kubernetes.io/hostname", labelSelector: { matchLabels: { ...gatewaySelector } } },
                            },
                        ],
                    },
                },
                containers: [
                    {
                        name: "envoy",
                        image: envoy.image,
                        args: envoyArgs(envoy.logLevel),
                        ports: [
                            ...clusters.map((c) => ({ name: c.portName, containerPort: c.port, protocol: "TCP" })),
                            { name: METRICS_PORT_NAME, containerPort: envoy.metricsPort, protocol: "TCP" },
                        ],
                        readinessProbe: probe(2, 5),
                        livenessProbe: probe(10, 10),
                        resources: envoy.resources,
                        securityContext: {
                            allowPrivilegeEscalation: false,
                            readOnlyRootFilesystem: true,
                            runAsNonRoot: true,
                            capabilities: { drop: ["ALL"] },
                        },
                        volumeMounts: [
                            { name: "config", mountPath: POD_PATHS.configDir, readOnly: true },
                            { name: "tls", mountPath: POD_PATHS.tlsDir, readOnly: true },
                        ],
                    },
                ],
                volumes: [
                    { name: "config", configMap: { name: observerNames.bootstrapConfigMap } },
                    // Group-readable for the envoy group only (fsGroup), not world-readable.
                    { name: "tls", secret: { secretName: observerNames.tlsSecret, defaultMode: 0o440 } },
                ],
            },
        },
    };
}

/** One Service per observed cluster; Service name = port name, which makes the querier's SRV record. */
export function clusterServiceSpec(c: ObservedClusterModel): ServiceSpec {
    return {
        type: "ClusterIP",
        selector: { ...gatewaySelector },
        ports: [{ name: c.portName, port: c.port, targetPort: c.port, protocol: "TCP", appProtocol: "kubernetes.io/h2c" }],
    };
}

export function metricsServiceSpec(envoy: EnvoyModel): ServiceSpec {
    return {
        type: "ClusterIP",
        selector: { ...gatewaySelector },
        ports: [{ name: METRICS_PORT_NAME, port: envoy.metricsPort, targetPort: envoy.metricsPort, protocol: "TCP" }],
    };
}

export function disruptionBudgetSpec(): k8s.types.input.policy.v1.PodDisruptionBudgetSpec {
    return { maxUnavailable: 1, selector: { matchLabels: { ...gatewaySelector } } };
}

/**
 * The only access control in front of Envoy's listeners, which accept plaintext h2c and present Envoy's client
 * certificate upstream. Ingress: the querier to the listener ports, the scraper to the metrics port. Egress: the
 * cluster DNS, and each observed cluster's address port (hostnames, so by port, not by IP).
 */
export function networkPolicySpec(model: Pick<Model, "envoy" | "clusters" | "networkPolicy">): k8s.types.input.networking.v1.NetworkPolicySpec {
    const { networkPolicy: np, envoy, clusters } = model;
    const peer = (pods: Record<string, string>, namespaces: Record<string, string>): k8s.types.input.networking.v1.NetworkPolicyPeer => ({
        podSelector: { matchLabels: pods },
        namespaceSelector: { matchLabels: namespaces },
    });
    const upstreamPorts = [...new Set(clusters.map((c) => c.address.port))].sort((a, b) => a - b);
    return {
        podSelector: { matchLabels: { ...gatewaySelector } },
        policyTypes: ["Ingress", "Egress"],
        ingress: [
            { from: [peer(np.querierPodSelector, np.querierNamespaceSelector)], ports: clusters.map((c) => ({ port: c.port, protocol: "TCP" })) },
            { from: [peer(np.scraperPodSelector, np.scraperNamespaceSelector)], ports: [{ port: envoy.metricsPort, protocol: "TCP" }] },
        ],
        egress: [
            {
                to: [peer(np.dnsPodSelector, np.dnsNamespaceSelector)],
                ports: [
                    { port: 53, protocol: "UDP" },
                    { port: 53, protocol: "TCP" },
                ],
            },
            { ports: upstreamPorts.map((port) => ({ port, protocol: "TCP" })) },
        ],
    };
}

/** prometheus-operator's ServiceMonitor (monitoring.coreos.com/v1) for the metrics Service: Envoy's `/stats/prometheus`. */
export function serviceMonitorSpec(namespace: string, interval: string) {
    return {
        selector: { matchLabels: labels("metrics") },
        namespaceSelector: { matchNames: [namespace] },
        endpoints: [{ port: METRICS_PORT_NAME, path: "/stats/prometheus", interval }],
    };
}
