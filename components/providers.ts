import * as path from "node:path";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import type { Connection } from "./config/model";

/** Provider arguments for one cluster: its connection, or a directory to render manifests into. */
export function providerArgs(connection: Connection, renderDirectory: string | undefined, subdirectory: string): k8s.ProviderArgs {
    const args: k8s.ProviderArgs = {
        // Renewed certificates and a changed Envoy config update the Secrets and the ConfigMap in place. The
        // provider's default replaces them (delete, then create: same names), and in that gap ingress-nginx
        // would serve its fake certificate. The pod-template checksum still rolls Envoy on a config change.
        enableSecretMutable: true,
        enableConfigMapMutable: true,
    };
    if (connection.kind === "context") {
        args.context = connection.context;
    } else if (connection.kind === "kubeconfig") {
        args.kubeconfig = pulumi.secret(connection.kubeconfig);
        if (connection.context !== undefined) {
            args.context = connection.context;
        }
    }
    if (renderDirectory !== undefined) {
        args.renderYamlToDirectory = path.join(renderDirectory, subdirectory);
    }
    return args;
}
