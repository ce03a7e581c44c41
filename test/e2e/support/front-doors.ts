import { FrontDoorContext, FrontDoorKind, RunningFrontDoor } from "./front-door";
import { NginxFrontDoor } from "./nginx-front-door";
import { requireTool } from "./processes";

/**
 * Every front door the end-to-end tests can run, with what each needs. The shared data-path checks run through
 * each kind in `FRONT_DOOR_KINDS`.
 */

export const FRONT_DOOR_KINDS: readonly FrontDoorKind[] = ["nginx"];

/** The tools a front door kind needs: the missing one's skip reason (a throw under CI=true), or true. */
export function requireFrontDoor(kind: FrontDoorKind): true | { skip: string } {
    switch (kind) {
        case "nginx": {
            const nginx = requireTool("nginx", "apt-get install nginx");
            return typeof nginx === "object" ? nginx : true;
        }
        default:
            return { skip: `no ${kind} front door in the tests` };
    }
}

export function startFrontDoor(kind: FrontDoorKind, context: FrontDoorContext): RunningFrontDoor {
    switch (kind) {
        case "nginx":
            return new NginxFrontDoor(context);
        default:
            throw new Error(`no ${kind} front door in the tests`);
    }
}
