import { PanelDefinition, panelDefinitions } from "../components/observer/dashboard";
import { defaults } from "../components/config/defaults";

/**
 * `node --import tsx tools/dashboard-layout.ts`: draws the Grafana dashboard's layout as text, from the same
 * panel definitions the dashboard is built from (docs/monitoring.md shows this drawing; a unit test keeps it current).
 */

/** Characters per grid column, and text lines per grid row (Grafana's rows are 30 px, a bit less than a line's width). */
const COLUMN = 4;
const LINES_PER_ROW = 0.75;
const line = (gridRow: number) => Math.round(gridRow * LINES_PER_ROW);

/** Splits text into lines of at most `width` characters, at spaces. */
function wrap(text: string, width: number): string[] {
    const lines: string[] = [];
    for (const word of text.split(" ")) {
        const last = lines.length - 1;
        if (last >= 0 && lines[last].length + 1 + word.length <= width) lines[last] += ` ${word}`;
        else lines.push(word);
    }
    return lines;
}

export function drawLayout(panels: PanelDefinition[]): string {
    const width = 24 * COLUMN + 1;
    const height = line(Math.max(...panels.map((p) => p.gridPos.y + p.gridPos.h))) + 1;
    const canvas = Array.from({ length: height }, () => Array<string>(width).fill(" "));
    const write = (at: number, column: number, text: string) => [...text].forEach((ch, i) => (canvas[at][column + i] = ch));
    for (const panel of panels) {
        const { x, y, w, h } = panel.gridPos;
        const [left, right] = [x * COLUMN, (x + w) * COLUMN];
        const [top, bottom] = [line(y), line(y + h)];
        for (let column = left; column <= right; column++) {
            for (const edge of [top, bottom]) canvas[edge][column] = column === left || column === right ? "+" : "-";
        }
        for (let inside = top + 1; inside < bottom; inside++) {
            canvas[inside][left] = "|";
            canvas[inside][right] = "|";
        }
        const room = right - left - 3;
        const series = panel.queries
            .map((q) => q.legend.replace("{{envoy_cluster_name}}", "").replace("{{envoy_tls_certificate}}", "per certificate").trim())
            .filter((legend) => legend !== "");
        const per = panel.queries.some((q) => q.legend.includes("{{envoy_cluster_name}}")) ? "per remote" : "";
        const lines = [
            ...wrap(panel.title, room),
            ...wrap(`${panel.kind} (${panel.unit})${per ? `, ${per}` : ""}${series.length > 0 ? `: ${series.join(", ")}` : ""}`, room),
        ];
        if (lines.length > bottom - top - 1) throw new Error(`panel "${panel.title}" is too small to draw its text`);
        lines.forEach((text, i) => write(top + 1 + i, left + 2, text));
    }
    return canvas.map((characters) => characters.join("").trimEnd()).join("\n");
}

if (require.main === module) {
    console.log(drawLayout(panelDefinitions({ namespace: defaults.observer.namespace, certificateExpiryDays: defaults.monitoring.certificateExpiryDays })));
}
