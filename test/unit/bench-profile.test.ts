import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import { describe, it } from "node:test";
import { bytesWritten } from "../../bench/accounting";
import { FunctionTable, hasAesGcmInstructions } from "../../bench/elf";
import { flameGraphSvg } from "../../bench/flamegraph";
import { linearFit } from "../../bench/queries";
import { parsePerfScript, profileOf } from "../../bench/stacks";

/** The bench's pure parts behind its CPU-per-MB figure and its profile: fit, perf script parsing and split, ELF, picture. */

const PERF_SCRIPT = [
    "nginx 100/100 ",
    "\tffffffff81a00010 aesni_gcm_x ([kernel.kallsyms])",
    "\tffffffff81000020 __x64_sys_write ([kernel.kallsyms])",
    "\t7f0000001000 __write (/usr/lib/x86_64-linux-gnu/libc.so.6)",
    "\t55000000 ngx_http_v2_send_output_queue (/usr/sbin/nginx)",
    "",
    "nginx 100/100 ",
    "\t7f0000002000 [unknown] (/usr/lib/x86_64-linux-gnu/libcrypto.so.3)",
    "\t55000100 ngx_ssl_write (/usr/sbin/nginx)",
    "",
    "nginx 100/100 ",
    "\t7f0000003000 __memmove_avx_unaligned_erms (/usr/lib/x86_64-linux-gnu/libc.so.6)",
    "\t55000200 ngx_http_v2_read_data (/usr/sbin/nginx)",
    "",
    "nginx 100/100 ",
    "\t55000200 ngx_http_v2_state_read_data (/usr/sbin/nginx)",
    "",
    "nginx 100/100 ",
    "\tffffffff81b00000 tcp_recvmsg ([kernel.kallsyms])",
    "\tffffffff81000030 __x64_sys_recvfrom ([kernel.kallsyms])",
    "",
    "nginx 100/100 ",
    "\tffffffff81c00000 ep_poll ([kernel.kallsyms])",
    "\tffffffff81000040 __x64_sys_epoll_wait ([kernel.kallsyms])",
    "",
    "nginx 100/100 ",
    "\tffffffff81d00000 net_rx_action ([kernel.kallsyms])",
    "",
    "nginx 100/100 ",
    "\tffffffff81b00000 tcp_sendmsg_locked ([kernel.kallsyms])",
    "\tffffffff81000050 do_syscall_64 ([kernel.kallsyms])",
    "\t7f0000004000 __GI___libc_write (/usr/lib/x86_64-linux-gnu/libc.so.6)",
    "",
    "envoy 200/201 ",
    "\t4a72ba8 [unknown] (/opt/envoy)",
    "\t5b33654 [unknown] (/opt/envoy)",
    "",
    "envoy 200/202 ",
    "\t5b33660 [unknown] (/opt/envoy)",
    "",
    "nginx 300/300 ",
    "\t55000200 ngx_http_v2_state_read_data (/usr/sbin/nginx)",
    "",
].join("\n");

/** A stand-in for Envoy's function table: two functions, one of them AES-GCM code. */
const symbolize = (f: { address: number; dso: string }) =>
    f.dso === "/opt/envoy"
        ? f.address >= 0x5b00000
            ? { name: "envoy 0x5b33600", aesGcm: false }
            : { name: "envoy 0x4a72b80 (AES-GCM)", aesGcm: true }
        : undefined;

describe("bench: perf samples split by category", () => {
    const samples = parsePerfScript(PERF_SCRIPT);

    it("reads every sample with its pid and frames, leaf first", () => {
        assert.equal(samples.length, 11);
        assert.deepEqual(
            samples.map((s) => s.pid),
            [100, 100, 100, 100, 100, 100, 100, 100, 200, 200, 300],
        );
        assert.deepEqual(samples[0].frames[3], { address: 0x55000000, symbol: "ngx_http_v2_send_output_queue", dso: "/usr/sbin/nginx" });
    });

    it("puts each sample where its leaf's code is: kernel by system call (or libc's wrapper), TLS by library, codec and copies by name", () => {
        const nginx = profileOf(samples, new Set([100]), symbolize);
        assert.equal(nginx.samples, 8);
        assert.deepEqual(nginx.byCategory, {
            "TLS: AES-GCM code": 0,
            "TLS: the rest of OpenSSL": 1,
            "HTTP/2 codec": 1,
            "buffer copies (memcpy / memmove)": 1,
            "kernel: read / receive": 1,
            "kernel: write / send": 2,
            "kernel: epoll": 1,
            "kernel: other": 1,
            "everything else": 0,
        });
    });

    it("names a stripped binary's frames by function and counts its AES-GCM functions as TLS", () => {
        const envoy = profileOf(samples, new Set([200]), symbolize);
        assert.equal(envoy.byCategory["TLS: AES-GCM code"], 1);
        assert.equal(envoy.byCategory["everything else"], 1);
        assert.deepEqual([...envoy.folded.entries()].sort(), [
            ["envoy 0x5b33600", 1],
            ["envoy 0x5b33600;envoy 0x4a72b80 (AES-GCM)", 1],
        ]);
        assert.equal(envoy.frameCategories.get("envoy 0x4a72b80 (AES-GCM)"), "TLS: AES-GCM code");
    });

    it("folds stacks root first", () => {
        const nginx = profileOf(samples, new Set([100]), symbolize);
        assert.equal(nginx.folded.get("ngx_http_v2_send_output_queue;__write;__x64_sys_write;aesni_gcm_x"), 1);
    });
});

describe("bench: AES-GCM code found by its instructions", () => {
    const repeat = (bytes: number[], n: number) => Buffer.from(Array.from({ length: n }, () => bytes).flat());
    it("finds aesenc (SSE), vaesenc (VEX), vpclmulqdq (EVEX)", () => {
        assert.ok(hasAesGcmInstructions(repeat([0x66, 0x0f, 0x38, 0xdc, 0xc1], 4)));
        assert.ok(hasAesGcmInstructions(repeat([0xc4, 0xe2, 0x79, 0xdc, 0xc1], 4)));
        assert.ok(hasAesGcmInstructions(repeat([0x62, 0xf3, 0x75, 0x48, 0x44, 0xc2, 0x00], 4)));
    });
    it("does not take a lone match or plain code for it", () => {
        assert.ok(!hasAesGcmInstructions(repeat([0x66, 0x0f, 0x38, 0xdc, 0xc1], 1)));
        assert.ok(!hasAesGcmInstructions(repeat([0x48, 0x89, 0xc7, 0xe8, 0x00, 0x00, 0x00, 0x00], 64)));
        assert.ok(!hasAesGcmInstructions(repeat([0xc4, 0xe2, 0x78, 0xdc, 0xc1], 8)), "VEX without the 66 prefix (pp = 0) is another instruction");
    });
});

describe("bench: function table from .eh_frame_hdr", () => {
    const nginx = "/usr/sbin/nginx";
    it("finds the start of nginx's exported functions from an address inside them", { skip: !fs.existsSync(nginx) && "no /usr/sbin/nginx" }, () => {
        const table = FunctionTable.read(nginx);
        const symbols = execFileSync("nm", ["-D", "--defined-only", nginx], { encoding: "utf8" })
            .split("\n")
            .map((l) => l.split(" "))
            .filter((f) => f[1] === "T" && f[2].startsWith("ngx_"))
            .map((f) => parseInt(f[0], 16));
        assert.ok(symbols.length > 100, `${symbols.length} exported functions`);
        for (const start of symbols) assert.equal(table.functionAt(start + 3), start, `function at 0x${start.toString(16)}`);
    });
});

describe("bench: bytes the sidecar wrote, from its sockets", () => {
    it("adds each connection's growth and a new connection's bytes, never goes below zero, and counts closed ones", () => {
        const before = new Map([
            ["a b", 1000],
            ["c d", 5000],
        ]);
        const after = new Map([
            ["a b", 1500],
            ["e f", 200],
        ]);
        assert.deepEqual(bytesWritten(before, after), { bytes: 700, closed: 1 });
    });
});

describe("bench: fixed and per-MB cost", () => {
    it("fits cost = fixed + per MB × MB", () => {
        const fit = linearFit([0.1, 1.5, 2.8, 9.7], [1.2 + 0.1 * 2, 1.2 + 1.5 * 2, 1.2 + 2.8 * 2, 1.2 + 9.7 * 2]);
        assert.ok(Math.abs(fit.fixed - 1.2) < 1e-9 && Math.abs(fit.perUnit - 2) < 1e-9, JSON.stringify(fit));
    });
});

describe("bench: flame graph", () => {
    it("draws each frame as wide as its samples, callers below, coloured by the given rule", () => {
        const svg = flameGraphSvg(
            new Map([
                ["main;read", 3],
                ["main;write", 1],
            ]),
            { title: "t", colour: (n) => (n === "read" ? "#ff0000" : "#00ff00"), legend: [], width: 420 },
        );
        const box = (name: string) => {
            const m = new RegExp(`<title>${name} \\((\\d+) samples[^<]*</title><rect x="([\\d.]+)" y="(\\d+)" width="([\\d.]+)"[^>]*fill="([^"]+)"`).exec(svg);
            assert.ok(m, `no box for ${name}`);
            return { samples: Number(m[1]), x: Number(m[2]), y: Number(m[3]), width: Number(m[4]), fill: m[5] };
        };
        const [all, main, read, write] = ["all", "main", "read", "write"].map(box);
        assert.deepEqual([all.width, main.width, read.width, write.width], [400, 400, 300, 100]);
        assert.ok(main.y < all.y && read.y < main.y, "callers are drawn below their callees");
        assert.equal(read.fill, "#ff0000");
        assert.equal(write.fill, "#00ff00");
        assert.equal(write.x, read.x + read.width);
    });
});
