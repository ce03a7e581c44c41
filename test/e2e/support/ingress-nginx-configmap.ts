/**
 * The controller-wide settings of ingress-nginx (its ConfigMap) that shape TLS, HTTP/2 and gRPC on the front door,
 * rendered into nginx's `http` block as ingress-nginx's nginx.tmpl renders them, with ingress-nginx's defaults where
 * a key is absent. None of them is an Ingress annotation: they apply to every Ingress of the controller, so the
 * program cannot set them and a platform team sets them once. A key not listed here is an error, so a setting the
 * tests pass cannot go unrendered.
 */

/** ingress-nginx's defaults (its config.go) for the keys the tests render. */
const DEFAULTS = {
    "ssl-protocols": "TLSv1.2 TLSv1.3",
    // Applies to TLS 1.2 and below only; TLS 1.3's suites are OpenSSL's, in OpenSSL's order.
    "ssl-ciphers":
        "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:" +
        "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-AES128-GCM-SHA256",
    // Below nginx's own 16k: smaller TLS records reach the client's first byte sooner.
    "ssl-buffer-size": "4k",
    "ssl-session-cache": "true",
    "ssl-session-cache-size": "10m",
    "ssl-session-timeout": "10m",
    "ssl-session-tickets": "false",
    // 0: not rendered, so nginx's own grpc_buffer_size (one memory page) holds.
    "grpc-buffer-size-kb": "0",
    // Raw nginx configuration for the http block: the only way to reach a directive that has no key of its own.
    "http-snippet": "",
} as const;

export type IngressNginxConfigKey = keyof typeof DEFAULTS;
/** ConfigMap data, as strings (ingress-nginx reads every value from a string). */
export type IngressNginxConfigMap = Partial<Record<IngressNginxConfigKey, string>>;

/** The ConfigMap keys the tests render. */
export const CONFIGMAP_KEYS = Object.keys(DEFAULTS) as IngressNginxConfigKey[];

function flag(key: IngressNginxConfigKey, value: string): boolean {
    if (value !== "true" && value !== "false") throw new Error(`ingress-nginx ConfigMap ${key}: expected "true" or "false", got ${JSON.stringify(value)}`);
    return value === "true";
}

function size(key: IngressNginxConfigKey, value: string): string {
    if (!/^\d+[km]?$/.test(value)) throw new Error(`ingress-nginx ConfigMap ${key}: expected an nginx size such as 4k, got ${JSON.stringify(value)}`);
    return value;
}

/** The `http`-block directives the ConfigMap `data` makes (defaults for absent keys), one per line. */
export function ingressNginxHttpDirectives(data: IngressNginxConfigMap = {}): string[] {
    for (const key of Object.keys(data)) {
        if (!(key in DEFAULTS)) {
            throw new Error(`the tests do not render the ingress-nginx ConfigMap key ${key}; teach test/e2e/support/ingress-nginx-configmap.ts to`);
        }
    }
    const cfg = { ...DEFAULTS, ...data };
    const grpcBufferKb = Number(cfg["grpc-buffer-size-kb"]);
    if (!Number.isInteger(grpcBufferKb) || grpcBufferKb < 0) {
        throw new Error(`ingress-nginx ConfigMap grpc-buffer-size-kb: expected whole kilobytes, got ${JSON.stringify(cfg["grpc-buffer-size-kb"])}`);
    }
    return [
        `ssl_protocols ${cfg["ssl-protocols"]};`,
        ...(flag("ssl-session-cache", cfg["ssl-session-cache"])
            ? [
                  `ssl_session_cache shared:SSL:${size("ssl-session-cache-size", cfg["ssl-session-cache-size"])};`,
                  `ssl_session_timeout ${cfg["ssl-session-timeout"]};`,
              ]
            : []),
        `ssl_session_tickets ${flag("ssl-session-tickets", cfg["ssl-session-tickets"]) ? "on" : "off"};`,
        `ssl_buffer_size ${size("ssl-buffer-size", cfg["ssl-buffer-size"])};`,
        ...(cfg["ssl-ciphers"] === "" ? [] : [`ssl_ciphers '${cfg["ssl-ciphers"]}';`, "ssl_prefer_server_ciphers on;"]),
        ...(grpcBufferKb > 0 ? [`grpc_buffer_size ${grpcBufferKb}k;`] : []),
        ...(cfg["http-snippet"] === "" ? [] : [cfg["http-snippet"]]),
    ];
}
