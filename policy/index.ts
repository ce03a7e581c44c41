import { PolicyPack } from "@pulumi/policy";
import { policies } from "./policies";

// Run with: pulumi preview --policy-pack policy   (from the project directory, after `npm --prefix policy ci`)
new PolicyPack("envoy-thanos", { enforcementLevel: "mandatory", policies });
