/**
 * docs/performance.md shows the latest full run between two markers. `npm run bench` rewrites that block from the
 * text it writes to bench/results.md, so the page and the results file always hold the same run.
 */

export const RESULTS_START = "<!-- npm run bench writes the latest full run below, from bench/results.md; edits here are overwritten -->";
export const RESULTS_END = "<!-- end of the latest full run -->";

/** `page` with the block between the markers replaced by `results`, a run's text without its title line. */
export function withLatestResults(page: string, results: string): string {
    const start = page.indexOf(RESULTS_START);
    const end = page.indexOf(RESULTS_END);
    if (start < 0 || end < start) throw new Error(`docs/performance.md has no "${RESULTS_START}" … "${RESULTS_END}" block for the results`);
    const body = results.split("\n").slice(2).join("\n").trim();
    return `${page.slice(0, start + RESULTS_START.length)}\n\n${body}\n\n${page.slice(end)}`;
}
