import { FILES } from "../components/observer/bootstrap";
import type { EnvoyGatewayPolicyChanges } from "../test/e2e/support/front-door";
import type { IngressNginxConfigMap } from "../test/e2e/support/ingress-nginx-configmap";
import { procTicksMs } from "./accounting";
import { ghz, ghzBinary, percentileMs, seriesOfOneGroup } from "./datapath";
import { DataPathOptions, rotated } from "./schedule";
import { CLUSTER, envoyCounters, Stack, Variant, VariantFrontDoor } from "./stack";

/**
 * The proxies' cost per call and per MB with one setting changed: pairs of the program's Envoy and a front door on the
 * stack's sidecar, each differing from the program's own pair in one setting on one side. Envoy's (stack `config`, or
 * its documents for what the program does not expose), nginx's (ingress-nginx's controller ConfigMap, named by the key
 * a user sets) or Envoy Gateway's (a field of the program's policies).
 */

interface PairVariant {
    label: string;
    config?: Record<string, unknown>;
    mutate?: (documents: Record<string, any>) => void;
    /** Default: nginx with ingress-nginx's defaults. */
    frontDoor?: VariantFrontDoor;
}

const nginx = (ingressNginxConfigMap: IngressNginxConfigMap): VariantFrontDoor => ({ kind: "nginx", ingressNginxConfigMap });
/** TLS 1.3 suites have no ingress-nginx key; OpenSSL 3 sets them through `ssl_conf_command`, which `http-snippet` can carry. */
const tls13Suite = (suite: string) => nginx({ "http-snippet": `ssl_conf_command Ciphersuites ${suite};` });
const envoyGateway = (envoyGatewayPolicies?: EnvoyGatewayPolicyChanges): VariantFrontDoor => ({ kind: "envoy-gateway", envoyGatewayPolicies });

const listenerRoutes = (documents: Record<string, any>) =>
    documents[FILES.listeners].resources.flatMap((l: any) => l.filter_chains[0].filters[0].typed_config.route_config.virtual_hosts[0].routes);

const PAIR_VARIANTS: PairVariant[] = [
    { label: "as the program configures it" },
    { label: "two worker threads (`resources.limits.cpu: 2`, so `--concurrency 2`)", config: { envoy: { resources: { limits: { cpu: "2" } } } } },
    { label: "access log on (`envoy.accessLog: true`)", config: { envoy: { accessLog: true } } },
    {
        label: "HTTP/2 windows at their maximum (16 MiB per stream, 256 MiB per connection)",
        config: { envoy: { http2Windows: { streamBytes: 16 * 1024 * 1024, connectionBytes: 256 * 1024 * 1024 } } },
    },
    {
        label: "connection buffer limits at 32 KiB, listener and cluster (Envoy's default: 1 MiB)",
        mutate: (documents) => {
            for (const l of documents[FILES.listeners].resources) l.per_connection_buffer_limit_bytes = 32 * 1024;
            for (const c of documents[FILES.clusters].resources) c.per_connection_buffer_limit_bytes = 32 * 1024;
        },
    },
    {
        label: "no retry policy on the route",
        mutate: (documents) => {
            for (const route of listenerRoutes(documents)) delete route.route.retry_policy;
        },
    },
    {
        label: "no statistics (`stats_matcher: reject_all`)",
        mutate: (documents) => {
            documents[FILES.bootstrap].stats_config = { stats_matcher: { reject_all: true } };
        },
    },
    {
        label: "no TLS session resumption to the front door (`max_session_keys: 0`; Envoy's default keeps 1)",
        mutate: (documents) => {
            for (const c of documents[FILES.clusters].resources) c.transport_socket.typed_config.max_session_keys = 0;
        },
    },
    { label: "nginx: `ssl-buffer-size: 16k` (nginx's own default; ingress-nginx's is 4k)", frontDoor: nginx({ "ssl-buffer-size": "16k" }) },
    { label: "nginx: `grpc-buffer-size-kb: 64` (unset by default: nginx's one memory page, 4k)", frontDoor: nginx({ "grpc-buffer-size-kb": "64" }) },
    {
        label: "nginx: `http2_chunk_size 16k` through `http-snippet` (default 8k; no key of its own)",
        frontDoor: nginx({ "http-snippet": "http2_chunk_size 16k;" }),
    },
    {
        label: "nginx: `ssl-buffer-size: 16k` and `http2_chunk_size 16k` together",
        frontDoor: nginx({ "ssl-buffer-size": "16k", "http-snippet": "http2_chunk_size 16k;" }),
    },
    { label: "nginx: TLS 1.3 suite AES-128-GCM only (`ssl_conf_command` through `http-snippet`)", frontDoor: tls13Suite("TLS_AES_128_GCM_SHA256") },
    { label: "nginx: TLS 1.3 suite ChaCha20-Poly1305 only (`ssl_conf_command` through `http-snippet`)", frontDoor: tls13Suite("TLS_CHACHA20_POLY1305_SHA256") },
    { label: "Envoy Gateway: as the program configures it", frontDoor: envoyGateway() },
    {
        label:
            "Envoy Gateway: HTTP/2 windows to the sidecar as the program's Envoy has them (BackendTrafficPolicy `http2`: 1 MiB per stream, " +
            "4 MiB per connection; Envoy Gateway's defaults: 64 KiB, 1 MiB)",
        frontDoor: envoyGateway({ backendTrafficPolicy: { http2: { initialStreamWindowSize: "1Mi", initialConnectionWindowSize: "4Mi" } } }),
    },
    {
        label: "Envoy Gateway: connection buffer limits at 1 MiB (`connection.bufferLimit` of both policies; Envoy Gateway's default: 32 KiB)",
        frontDoor: envoyGateway({ backendTrafficPolicy: { connection: { bufferLimit: "1Mi" } }, clientTrafficPolicy: { connection: { bufferLimit: "1Mi" } } }),
    },
];

/** What Envoy's statistics say of its TLS to the front door: the suite most connections used, and how many handshakes resumed a session. */
async function upstreamTls(adminPort: number): Promise<string> {
    const prefix = `cluster.thanos_${CLUSTER.name}.ssl.`;
    const counters = await envoyCounters(adminPort, `^${prefix.replace(/\./g, "\\.")}`);
    const suites = Object.entries(counters).filter(([name]) => name.startsWith(`${prefix}ciphers.`));
    if (suites.length === 0) return "— (no statistics)";
    const [suite] = suites.sort((a, b) => b[1] - a[1])[0];
    return `${suite.slice(prefix.length + "ciphers.".length)}; ${counters[`${prefix}session_reused`] ?? 0} of ${counters[`${prefix}handshake`] ?? 0} handshakes resumed`;
}

/** Where the proxies spend their CPU per unary call and per MB: the same ghz runs against pairs that differ in one setting. */
export async function envoyProfile(stack: Stack, lines: string[], o: DataPathOptions): Promise<void> {
    const binary = ghzBinary();
    const variants: (PairVariant & Variant)[] = [];
    for (const v of PAIR_VARIANTS) variants.push({ ...v, ...(await stack.variant(v.config ?? {}, v.mutate, v.frontDoor)) });
    type Sample = { envoyUs: number; frontDoorUs: number; rps: number; p50: number; seriesCpuMs: number; seriesMb: number };
    const samples: Sample[][] = variants.map(() => []);
    const series = seriesOfOneGroup(stack);
    for (const v of variants) await ghz(binary, v.grpc, "info", {}, 50, o.concurrency);
    for (let rep = 0; rep < o.reps; rep++) {
        for (const i of rotated(
            variants.map((_, i) => i),
            rep,
        )) {
            const v = variants[i];
            const pids = [v.processes.envoy!, ...v.processes.frontDoor!()];
            const before = { envoy: procTicksMs([v.processes.envoy!]), frontDoor: procTicksMs(pids.slice(1)) };
            const { report } = await ghz(binary, v.grpc, "info", {}, o.unaryCalls, o.concurrency);
            const afterInfo = { envoy: procTicksMs([v.processes.envoy!]), frontDoor: procTicksMs(pids.slice(1)) };
            const rx = async () => (await envoyCounters(v.topology.envoy.adminPort))[`cluster.thanos_${CLUSTER.name}.upstream_cx_rx_bytes_total`] ?? 0;
            const rx0 = await rx();
            await ghz(binary, v.grpc, "series", series, o.streamCalls, o.concurrency);
            const mb = ((await rx()) - rx0) / 1e6;
            samples[i].push({
                envoyUs: ((afterInfo.envoy - before.envoy) * 1000) / report.count,
                frontDoorUs: ((afterInfo.frontDoor - before.frontDoor) * 1000) / report.count,
                rps: report.rps,
                p50: percentileMs(report, 50),
                seriesCpuMs: procTicksMs(pids) - afterInfo.envoy - afterInfo.frontDoor,
                seriesMb: mb,
            });
        }
    }
    const tls = await Promise.all(variants.map((v) => upstreamTls(v.topology.envoy.adminPort)));
    for (const v of variants) await v.stop();
    lines.push(
        `### The proxies' cost per call and per MB, one setting changed at a time`,
        "",
        `The micro table's runs (${o.unaryCalls.toLocaleString("en")} Info calls, then ${o.streamCalls.toLocaleString("en")} Series calls, at concurrency ` +
            `${o.concurrency}; ${o.reps} runs each, interleaved) against separate pairs of the program's Envoy and a front door on the same ` +
            "sidecar, each differing in one setting from the program's pair with the same front door (the first row: nginx as ingress-nginx " +
            "renders the program's Ingress by default; Envoy Gateway's rows against its own first row): of the program's Envoy, of nginx " +
            "through ingress-nginx's controller ConfigMap, or of the program's Envoy Gateway policies.",
        "",
        "| setting | Info: Envoy µs CPU/call | Info: front door µs CPU/call | Info calls/s | Info p50 ms | Series: Envoy + front door CPU ms/MB | Envoy → front door TLS |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    );
    // Without statistics Envoy counts no bytes; the same Series calls move the same data through every variant.
    const mbPerRun = o.stats(samples.flat().flatMap((s) => (s.seriesMb > 0 ? [s.seriesMb] : []))).median;
    for (const [i, v] of variants.entries()) {
        const cell = (values: number[], digits: number) => o.fmt(o.stats(values), digits);
        const pick = (key: keyof Sample) => samples[i].map((s) => s[key]);
        const perMb = samples[i].map((s) => s.seriesCpuMs / mbPerRun);
        lines.push(
            `| ${v.label} | ${cell(pick("envoyUs"), 0)} | ${cell(pick("frontDoorUs"), 0)} | ${cell(pick("rps"), 0)} | ${cell(pick("p50"), 2)} | ${cell(perMb, 2)} | ${tls[i]} |`,
        );
    }
    lines.push("", `Per MB: the ${mbPerRun.toFixed(1)} MB Envoy received from the front door per Series run.`, "");
}
