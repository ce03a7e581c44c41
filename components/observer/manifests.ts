import * as crypto from "node:crypto";
import type * as k8s from "@pulumi/kubernetes";
import type { EnvoyModel, Model, ObservedClusterModel } from "../config/model";
import { commonLabels, gatewaySelector, METRICS_PORT_NAME, observerNames } from "../names";
import { BootstrapPaths, FILES, HEALTH_PATHS, POD_PATHS } from "./bootstrap";

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

/**
 * The ConfigMap files Envoy reads only at start. Listeners, clusters and certificates are watched files that
 * Envoy re-reads when kubelet updates the volumes, so they stay out of the checksum: adding or removing a
 * cluster or renewing a certificate must not restart Envoy and cut every stream in flight.
 */
export const FILES_READ_AT_START: readonly string[] = [FILES.bootstrap];

/** A digest over the files Envoy reads only at start: a change to them rolls the pods. */
export function podChecksum(files: Record<string, string>): string {
    const hash = crypto.createHash("sha256");
    for (const name of FILES_READ_AT_START) {
        hash.update(name)
            .update("\0")
            .update(files[name] ?? "")
            .update("\0");
    }
    return hash.digest("hex");
}

/** Envoy's command line in the pod; the end-to-end tests run Envoy with the same arguments. */
export function envoyArgs(envoy: Pick<EnvoyModel, "logLevel" | "concurrency" | "drainSeconds">, paths: BootstrapPaths = POD_PATHS): string[] {
    return [
        "--config-path",
        `${paths.configDir}/${FILES.bootstrap}`,
        "--log-level",
        envoy.logLevel,
        // One worker per CPU of the limit: Envoy's default is one per CPU of the node, each with its own upstream connections.
        "--concurrency",
        String(envoy.concurrency),
        // A listener that LDS changes or removes, and a stopping pod, give streams this long before closing them.
        "--drain-time-s",
        String(envoy.drainSeconds),
        // Tell every client to move on at once (HTTP/2 GOAWAY); their streams in flight continue.
        "--drain-strategy",
        "immediate",
        // Hot restart needs shared memory and a restart wrapper; Kubernetes rolls pods instead.
        "--disable-hot-restart",
    ];
}

/** Time for the endpoint controller and kube-proxy to stop sending new connections to a stopping pod. */
export const ENDPOINT_REMOVAL_SECONDS = 5;
/** Time Envoy needs to exit after SIGTERM once its streams are done. */
const EXIT_SECONDS = 10;

/**
 * The preStop hook, as argv: fail readiness, stop accepting once the Service no longer sends new connections,
 * then wait until no stream to an observed cluster is left (at most `drainSeconds`); kubelet sends SIGTERM after.
 * The Envoy image has bash but no curl, so bash's /dev/tcp speaks HTTP/1.1 to the loopback admin interface.
 */
export function preStopCommand(envoy: Pick<EnvoyModel, "adminPort" | "drainSeconds">): string[] {
    const script = [
        `admin() { exec 3<>/dev/tcp/127.0.0.1/${envoy.adminPort} || return 1; printf '%s %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n' "$1" "$2" >&3; cat <&3; exec 3<&-; }`,
        "admin POST /healthcheck/fail >/dev/null",
        `sleep ${ENDPOINT_REMOVAL_SECONDS}`,
        "admin POST '/drain_listeners?graceful&skip_exit' >/dev/null",
        // Streams in flight on the observed clusters' listeners (stat prefix thanos_<name>).
        "active() { admin GET '/stats?filter=downstream_rq_active' | { n=0; while read -r name value; do case $name in http.thanos_*) n=$((n + value));; esac; done; echo $n; }; }",
        `for _ in $(seq ${envoy.drainSeconds}); do [ "$(active)" = 0 ] && exit 0; sleep 1; done`,
    ];
    return ["/bin/bash", "-c", script.join("\n")];
}

/** The pod's grace period: the preStop hook's longest run, then Envoy's exit. */
export function terminationGracePeriodSeconds(envoy: Pick<EnvoyModel, "drainSeconds">): number {
    return ENDPOINT_REMOVAL_SECONDS + envoy.drainSeconds + EXIT_SECONDS;
}

export function labels(component: string): Record<string, string> {
    return { ...commonLabels, "app.kubernetes.io/component": component };
}

/**
 * The pod template holds nothing per observed cluster (no container port per listener): adding or removing a
 * cluster changes only the ConfigMap, which Envoy reloads, never the template.
 */
export function deploymentSpec(envoy: EnvoyModel, checksum: string): DeploymentSpec {
    const probe = (path: string, initialDelaySeconds: number, periodSeconds: number) => ({
        httpGet: { path, port: METRICS_PORT_NAME },
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
                terminationGracePeriodSeconds: terminationGracePeriodSeconds(envoy),
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
                        args: envoyArgs(envoy),
                        ports: [{ name: METRICS_PORT_NAME, containerPort: envoy.metricsPort, protocol: "TCP" }],
                        // Readiness goes through the admin interface and turns 503 once the pod drains; liveness is
                        // answered by a worker alone, so a draining or busy Envoy is not killed.
                        readinessProbe: probe(HEALTH_PATHS.ready, 2, 5),
                        livenessProbe: probe(HEALTH_PATHS.live, 10, 10),
                        lifecycle: { preStop: { exec: { command: preStopCommand(envoy) } } },
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
