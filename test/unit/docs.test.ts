import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, it } from "node:test";
import { withLatestResults } from "../../bench/results-page";

const ROOT = path.resolve(__dirname, "../..");
const read = (file: string): string => fs.readFileSync(path.join(ROOT, file), "utf8");

describe("the documentation", () => {
    it("shows in docs/performance.md the run that bench/results.md holds, as npm run bench writes it", () => {
        const page = read("docs/performance.md");
        assert.equal(withLatestResults(page, read("bench/results.md")), page, "docs/performance.md's latest results differ from bench/results.md");
    });
});
