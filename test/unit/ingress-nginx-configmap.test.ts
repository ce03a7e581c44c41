import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { CONFIGMAP_KEYS, ingressNginxHttpDirectives } from "../e2e/support/ingress-nginx-configmap";

/** The tests' nginx gets the controller-wide TLS, HTTP/2 and gRPC settings ingress-nginx would render from its ConfigMap. */

describe("ingress-nginx's controller ConfigMap, rendered into the tests' nginx", () => {
    it("renders ingress-nginx's defaults, not nginx's: 4k TLS records, a shared session cache, no session tickets, server cipher order", () => {
        const directives = ingressNginxHttpDirectives();
        assert.ok(directives.includes("ssl_protocols TLSv1.2 TLSv1.3;"));
        assert.ok(directives.includes("ssl_buffer_size 4k;"));
        assert.ok(directives.includes("ssl_session_cache shared:SSL:10m;"));
        assert.ok(directives.includes("ssl_session_timeout 10m;"));
        assert.ok(directives.includes("ssl_session_tickets off;"));
        assert.ok(directives.includes("ssl_prefer_server_ciphers on;"));
        assert.match(
            directives.find((d) => d.startsWith("ssl_ciphers "))!,
            /^ssl_ciphers 'ECDHE-ECDSA-AES128-GCM-SHA256:.*:DHE-RSA-AES128-GCM-SHA256';$/,
        );
        // grpc-buffer-size-kb 0 leaves nginx's own grpc_buffer_size; no snippet, no stray line.
        assert.equal(
            directives.some((d) => d.startsWith("grpc_buffer_size")),
            false,
        );
        assert.equal(directives.length, 7);
    });

    it("renders each key a user sets in place of its default", () => {
        const directives = ingressNginxHttpDirectives({
            "ssl-protocols": "TLSv1.3",
            "ssl-buffer-size": "16k",
            "ssl-session-cache": "false",
            "ssl-session-tickets": "true",
            "ssl-ciphers": "",
            "grpc-buffer-size-kb": "64",
            "http-snippet": "http2_chunk_size 16k;",
        });
        assert.deepEqual(directives, [
            "ssl_protocols TLSv1.3;",
            "ssl_session_tickets on;",
            "ssl_buffer_size 16k;",
            "grpc_buffer_size 64k;",
            "http2_chunk_size 16k;",
        ]);
        assert.ok(ingressNginxHttpDirectives({ "ssl-session-cache-size": "1m", "ssl-session-timeout": "1h" }).includes("ssl_session_cache shared:SSL:1m;"));
        assert.ok(ingressNginxHttpDirectives({ "ssl-session-timeout": "1h" }).includes("ssl_session_timeout 1h;"));
    });

    it("refuses a key it does not render, and values ingress-nginx would not read", () => {
        assert.throws(() => ingressNginxHttpDirectives({ "use-http2": "false" } as never), /do not render the ingress-nginx ConfigMap key use-http2/);
        assert.throws(() => ingressNginxHttpDirectives({ "ssl-session-tickets": "yes" }), /ssl-session-tickets: expected "true" or "false", got "yes"/);
        assert.throws(() => ingressNginxHttpDirectives({ "ssl-buffer-size": "16 KB" }), /ssl-buffer-size: expected an nginx size/);
        assert.throws(() => ingressNginxHttpDirectives({ "grpc-buffer-size-kb": "64k" }), /grpc-buffer-size-kb: expected whole kilobytes/);
        assert.deepEqual(CONFIGMAP_KEYS.sort(), [
            "grpc-buffer-size-kb",
            "http-snippet",
            "ssl-buffer-size",
            "ssl-ciphers",
            "ssl-protocols",
            "ssl-session-cache",
            "ssl-session-cache-size",
            "ssl-session-tickets",
            "ssl-session-timeout",
        ]);
    });
});
