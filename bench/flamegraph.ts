/**
 * A flame graph as a standalone SVG, from folded stacks (`root;…;leaf` → samples): each box is a function, as wide as
 * the share of samples it was on the stack for, its callers below it; the colour says which category its own code
 * belongs to (see bench/stacks.ts). Hovering a box shows its name and share.
 */

interface Node {
    name: string;
    samples: number;
    children: Map<string, Node>;
}

export interface FlameGraphOptions {
    title: string;
    /** Colour of a frame by name; the legend lists `legend`'s labels with their colours. */
    colour: (name: string) => string;
    legend: { label: string; colour: string }[];
    width?: number;
}

const ROW = 17;
const CHAR = 6.6;

function escapeXml(text: string): string {
    return text.replace(/[<>&"']/g, (c) => ({ "<": "&lt;", ">": "&gt;", "&": "&amp;", '"': "&quot;", "'": "&apos;" })[c]!);
}

function tree(folded: Map<string, number>): Node {
    const root: Node = { name: "all", samples: 0, children: new Map() };
    for (const [stack, samples] of folded) {
        root.samples += samples;
        let node = root;
        for (const name of stack.split(";")) {
            let child = node.children.get(name);
            if (child === undefined) {
                child = { name, samples: 0, children: new Map() };
                node.children.set(name, child);
            }
            child.samples += samples;
            node = child;
        }
    }
    return root;
}

function depthOf(node: Node): number {
    let deepest = 0;
    for (const child of node.children.values()) deepest = Math.max(deepest, depthOf(child));
    return deepest + 1;
}

export function flameGraphSvg(folded: Map<string, number>, o: FlameGraphOptions): string {
    const width = o.width ?? 1200;
    const root = tree(folded);
    const depth = depthOf(root);
    const top = 40;
    const legendHeight = 24;
    const height = top + depth * ROW + legendHeight + 10;
    const boxes: string[] = [];
    const perSample = root.samples === 0 ? 0 : (width - 20) / root.samples;
    // Boxes narrower than a pixel are dropped: they cannot be seen, and they would only make the file large.
    const draw = (node: Node, x: number, level: number) => {
        const w = node.samples * perSample;
        if (w < 1) return;
        const y = top + (depth - level - 1) * ROW;
        const share = ((node.samples / root.samples) * 100).toFixed(2);
        const label = `${node.name} (${node.samples} samples, ${share} %)`;
        const fill = level === 0 ? "#dddddd" : o.colour(node.name);
        const fits = Math.floor((w - 6) / CHAR);
        const text = fits >= 3 ? (node.name.length <= fits ? node.name : `${node.name.slice(0, fits - 2)}..`) : "";
        boxes.push(
            `<g><title>${escapeXml(label)}</title><rect x="${x.toFixed(1)}" y="${y}" width="${w.toFixed(1)}" height="${ROW - 1}" fill="${fill}" rx="2"/>` +
                (text ? `<text x="${(x + 3).toFixed(1)}" y="${y + ROW - 5}">${escapeXml(text)}</text>` : "") +
                "</g>",
        );
        let childX = x;
        const children = [...node.children.values()].sort((a, b) => a.name.localeCompare(b.name));
        for (const child of children) {
            draw(child, childX, level + 1);
            childX += child.samples * perSample;
        }
    };
    draw(root, 10, 0);
    const legendY = top + depth * ROW + 8;
    let legendX = 10;
    const legend = o.legend.map(({ label, colour }) => {
        const item = `<rect x="${legendX}" y="${legendY}" width="12" height="12" fill="${colour}"/><text x="${legendX + 16}" y="${legendY + 10}">${escapeXml(label)}</text>`;
        legendX += 24 + label.length * CHAR;
        return item;
    });
    return [
        `<?xml version="1.0" encoding="UTF-8"?>`,
        `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="monospace" font-size="11">`,
        `<rect width="100%" height="100%" fill="#ffffff"/>`,
        `<text x="${width / 2}" y="24" font-size="15" text-anchor="middle">${escapeXml(o.title)}</text>`,
        ...boxes,
        ...legend,
        "</svg>",
        "",
    ].join("\n");
}
