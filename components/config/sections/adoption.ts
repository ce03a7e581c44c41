import { defaults } from "../defaults";
import { ConfigProblem } from "../errors";
import { StackConfigInput } from "../schema";

/**
 * `observer.adoptServices`: the first `up` next to a running manual recipe imports its Services `envoy-<cluster>`
 * instead of creating them, so they keep their ClusterIPs and keep selecting the recipe's Envoy; the next `up`
 * without the key points them at the program's Envoy. It needs live Services of the program's own Envoy mode.
 */
export function checkAdoption(input: StackConfigInput, renderMode: boolean, problems: ConfigProblem[]): void {
    const key = "observer.adoptServices";
    if (renderMode) {
        problems.push({
            key,
            message:
                "imports Services from the observer cluster, and renderDirectory deploys to none; remove renderDirectory and set observer.context or observer.kubeconfig",
        });
    }
    if ((input.observer?.mode ?? defaults.observer.mode) === "native") {
        problems.push({ key, message: "adopts Envoy's Services, which observer.mode: native does not deploy; remove it or set observer.mode: envoy" });
    }
}
