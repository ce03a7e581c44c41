import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import * as YAML from "yaml";
import type { ControlPlane } from "./kube";
import { sleep, waitFor } from "./processes";

/**
 * The Gateway API (Standard channel) and Envoy Gateway CRDs of the pinned releases, extracted from their Go module
 * zips by `bash tools/envoy-gateway/crds.sh`, and their installation into a real API server.
 */

const ROOT = path.resolve(__dirname, "../../..");
export const CRDS_COMMAND = "bash tools/envoy-gateway/crds.sh";

/** The CRD directory, or `{ skip }` naming the command that makes it. Under CI=true a missing directory throws. */
export function requireGatewayApiCrds(): string | { skip: string } {
    try {
        return execFileSync("bash", [path.join(ROOT, "tools/envoy-gateway/crds.sh")], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] })
            .trim()
            .split("\n")
            .pop()!;
    } catch (err) {
        const message = `Gateway API CRDs unavailable (${(err as Error).message.split("\n")[0]}); make them with: ${CRDS_COMMAND}`;
        if (process.env.CI === "true") throw new Error(`${message} (CI never skips end-to-end tests)`, { cause: err });
        return { skip: message };
    }
}

/** The CustomResourceDefinitions under `dir/<sub>/` (other kinds, such as the upgrade ValidatingAdmissionPolicy, left out). */
export function crdsIn(dir: string, sub: "gateway-api" | "envoy-gateway"): any[] {
    return fs
        .readdirSync(path.join(dir, sub))
        .filter((f) => f.endsWith(".yaml"))
        .sort()
        .flatMap((f) => YAML.parseAllDocuments(fs.readFileSync(path.join(dir, sub, f), "utf8")).map((d) => d.toJS()))
        .filter((doc) => doc?.kind === "CustomResourceDefinition");
}

/** Creates the CRDs and waits until the API server serves each of them (Established). */
export async function installCrds(plane: ControlPlane, crds: any[]): Promise<void> {
    for (const crd of crds) {
        const res = await plane.request("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd, 60_000);
        if (res.status !== 201 && res.status !== 409) {
            throw new Error(`creating CRD ${crd.metadata.name} in ${plane.name}: HTTP ${res.status} ${JSON.stringify(res.body).slice(0, 400)}`);
        }
    }
    for (const crd of crds) {
        await waitFor(`CRD ${crd.metadata.name} Established in ${plane.name}`, 60_000, async () => {
            const res = await plane.request("GET", `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${crd.metadata.name}`);
            return res.body?.status?.conditions?.some((c: any) => c.type === "Established" && c.status === "True") ? true : undefined;
        });
    }
}

const CONTROLLER = "example.com/status-stand-in";

function condition(type: string, generation: number, reason = type): object {
    return {
        type,
        status: "True",
        reason,
        message: "stand-in",
        observedGeneration: generation,
        lastTransitionTime: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
    };
}

/**
 * Stands in for a Gateway API implementation's status writes, which `pulumi up` waits for (pulumi.com/waitFor), where a
 * test is about something else than the front door (preview-rbac.test.ts: the preview's permissions) and a real
 * Envoy Gateway would only add its start-up time; gateway-api.test.ts and datapath.test.ts run the real one
 * (support/envoy-gateway.ts).
 */
export function gatewayStatusStandIn(planes: ControlPlane[]): { stop: () => Promise<void> } {
    let running = true;
    const patchStatus = (plane: ControlPlane, base: string, item: any, status: object) =>
        plane.request("PATCH", `${base}/namespaces/${item.metadata.namespace}/${item.plural}/${item.metadata.name}/status`, { status }).catch(() => undefined);
    const loop = (async () => {
        for (let round = 0; running && round < 20_000; round++) {
            for (const plane of planes) {
                const gw = "/apis/gateway.networking.k8s.io/v1";
                const eg = "/apis/gateway.envoyproxy.io/v1alpha1";
                for (const gateway of (await plane.request("GET", `${gw}/gateways`).catch(() => undefined))?.body?.items ?? []) {
                    const generation = gateway.metadata.generation;
                    const done = gateway.status?.conditions?.some(
                        (c: any) => c.type === "Programmed" && c.status === "True" && c.observedGeneration === generation,
                    );
                    if (done) continue;
                    await patchStatus(
                        plane,
                        gw,
                        { ...gateway, plural: "gateways" },
                        {
                            conditions: [condition("Accepted", generation), condition("Programmed", generation)],
                        },
                    );
                }
                for (const route of (await plane.request("GET", `${gw}/grpcroutes`).catch(() => undefined))?.body?.items ?? []) {
                    const generation = route.metadata.generation;
                    if (route.status?.parents?.[0]?.conditions?.[0]?.observedGeneration === generation) continue;
                    await patchStatus(
                        plane,
                        gw,
                        { ...route, plural: "grpcroutes" },
                        {
                            parents: route.spec.parentRefs.map((parentRef: object) => ({
                                parentRef,
                                controllerName: CONTROLLER,
                                conditions: [condition("Accepted", generation), condition("ResolvedRefs", generation)],
                            })),
                        },
                    );
                }
                for (const plural of ["backendtrafficpolicies", "clienttrafficpolicies"]) {
                    for (const policy of (await plane.request("GET", `${eg}/${plural}`).catch(() => undefined))?.body?.items ?? []) {
                        const generation = policy.metadata.generation;
                        if (policy.status?.ancestors?.[0]?.conditions?.[0]?.observedGeneration === generation) continue;
                        await patchStatus(
                            plane,
                            eg,
                            { ...policy, plural },
                            {
                                ancestors: policy.spec.targetRefs.map((ref: any) => ({
                                    ancestorRef: { group: ref.group, kind: ref.kind, name: ref.name },
                                    controllerName: CONTROLLER,
                                    conditions: [condition("Accepted", generation)],
                                })),
                            },
                        );
                    }
                }
            }
            await sleep(300);
        }
    })();
    return {
        stop: async () => {
            running = false;
            await loop;
        },
    };
}
