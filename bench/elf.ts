import * as fs from "node:fs";

/**
 * Where the functions of a stripped x86-64 ELF binary begin, from its `.eh_frame_hdr` lookup table (every function
 * that can be unwound has an entry, with or without symbols), and which of them run AES or carry-less-multiply
 * instructions (AES-GCM). Envoy's release binary has no symbol table; this names its profile's frames by the start
 * address of their function and tells its AES-GCM code apart from the rest.
 */

interface Section {
    address: number;
    offset: number;
    size: number;
}

function sections(fd: number): Map<string, Section> {
    const header = Buffer.alloc(64);
    fs.readSync(fd, header, 0, 64, 0);
    if (header.readUInt32BE(0) !== 0x7f454c46 || header[4] !== 2 || header[5] !== 1) throw new Error("not a little-endian 64-bit ELF file");
    const shoff = Number(header.readBigUInt64LE(0x28));
    const shentsize = header.readUInt16LE(0x3a);
    const shnum = header.readUInt16LE(0x3c);
    const shstrndx = header.readUInt16LE(0x3e);
    const table = Buffer.alloc(shentsize * shnum);
    fs.readSync(fd, table, 0, table.length, shoff);
    const raw = Array.from({ length: shnum }, (_, i) => {
        const at = i * shentsize;
        return {
            name: table.readUInt32LE(at),
            address: Number(table.readBigUInt64LE(at + 16)),
            offset: Number(table.readBigUInt64LE(at + 24)),
            size: Number(table.readBigUInt64LE(at + 32)),
        };
    });
    const names = Buffer.alloc(raw[shstrndx].size);
    fs.readSync(fd, names, 0, names.length, raw[shstrndx].offset);
    const out = new Map<string, Section>();
    for (const s of raw) out.set(names.toString("latin1", s.name, names.indexOf(0, s.name)), { address: s.address, offset: s.offset, size: s.size });
    return out;
}

/**
 * True when the code has at least `minimum` AES round or carry-less multiply instructions, in legacy SSE, VEX or EVEX
 * encoding. Matching bytes, not decoding instructions, so a lone match may be an operand's bytes; AES-GCM code has dozens.
 */
export function hasAesGcmInstructions(code: Buffer, minimum = 4): boolean {
    let found = 0;
    const hit = () => ++found >= minimum;
    // Reads past the end are undefined and match nothing.
    for (let i = 0; i + 2 < code.length; i++) {
        const b = code[i];
        // 0F 38 DC..DF: aesenc, aesenclast, aesdec, aesdeclast; 0F 3A 44: pclmulqdq.
        if (b === 0x0f && ((code[i + 1] === 0x38 && code[i + 2] >= 0xdc && code[i + 2] <= 0xdf) || (code[i + 1] === 0x3a && code[i + 2] === 0x44))) {
            if (hit()) return true;
            continue;
        }
        // VEX (C4 + map in the low 5 bits, 66-prefix pp = 1) and EVEX (62 + map in the low 3 bits, pp = 1): vaes*, vpclmulqdq.
        const vex = b === 0xc4 ? { map: code[i + 1] & 0x1f, pp: code[i + 2] & 3, op: code[i + 3] } : undefined;
        const evex = b === 0x62 ? { map: code[i + 1] & 0x07, pp: code[i + 2] & 3, op: code[i + 4] } : undefined;
        for (const v of [vex, evex]) {
            if (v === undefined || v.pp !== 1) continue;
            if (((v.map === 2 && v.op >= 0xdc && v.op <= 0xdf) || (v.map === 3 && v.op === 0x44)) && hit()) return true;
        }
    }
    return false;
}

export class FunctionTable {
    /** Sorted start addresses (the binary's virtual addresses, as perf reports them for a DSO). */
    private readonly starts: number[];
    private readonly crypto = new Map<number, boolean>();

    private constructor(
        private readonly file: string,
        private readonly text: Section,
        starts: number[],
    ) {
        this.starts = starts;
    }

    static read(file: string): FunctionTable {
        const fd = fs.openSync(file, "r");
        try {
            const all = sections(fd);
            const hdr = all.get(".eh_frame_hdr");
            const text = all.get(".text");
            if (hdr === undefined || text === undefined) throw new Error(`${file} has no .eh_frame_hdr or .text section`);
            const data = Buffer.alloc(hdr.size);
            fs.readSync(fd, data, 0, hdr.size, hdr.offset);
            // version 1; eh_frame_ptr pc-relative sdata4; fde_count udata4; table entries data-relative sdata4 pairs.
            if (data[0] !== 1 || data[1] !== 0x1b || data[2] !== 0x03 || data[3] !== 0x3b) {
                throw new Error(`${file}: .eh_frame_hdr encodings ${[...data.subarray(0, 4)].join(",")} are not the usual 1,27,3,59`);
            }
            const count = data.readUInt32LE(8);
            const starts: number[] = [];
            for (let i = 0; i < count; i++) starts.push(hdr.address + data.readInt32LE(12 + i * 8));
            starts.sort((a, b) => a - b);
            return new FunctionTable(file, text, starts);
        } finally {
            fs.closeSync(fd);
        }
    }

    /** The start of the function holding `address`, or undefined outside every function. */
    functionAt(address: number): number | undefined {
        let lo = 0;
        let hi = this.starts.length - 1;
        if (hi < 0 || address < this.starts[0]) return undefined;
        while (lo < hi) {
            const mid = (lo + hi + 1) >> 1;
            if (this.starts[mid] <= address) lo = mid;
            else hi = mid - 1;
        }
        return this.starts[lo];
    }

    /** Whether the function starting at `start` runs AES or carry-less multiply instructions (read once, then cached). */
    isAesGcm(start: number): boolean {
        const known = this.crypto.get(start);
        if (known !== undefined) return known;
        const index = this.starts.indexOf(start);
        const end = Math.min(this.starts[index + 1] ?? start + 4096, start + 65536);
        const code = Buffer.alloc(end - start);
        const fd = fs.openSync(this.file, "r");
        try {
            fs.readSync(fd, code, 0, code.length, start - this.text.address + this.text.offset);
        } finally {
            fs.closeSync(fd);
        }
        const found = hasAesGcmInstructions(code);
        this.crypto.set(start, found);
        return found;
    }
}
