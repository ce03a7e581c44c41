import assert from "node:assert/strict";
import * as engineProxy from "@pulumi/policy/proxy";
import { describe, it } from "node:test";
import { at, isMissing, knownOnly, UNKNOWN } from "../rules/values";
import { COMPUTED_OBJECT, COMPUTED_STRING } from "./harness";

const { unknownCheckingProxy } = engineProxy as unknown as { unknownCheckingProxy<T extends object>(props: T): T };

describe("reading preview props", () => {
    it("knownOnly copies known values and marks the engine's computed ones UNKNOWN instead of throwing", () => {
        const props = unknownCheckingProxy({ a: { b: "x", c: COMPUTED_STRING }, list: [1, COMPUTED_OBJECT] });
        assert.throws(() => (props.a as Record<string, unknown>).c, /can.t be known during preview/, "the engine's proxy throws on computed values");
        assert.deepEqual(knownOnly(props), { a: { b: "x", c: UNKNOWN }, list: [1, UNKNOWN] });
    });

    it("at tells missing (undefined) from unknown (UNKNOWN)", () => {
        const value = { a: { b: UNKNOWN } };
        assert.equal(at(value, "a", "b", "c"), UNKNOWN);
        assert.equal(at(value, "a", "x", "c"), undefined);
        assert.equal(isMissing(UNKNOWN), false);
        assert.equal(isMissing({}), true);
    });
});
