import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as YAML from "yaml";
import { COMPUTED_STRING, envoyConfigMap, policy, runPolicy, TYPES } from "./harness";

const UPSTREAM_TLS = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext";
const HCM = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";

/** A small bootstrap that passes every rule: one upstream TLS cluster, one streaming route, a metrics route to admin. */
function bootstrap() {
    const hcm = (name: string, routes: object[]) => ({
        name,
        filter_chains: [
            {
                filters: [
                    {
                        name: "envoy.filters.network.http_connection_manager",
                        typed_config: { "@type": HCM, stat_prefix: name, route_config: { virtual_hosts: [{ name, domains: ["*"], routes }] } },
                    },
                ],
            },
        ],
    });
    return {
        admin: { address: { socket_address: { address: "127.0.0.1", port_value: 9901 } } },
        static_resources: {
            listeners: [
                hcm("sidecar", [{ match: { prefix: "/" }, route: { cluster: "sidecar", timeout: "0s" } }]),
                // Scrapes hit Envoy's own admin interface: short requests, Envoy's default timeout is right there.
                hcm("metrics", [
                    { match: { path: "/stats/prometheus" }, route: { cluster: "admin" } },
                    { match: { prefix: "/" }, direct_response: { status: 404 } },
                ]),
            ],
            clusters: [
                {
                    name: "sidecar",
                    transport_socket: {
                        name: "envoy.transport_sockets.tls",
                        typed_config: {
                            "@type": UPSTREAM_TLS,
                            sni: "cl1m.example.com",
                            common_tls_context: {
                                validation_context: {
                                    trusted_ca: { filename: "/etc/envoy-tls/ca.crt" },
                                    match_typed_subject_alt_names: [{ san_type: "DNS", matcher: { exact: "cl1m.example.com" } }],
                                },
                            },
                        },
                    },
                },
                {
                    name: "admin",
                    load_assignment: {
                        cluster_name: "admin",
                        endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: "127.0.0.1", port_value: 9901 } } } }] }],
                    },
                },
            ],
        },
    };
}

type Bootstrap = ReturnType<typeof bootstrap>;
const check = (name: string, doc: object) => runPolicy(policy(name), TYPES.configMap, envoyConfigMap(doc));
const commonTls = (doc: Bootstrap) => doc.static_resources.clusters[0].transport_socket!.typed_config.common_tls_context as Record<string, unknown>;

describe("envoy-upstream-tls-verified", () => {
    const name = "envoy-upstream-tls-verified";

    it("passes a validation_context with trusted_ca and a SAN match", async () => {
        assert.deepEqual(await check(name, bootstrap()), []);
    });

    it("passes a combined_validation_context: SAN match in default_validation_context, CA through SDS", async () => {
        const doc = bootstrap();
        const ctx = commonTls(doc);
        ctx.combined_validation_context = {
            default_validation_context: { match_typed_subject_alt_names: [{ san_type: "DNS", matcher: { exact: "cl1m.example.com" } }] },
            validation_context_sds_secret_config: { name: "trusted_ca", sds_config: { path_config_source: { path: "/etc/envoy/sds-trusted-ca.yaml" } } },
        };
        delete ctx.validation_context;
        assert.deepEqual(await check(name, doc), []);
    });

    it("rejects a cluster without any validation context (the manual recipe)", async () => {
        const doc = bootstrap();
        delete commonTls(doc).validation_context;
        const violations = await check(name, doc);
        assert.equal(violations.length, 2);
        assert.match(
            violations[0],
            /cluster "sidecar".*trusts no CA, so Envoy accepts any server certificate.*Fix: set common_tls_context\.validation_context\.trusted_ca/,
        );
        assert.match(violations[1], /does not check the server certificate's subject alternative names.*Fix: set match_typed_subject_alt_names/);
    });

    it("rejects a trusted CA without a SAN match", async () => {
        const doc = bootstrap();
        delete (commonTls(doc).validation_context as Record<string, unknown>).match_typed_subject_alt_names;
        const violations = await check(name, doc);
        assert.equal(violations.length, 1);
        assert.match(violations[0], /subject alternative names/);
    });

    it("rejects trust_chain_verification: ACCEPT_UNTRUSTED", async () => {
        const doc = bootstrap();
        (commonTls(doc).validation_context as Record<string, unknown>).trust_chain_verification = "ACCEPT_UNTRUSTED";
        assert.match((await check(name, doc)).join("\n"), /ACCEPT_UNTRUSTED, which disables certificate verification/);
    });

    it("ignores clusters without TLS", async () => {
        const doc = bootstrap();
        delete (doc.static_resources.clusters[0] as { transport_socket?: unknown }).transport_socket;
        assert.deepEqual(await check(name, doc), []);
    });
});

describe("envoy-routes-no-stream-timeout", () => {
    const name = "envoy-routes-no-stream-timeout";
    const sidecarRoute = (doc: Bootstrap) =>
        doc.static_resources.listeners[0].filter_chains[0].filters[0].typed_config.route_config.virtual_hosts[0].routes[0] as {
            route: Record<string, unknown>;
        };

    it("passes timeout: 0s, and exempts routes to the admin interface and direct responses", async () => {
        assert.deepEqual(await check(name, bootstrap()), []);
    });

    it("rejects a route without a timeout (Envoy's default 15 s)", async () => {
        const doc = bootstrap();
        delete sidecarRoute(doc).route.timeout;
        const violations = await check(name, doc);
        assert.equal(violations.length, 1);
        assert.match(
            violations[0],
            /route \{"prefix":"\/"\} of listener "sidecar".*has no timeout, so Envoy's default of 15s ends every stream.*Fix: set route\.timeout: 0s/,
        );
    });

    it("rejects a non-zero timeout", async () => {
        const doc = bootstrap();
        sidecarRoute(doc).route.timeout = "300s";
        assert.match((await check(name, doc)).join("\n"), /has timeout "300s", which ends every stream that lasts longer/);
    });

    it("checks routes to the admin port once the admin interface moves (no exemption by name)", async () => {
        const doc = bootstrap();
        doc.admin.address.socket_address.port_value = 9999;
        assert.match((await check(name, doc)).join("\n"), /listener "metrics".*has no timeout/);
    });
});

describe("envoy-admin-loopback-only", () => {
    const name = "envoy-admin-loopback-only";

    for (const address of ["127.0.0.1", "::1", "localhost"]) {
        it(`passes admin on ${address}`, async () => {
            const doc = bootstrap();
            doc.admin.address.socket_address.address = address;
            assert.deepEqual(await check(name, doc), []);
        });
    }

    it("rejects admin on 0.0.0.0", async () => {
        const doc = bootstrap();
        doc.admin.address.socket_address.address = "0.0.0.0";
        const violations = await check(name, doc);
        assert.equal(violations.length, 1);
        assert.match(violations[0], /admin interface .* listens on "0\.0\.0\.0".*Fix: set admin\.address\.socket_address\.address to 127\.0\.0\.1/);
    });
});

describe("Envoy rules on listeners and clusters from LDS/CDS files in the same ConfigMap", () => {
    /** The passing bootstrap, split as the program ships it: listeners and clusters in files the bootstrap watches. */
    function split(mutate: (doc: Bootstrap) => void = () => undefined) {
        const doc = bootstrap();
        mutate(doc);
        const watched = (file: string) => ({ path_config_source: { path: `/etc/envoy/${file}`, watched_directory: { path: "/etc/envoy" } } });
        const { listeners, clusters } = doc.static_resources;
        return {
            metadata: { name: "envoy" },
            data: {
                "envoy.yaml": YAML.stringify({
                    admin: doc.admin,
                    static_resources: { listeners: listeners.filter((l) => l.name === "metrics"), clusters: clusters.filter((c) => c.name === "admin") },
                    dynamic_resources: { lds_config: watched("listeners.yaml"), cds_config: watched("clusters.yaml") },
                }),
                "listeners.yaml": YAML.stringify({ resources: listeners.filter((l) => l.name !== "metrics") }),
                "clusters.yaml": YAML.stringify({ resources: clusters.filter((c) => c.name !== "admin") }),
            },
        };
    }

    it("pass when the files pass", async () => {
        for (const name of ["envoy-upstream-tls-verified", "envoy-routes-no-stream-timeout", "envoy-admin-loopback-only"]) {
            assert.deepEqual(await runPolicy(policy(name), TYPES.configMap, split()), []);
        }
    });

    it("find a route without timeout in the LDS file, and name that file", async () => {
        const configMap = split(
            (doc) =>
                delete (
                    doc.static_resources.listeners[0].filter_chains[0].filters[0].typed_config.route_config.virtual_hosts[0].routes[0] as {
                        route: Record<string, unknown>;
                    }
                ).route.timeout,
        );
        const violations = await runPolicy(policy("envoy-routes-no-stream-timeout"), TYPES.configMap, configMap);
        assert.equal(violations.length, 1);
        assert.match(violations[0], /listener "sidecar" in data\.listeners\.yaml has no timeout/);
    });

    it("find an unverified upstream in the CDS file, and name that file", async () => {
        const configMap = split((doc) => delete (commonTls(doc).validation_context as Record<string, unknown>).match_typed_subject_alt_names);
        const violations = await runPolicy(policy("envoy-upstream-tls-verified"), TYPES.configMap, configMap);
        assert.equal(violations.length, 1);
        assert.match(violations[0], /cluster "sidecar" in data\.clusters\.yaml: .*subject alternative names/);
    });

    it("report an LDS file that is not YAML", async () => {
        const configMap = split();
        configMap.data["listeners.yaml"] = "resources: [unclosed";
        const violations = await runPolicy(policy("envoy-routes-no-stream-timeout"), TYPES.configMap, configMap);
        assert.equal(violations.length, 1);
        assert.match(violations[0], /data\.listeners\.yaml is not valid YAML/);
    });
});

describe("Envoy rules on odd ConfigMaps", () => {
    const envoyPolicies = ["envoy-upstream-tls-verified", "envoy-routes-no-stream-timeout", "envoy-admin-loopback-only"];

    it("skip a ConfigMap without envoy.yaml, and one whose envoy.yaml is not known yet (preview)", async () => {
        for (const name of envoyPolicies) {
            assert.deepEqual(await runPolicy(policy(name), TYPES.configMap, { data: { "other.yaml": "a: 1" } }), []);
            assert.deepEqual(await runPolicy(policy(name), TYPES.configMap, { data: { "envoy.yaml": COMPUTED_STRING } }), []);
            assert.deepEqual(await runPolicy(policy(name), TYPES.configMap, {}), []);
        }
    });

    it("report an envoy.yaml that is not YAML, since it cannot be checked", async () => {
        const violations = await runPolicy(policy("envoy-admin-loopback-only"), TYPES.configMap, { data: { "envoy.yaml": "admin: [unclosed" } });
        assert.equal(violations.length, 1);
        assert.match(violations[0], /data\.envoy\.yaml is not valid YAML .*Fix the YAML/);
    });

    it("do not apply to other resource types", async () => {
        assert.deepEqual(
            await runPolicy(
                policy("envoy-admin-loopback-only"),
                TYPES.deployment,
                envoyConfigMap({ admin: { address: { socket_address: { address: "0.0.0.0" } } } }),
            ),
            [],
        );
    });
});
