import { FrontDoorContext, FrontDoorKind, RunningFrontDoor } from "./front-door";
import { requireKube } from "./kube";
import { requireNetns } from "./netns";
import { NginxFrontDoor } from "./nginx-front-door";
import { requireTool } from "./processes";
import { requireTraefik, TraefikFrontDoor } from "./traefik";

/**
 * Every front door the end-to-end tests can run, with what each needs. The shared data-path checks run through
 * each kind in `FRONT_DOOR_KINDS`.
 */

export const FRONT_DOOR_KINDS: readonly FrontDoorKind[] = ["nginx", "traefik"];

/** The tools a front door kind needs: the missing one's skip reason (a throw under CI=true), or true. */
export function requireFrontDoor(kind: FrontDoorKind): true | { skip: string } {
    switch (kind) {
        case "nginx": {
            const nginx = requireTool("nginx", "apt-get install nginx");
            return typeof nginx === "object" ? nginx : true;
        }
        case "traefik": {
            // Traefik, the API server it watches, and the network namespace where the sidecars' pod IPs exist.
            for (const ready of [requireTraefik(), requireKube(), requireNetns(), requireTool("socat", "apt-get install socat")]) {
                if (typeof ready === "object" && "skip" in ready) return ready;
            }
            return true;
        }
        default:
            return { skip: `no ${kind} front door in the tests` };
    }
}

export function startFrontDoor(kind: FrontDoorKind, context: FrontDoorContext): RunningFrontDoor {
    switch (kind) {
        case "nginx":
            return new NginxFrontDoor(context);
        case "traefik":
            return new TraefikFrontDoor(context);
        default:
            throw new Error(`no ${kind} front door in the tests`);
    }
}
