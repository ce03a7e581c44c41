import * as path from "node:path";

/**
 * `perf script` output (fields comm, pid, tid, ip, sym, dso; call chains leaf first) turned into folded stacks per
 * process role, and each sample put in one category by the function it was in when sampled (self time). Pure: the
 * function table of stripped binaries comes in as `symbolize`.
 */

export interface Frame {
    address: number;
    symbol: string;
    dso: string;
}

export interface Sample {
    pid: number;
    /** Leaf first. */
    frames: Frame[];
}

export function parsePerfScript(text: string): Sample[] {
    const samples: Sample[] = [];
    let current: Sample | undefined;
    for (const line of text.split("\n")) {
        if (line.trim() === "") {
            current = undefined;
            continue;
        }
        if (!line.startsWith("\t") && !line.startsWith(" ")) {
            const pid = /\s(\d+)\/\d+\s*$/.exec(line);
            if (pid === null || line.includes("PERF_RECORD")) continue;
            current = { pid: Number(pid[1]), frames: [] };
            samples.push(current);
            continue;
        }
        const frame = /^\s+([0-9a-f]+) (.*) \(([^()]*)\)\s*$/.exec(line);
        if (current && frame) current.frames.push({ address: parseInt(frame[1], 16), symbol: frame[2], dso: frame[3] });
    }
    return samples;
}

export const CATEGORIES = [
    "TLS: AES-GCM code",
    "TLS: the rest of OpenSSL",
    "HTTP/2 codec",
    "buffer copies (memcpy / memmove)",
    "kernel: read / receive",
    "kernel: write / send",
    "kernel: epoll",
    "kernel: other",
    "everything else",
] as const;
export type Category = (typeof CATEGORIES)[number];

const isKernel = (f: Frame) => f.dso === "[kernel.kallsyms]" || f.dso.startsWith("[kernel");
const SYSCALL = /^(?:__x64_sys|__se_sys|__do_sys|__ia32_sys)_(\w+)/;

/** A kernel category from a system call's name (the kernel's `__x64_sys_<name>`, or libc's wrapper around it). */
function syscallCategory(call: string): Category | undefined {
    if (/epoll/.test(call)) return "kernel: epoll";
    if (/read|recv/.test(call)) return "kernel: read / receive";
    if (/write|send/.test(call)) return "kernel: write / send";
    return undefined;
}

/**
 * The kernel category of a sample that was in the kernel: by the system call it came through. Recent kernels inline
 * `__x64_sys_*` into their dispatcher, so the first user-space frame (libc's wrapper, e.g. `__libc_recv`) names it then.
 */
function kernelCategory(frames: Frame[]): Category {
    for (const f of frames) {
        const call = SYSCALL.exec(f.symbol)?.[1];
        if (call !== undefined) return syscallCategory(call) ?? "kernel: other";
        if (!isKernel(f)) return syscallCategory(f.symbol) ?? "kernel: other";
    }
    return "kernel: other";
}

/** How a stripped binary's frame is named and whether its function is AES-GCM code. */
export type Symbolize = (frame: Frame) => { name: string; aesGcm: boolean } | undefined;

function frameName(f: Frame, symbolize: Symbolize): { name: string; aesGcm: boolean } {
    if (f.symbol !== "[unknown]") return { name: f.symbol.replace(/;/g, ":"), aesGcm: false };
    return symbolize(f) ?? { name: `${path.basename(f.dso)} ?`, aesGcm: false };
}

/** The category of one frame's own code. */
function frameCategory(f: Frame, name: { name: string; aesGcm: boolean }): Category | undefined {
    const dso = path.basename(f.dso);
    if (name.aesGcm) return "TLS: AES-GCM code";
    if (/^lib(crypto|ssl)\.so/.test(dso)) return "TLS: the rest of OpenSSL";
    if (/^ngx_http_v2_|nghttp2_|oghttp2|[Hh]ttp2::/.test(name.name)) return "HTTP/2 codec";
    if (/mem(cpy|move)|Buffer::/.test(name.name) && !isKernel(f)) return "buffer copies (memcpy / memmove)";
    return undefined;
}

export interface Profile {
    samples: number;
    byCategory: Record<Category, number>;
    /** Folded stacks, root first, `;`-separated, with their sample counts. */
    folded: Map<string, number>;
    /** The category each frame name's own code belongs to, for colouring. */
    frameCategories: Map<string, Category>;
}

/** Folds and splits the samples of the processes in `pids`. */
export function profileOf(samples: Sample[], pids: Set<number>, symbolize: Symbolize): Profile {
    const byCategory = Object.fromEntries(CATEGORIES.map((c) => [c, 0])) as Record<Category, number>;
    const folded = new Map<string, number>();
    const frameCategories = new Map<string, Category>();
    let count = 0;
    for (const s of samples) {
        if (!pids.has(s.pid) || s.frames.length === 0) continue;
        count++;
        const names = s.frames.map((f) => {
            const name = frameName(f, symbolize);
            if (!frameCategories.has(name.name)) {
                const category = isKernel(f) ? "kernel: other" : frameCategory(f, name);
                if (category !== undefined) frameCategories.set(name.name, category);
            }
            return name;
        });
        const leaf = s.frames[0];
        const category = isKernel(leaf) ? kernelCategory(s.frames) : (frameCategory(leaf, names[0]) ?? "everything else");
        byCategory[category]++;
        const key = names
            .map((n) => n.name)
            .reverse()
            .join(";");
        folded.set(key, (folded.get(key) ?? 0) + 1);
    }
    return { samples: count, byCategory, folded, frameCategories };
}
