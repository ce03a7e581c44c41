import { defaults } from "../defaults";
import { ConfigProblem } from "../errors";
import { StackConfigInput } from "../schema";
import type { ObservedClusterModel } from "./clusters";

/** `envoy`: the program deploys Envoy, which does the mTLS; `native`: the querier does it (Thanos >= v0.42). */
export type ObserverMode = "envoy" | "native";

/** What `observer.mode: native` cannot do: everything that configures the Envoy it does not deploy, and old queriers. */
export function checkNative(input: StackConfigInput, problems: ConfigProblem[]): void {
    const switchBack = "or set observer.mode: envoy";
    if (input.observer?.namespace === undefined) {
        problems.push({
            key: "observer.namespace",
            message: "is required with observer.mode: native: set it to the querier's namespace, since a pod can mount only Secrets of its own namespace",
        });
    }
    const version = input.observer?.querierVersion;
    if (version !== undefined) {
        const [major, minor] = version.replace(/^v/, "").split(".").map(Number);
        const [minMajor, minMinor] = defaults.nativeMinimumQuerierVersion;
        if (major < minMajor || (major === minMajor && minor < minMinor)) {
            problems.push({
                key: "observer.querierVersion",
                message: `(${version}) is older than v${minMajor}.${minMinor}, the first Thanos querier with per-endpoint TLS; upgrade the querier ${switchBack}`,
            });
        }
    }
    if (input.envoy !== undefined) {
        problems.push({ key: "envoy", message: `configures Envoy, which observer.mode: native does not deploy; remove envoy.* ${switchBack}` });
    }
    if (input.monitoring !== undefined) {
        problems.push({ key: "monitoring", message: `watches Envoy, which observer.mode: native does not deploy; remove monitoring.* ${switchBack}` });
    }
    if (input.networkPolicy !== undefined) {
        problems.push({
            key: "networkPolicy",
            message: `guards Envoy's listeners, which observer.mode: native does not deploy; remove networkPolicy.* ${switchBack}`,
        });
    }
    input.clusters.forEach((c, i) => {
        for (const field of ["port", "portName"] as const) {
            if (c[field] !== undefined) {
                problems.push({
                    key: `clusters[${i}].${field}`,
                    message: `names an Envoy listener, and observer.mode: native has none (the querier connects to the cluster's address); remove it ${switchBack}`,
                });
            }
        }
    });
}

/**
 * Native mode: the querier dials each cluster's address itself and keeps one endpoint per address (Thanos drops the
 * others as duplicates), so clusters behind one L4 hop need an address each. Named at the `address` a user set.
 */
export function checkNativeAddresses(clusters: ObservedClusterModel[], input: StackConfigInput, problems: ConfigProblem[]): void {
    const seen = new Map<string, number>();
    clusters.forEach((c, i) => {
        // A malformed address is named by its own message.
        if (problems.some((p) => p.key === `clusters[${i}].address`)) return;
        const address = `${c.address.host}:${c.address.port}`;
        const first = seen.get(address);
        if (first === undefined) {
            seen.set(address, i);
            return;
        }
        const named = input.clusters[i].address !== undefined ? i : first;
        problems.push({
            key: `clusters[${named}].address`,
            message:
                `${address} is the address of both clusters[${first}] and clusters[${i}]; in observer.mode: native the querier keeps one endpoint per ` +
                "address and drops the other cluster, so give each cluster a DNS name or a port of its own on the load balancer, or set observer.mode: envoy",
        });
    });
}
