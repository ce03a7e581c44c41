import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, it } from "node:test";
import { withLatestResults } from "../../bench/results-page";

const ROOT = path.resolve(__dirname, "../..");
const read = (file: string): string => fs.readFileSync(path.join(ROOT, file), "utf8");

/** README.md and every page under docs/, as paths relative to the repository. */
function documentationFiles(): string[] {
    const pages = (fs.readdirSync(path.join(ROOT, "docs"), { recursive: true }) as string[]).filter((f) => f.endsWith(".md"));
    return ["README.md", ...pages.map((f) => path.join("docs", f))];
}

/** The text of a page outside fenced code blocks and inline code, where markdown links and headings live. */
function prose(markdown: string): string[] {
    let fenced = false;
    const lines: string[] = [];
    for (const line of markdown.split("\n")) {
        if (/^\s*```/.test(line)) fenced = !fenced;
        else if (!fenced) lines.push(line.replace(/`[^`]*`/g, (code) => code.replace(/[[\]()]/g, " ")));
    }
    return lines;
}

/** GitHub's anchor for a heading: lowercase, punctuation dropped, spaces to hyphens, repeats numbered. */
function anchors(markdown: string): Set<string> {
    const seen = new Map<string, number>();
    const result = new Set<string>();
    let fenced = false;
    for (const line of markdown.split("\n")) {
        if (/^\s*```/.test(line)) fenced = !fenced;
        const heading = fenced ? null : /^#{1,6} (.+?)#*\s*$/.exec(line);
        if (!heading) continue;
        const text = heading[1].replace(/\[([^\]]*)\]\([^)]*\)/g, "$1").replace(/[`*]/g, "");
        const slug = text
            .toLowerCase()
            .replace(/[^\p{L}\p{M}\p{N}\p{Pc}\- ]/gu, "")
            .replace(/ /g, "-");
        const count = seen.get(slug) ?? 0;
        seen.set(slug, count + 1);
        result.add(count === 0 ? slug : `${slug}-${count}`);
    }
    return result;
}

/** Every link target of a page: `[text](target)` and `![alt](target)`, outside code. */
function links(markdown: string): string[] {
    return prose(markdown).flatMap((line) => [...line.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)].map((m) => m[1]));
}

/** What is wrong with `target` as a link from `file`, or undefined when it resolves inside the repository. */
function brokenLink(file: string, target: string): string | undefined {
    if (/^[a-z][a-z0-9+.-]*:/i.test(target)) return "points outside the repository (a URL)";
    const [pathPart, anchor] = target.split("#", 2);
    const resolved = pathPart === "" ? path.join(ROOT, file) : path.resolve(ROOT, path.dirname(file), decodeURIComponent(pathPart));
    if (path.relative(ROOT, resolved).startsWith("..") || path.isAbsolute(pathPart)) return "points outside the repository";
    if (!fs.existsSync(resolved)) return "names no file of the repository";
    if (anchor === undefined) return undefined;
    if (!resolved.endsWith(".md")) return "has an anchor into a file that is not markdown";
    return anchors(fs.readFileSync(resolved, "utf8")).has(anchor) ? undefined : `names no heading of ${path.relative(ROOT, resolved)}`;
}

describe("the documentation", () => {
    it("links only to files and headings inside the repository", () => {
        const broken = documentationFiles().flatMap((file) =>
            links(read(file)).flatMap((target) => {
                const problem = brokenLink(file, target);
                return problem === undefined ? [] : [`${file}: (${target}) ${problem}`];
            }),
        );
        assert.deepEqual(broken, []);
    });

    it("names no file outside the repository, such as the recipe in ../shared", () => {
        const outside = documentationFiles().filter((file) => /\.\.\/shared|shared\/reference/.test(read(file)));
        assert.deepEqual(outside, []);
    });

    it("computes GitHub's anchors for headings with code, punctuation and repeats", () => {
        const page = "# `npm run status`: is it reachable?\n## Envoy → nginx, 100,000 calls\n## Repeat\n## Repeat\n```\n# not a heading\n```\n";
        assert.deepEqual([...anchors(page)], ["npm-run-status-is-it-reachable", "envoy--nginx-100000-calls", "repeat", "repeat-1"]);
    });

    it("shows in docs/performance.md the run that bench/results.md holds, as npm run bench writes it", () => {
        const page = read("docs/performance.md");
        assert.equal(withLatestResults(page, read("bench/results.md")), page, "docs/performance.md's latest results differ from bench/results.md");
    });
});
