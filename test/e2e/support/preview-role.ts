import * as fs from "node:fs";
import * as path from "node:path";
import * as YAML from "yaml";
import { createObject, KubeClusters, issueUserCredentials } from "./kube";

/**
 * The pull-request preview's credentials on real API servers: rbac/preview-readonly.yaml applied as an operator applies
 * it, and a kubeconfig whose user is bound to nothing else.
 */

const ROOT = path.resolve(__dirname, "../../..");
/** The user the shipped manifest binds (the CN of its client certificate). */
const PREVIEW_USER = "envoy-thanos-preview";

/** The API path that creates a cluster-scoped RBAC object of `kind`. */
const RBAC_PATHS: Record<string, string> = {
    ClusterRole: "/apis/rbac.authorization.k8s.io/v1/clusterroles",
    ClusterRoleBinding: "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
};

/** Applies the shipped manifest to every cluster. */
export async function applyPreviewRole(clusters: KubeClusters): Promise<void> {
    const documents = YAML.parseAllDocuments(fs.readFileSync(path.join(ROOT, "rbac/preview-readonly.yaml"), "utf8")).map((d) => d.toJS());
    for (const plane of Object.values(clusters.planes)) {
        for (const doc of documents) await createObject(plane, RBAC_PATHS[doc.kind], doc);
    }
}

/** Writes `kubeconfig` with the same contexts as the admin's, each as the preview user (a client certificate per cluster, under `dir`). */
export function writePreviewKubeconfig(clusters: KubeClusters, kubeconfig: string, currentContext: string, dir: string): void {
    const credentials = Object.fromEntries(Object.entries(clusters.planes).map(([name, plane]) => [name, issueUserCredentials(plane, PREVIEW_USER, dir)]));
    clusters.writeKubeconfig(kubeconfig, currentContext, (name) => credentials[name]);
}
