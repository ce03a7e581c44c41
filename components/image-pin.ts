/**
 * An image reference must pin what runs: a version tag other than `latest`, or a digest. The program refuses any
 * other `envoy.image`; the policy pack refuses it on every container. Both read this one rule, so it imports nothing
 * (the policy pack has its own node_modules and loads this file by path).
 */

export const IMAGE_PIN_WHY = "pods started at different times can run different code and a rollback does not restore the old one";
export const IMAGE_PIN_FIX = "pin a version tag (e.g. envoyproxy/envoy:v1.40.0) or a digest (image@sha256:...)";

/** What is wrong with an image reference's version, or undefined when it is pinned. */
export function imagePinProblem(image: string): string | undefined {
    if (image.includes("@")) {
        return undefined; // a digest pins the exact content, whatever the tag says
    }
    // A colon before the last slash belongs to a registry port (registry:5000/envoy), not a tag.
    const colon = image.lastIndexOf(":");
    const tag = colon > image.lastIndexOf("/") ? image.slice(colon + 1) : undefined;
    if (tag === undefined || tag === "") {
        return "has no tag, so Kubernetes pulls :latest";
    }
    return tag === "latest" ? "uses the :latest tag" : undefined;
}
