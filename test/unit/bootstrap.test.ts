import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as path from "node:path";
import { describe, it } from "node:test";
import * as YAML from "yaml";
import { buildModel, Model } from "../../components/config/model";
import { rawConfigFromStackFiles } from "../../components/config/sources";
import { buildBootstrap, buildClusters, buildListeners, buildSdsResources, FILES, POD_PATHS, renderEnvoyFiles } from "../../components/observer/bootstrap";

const ROOT = path.resolve(__dirname, "../..");

function model(raw: Record<string, unknown>): Model {
    return buildModel(raw, { checkSecretMaterial: false, now: new Date() });
}

const dev = model(rawConfigFromStackFiles(ROOT, "dev").raw);
const bootstrap = buildBootstrap({ envoy: dev.envoy }) as any;
const listeners = [...(buildListeners({ envoy: dev.envoy, clusters: dev.clusters }) as any).resources, ...bootstrap.static_resources.listeners];
const upstreams = [...(buildClusters({ envoy: dev.envoy, clusters: dev.clusters }) as any).resources, ...bootstrap.static_resources.clusters];
const listener = (name: string) => listeners.find((l: any) => l.name === name);
const upstream = (name: string) => upstreams.find((c: any) => c.name === name);
const hcmOf = (l: any) => l.filter_chains[0].filters[0].typed_config;

/**
 * Every object in the document that has a `name` and a `typed_config` sibling, or should have one. Overload
 * actions and their triggers carry `envoy.` names too, but name a built-in action and a monitor, not an extension.
 */
function filtersWithoutTypedConfig(doc: unknown, where = "$"): string[] {
    const missing: string[] = [];
    if (Array.isArray(doc)) {
        doc.forEach((d, i) => missing.push(...filtersWithoutTypedConfig(d, `${where}[${i}]`)));
    } else if (doc !== null && typeof doc === "object") {
        const o = doc as Record<string, unknown>;
        const namesNoExtension = /\.(actions|triggers)\[\d+\]$/.test(where);
        if (typeof o.name === "string" && o.name.startsWith("envoy.") && !("typed_config" in o) && !namesNoExtension) {
            missing.push(`${where} (${o.name})`);
        }
        for (const [k, v] of Object.entries(o)) {
            missing.push(...filtersWithoutTypedConfig(v, `${where}.${k}`));
        }
    }
    return missing;
}

describe("Envoy bootstrap", () => {
    it("has one listener and one upstream cluster per observed cluster, on the configured ports", () => {
        assert.deepEqual(
            listeners.map((l: any) => [l.name, l.address.socket_address.port_value]),
            [
                ["thanos_cl1", 10002],
                ["thanos_cl2", 10003],
                ["metrics", dev.envoy.metricsPort],
            ],
        );
        for (const name of ["cl1", "cl2"]) {
            const c = upstream(`thanos_${name}`);
            assert.equal(c.load_assignment.cluster_name, `thanos_${name}`, "load_assignment must name its own cluster");
            assert.equal(hcmOf(listener(`thanos_${name}`)).route_config.virtual_hosts[0].routes[0].route.cluster, `thanos_${name}`);
        }
    });

    it("rewrites :authority to the cluster's host, never times a stream out, and has its own stat prefix", () => {
        for (const c of dev.clusters) {
            const hcm = hcmOf(listener(`thanos_${c.name}`));
            const route = hcm.route_config.virtual_hosts[0].routes[0];
            assert.deepEqual(route.match, { prefix: "/" });
            assert.equal(route.route.host_rewrite_literal, c.host);
            assert.equal(route.route.timeout, "0s");
            assert.deepEqual(route.route.retry_policy, { retry_on: "refused-stream", num_retries: 3 });
            assert.equal(hcm.stat_prefix, `thanos_${c.name}`);
            assert.equal(hcm.stream_idle_timeout, "300s");
        }
    });

    it("connects to the host on 443 by default, or to the address override, with SNI always the host", () => {
        const overridden = model({ renderDirectory: "x", clusters: [{ name: "a", host: "a.example.com", address: "lb.example.net:8443" }] });
        const c = (buildClusters({ envoy: overridden.envoy, clusters: overridden.clusters }) as any).resources[0];
        assert.deepEqual(c.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address, { address: "lb.example.net", port_value: 8443 });
        assert.equal(c.transport_socket.typed_config.sni, "a.example.com");
        assert.deepEqual(upstream("thanos_cl1").load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address, {
            address: "cl1m.example.com",
            port_value: 443,
        });
        assert.equal(upstream("thanos_cl1").type, "LOGICAL_DNS");
        assert.equal(upstream("thanos_cl1").connect_timeout, "5s");
    });

    it("accepts several clusters on one address (an HAProxy routing by SNI), each with its own SNI and SAN", () => {
        const shared = model({
            renderDirectory: "x",
            clusters: ["a", "b"].map((name) => ({ name, host: `${name}.example.com`, address: "haproxy.dc2.example.net" })),
        });
        const clusters = (buildClusters({ envoy: shared.envoy, clusters: shared.clusters }) as any).resources;
        assert.deepEqual(
            clusters.map((c: any) => [
                c.name,
                c.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address,
                c.transport_socket.typed_config.sni,
                c.transport_socket.typed_config.common_tls_context.combined_validation_context.default_validation_context.match_typed_subject_alt_names,
            ]),
            ["a", "b"].map((name) => [
                `thanos_${name}`,
                { address: "haproxy.dc2.example.net", port_value: 443 },
                `${name}.example.com`,
                [{ san_type: "DNS", matcher: { exact: `${name}.example.com` } }],
            ]),
        );
    });

    it("speaks HTTP/2 upstream through HttpProtocolOptions with keepalive pings, not the deprecated cluster field", () => {
        const c = upstream("thanos_cl1");
        assert.equal(c.http2_protocol_options, undefined);
        const options = c.typed_extension_protocol_options["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"];
        assert.equal(options["@type"], "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions");
        assert.deepEqual(options.explicit_http_config.http2_protocol_options.connection_keepalive, { interval: "30s", timeout: "10s" });
    });

    it("verifies the remote server: trusted CA, SAN = host, TLS >= 1.2, ALPN h2, client certificate", () => {
        for (const cl of dev.clusters) {
            const tls = upstream(`thanos_${cl.name}`).transport_socket.typed_config;
            assert.equal(tls["@type"], "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext");
            assert.equal(tls.sni, cl.host);
            const common = tls.common_tls_context;
            assert.deepEqual(common.alpn_protocols, ["h2"]);
            assert.equal(common.tls_params.tls_minimum_protocol_version, "TLSv1_2");
            assert.equal(common.tls_certificate_sds_secret_configs[0].name, "client_certificate");
            const validation = common.combined_validation_context;
            assert.deepEqual(validation.default_validation_context.match_typed_subject_alt_names, [{ san_type: "DNS", matcher: { exact: cl.host } }]);
            assert.equal(validation.validation_context_sds_secret_config.name, "trusted_ca");
        }
        const sds = buildSdsResources() as any;
        const trusted = sds[FILES.trustedCaSds].resources[0];
        assert.equal(trusted.validation_context.trusted_ca.filename, `${POD_PATHS.tlsDir}/ca.crt`);
        const clientCert = sds[FILES.clientCertificateSds].resources[0];
        assert.equal(clientCert.tls_certificate.certificate_chain.filename, `${POD_PATHS.tlsDir}/tls.crt`);
        assert.equal(clientCert.tls_certificate.private_key.filename, `${POD_PATHS.tlsDir}/tls.key`);
    });

    it("reads certificates through SDS files watched for Kubernetes' atomic Secret swap", () => {
        const sdsConfig = upstream("thanos_cl1").transport_socket.typed_config.common_tls_context.tls_certificate_sds_secret_configs[0].sds_config;
        assert.deepEqual(sdsConfig.path_config_source, {
            path: `${POD_PATHS.configDir}/${FILES.clientCertificateSds}`,
            watched_directory: { path: POD_PATHS.configDir },
        });
        const sds = buildSdsResources() as any;
        for (const file of [FILES.clientCertificateSds, FILES.trustedCaSds]) {
            const secret = sds[file].resources[0];
            const body = secret.tls_certificate ?? secret.validation_context;
            assert.deepEqual(body.watched_directory, { path: POD_PATHS.tlsDir });
        }
    });

    it("has sized circuit breakers on every remote cluster, and no outlier detection (one host: Envoy's panic threshold would route to it anyway)", () => {
        for (const cl of dev.clusters) {
            const c = upstream(`thanos_${cl.name}`);
            const t = c.circuit_breakers.thresholds[0];
            assert.ok(t.max_requests >= 4096 && t.max_pending_requests >= 1024 && t.max_connections >= 1024, JSON.stringify(t));
            assert.equal(c.outlier_detection, undefined);
            assert.equal(c.load_assignment.endpoints.flatMap((e: any) => e.lb_endpoints).length, 1);
        }
    });

    it("takes listeners and clusters from LDS and CDS files in the ConfigMap, re-read when kubelet swaps its ..data directory", () => {
        const watched = (file: string) => ({
            path_config_source: { path: `${POD_PATHS.configDir}/${file}`, watched_directory: { path: POD_PATHS.configDir } },
            resource_api_version: "V3",
        });
        assert.deepEqual(bootstrap.dynamic_resources, { lds_config: watched(FILES.listeners), cds_config: watched(FILES.clusters) });
        assert.deepEqual(
            bootstrap.static_resources.listeners.map((l: any) => l.name),
            ["metrics"],
            "the bootstrap holds nothing per observed cluster",
        );
        assert.deepEqual(
            bootstrap.static_resources.clusters.map((c: any) => c.name),
            ["envoy_admin"],
        );
        const files = renderEnvoyFiles({ envoy: dev.envoy, clusters: dev.clusters });
        assert.deepEqual(Object.keys(files).sort(), [FILES.bootstrap, FILES.clusters, FILES.listeners, FILES.clientCertificateSds, FILES.trustedCaSds].sort());
        assert.equal(files[FILES.bootstrap], renderEnvoyFiles({ envoy: dev.envoy, clusters: dev.clusters.slice(0, 1) })[FILES.bootstrap]);
        const lds = YAML.parse(files[FILES.listeners]);
        assert.ok(lds.resources.every((r: any) => r["@type"] === "type.googleapis.com/envoy.config.listener.v3.Listener"));
        const cds = YAML.parse(files[FILES.clusters]);
        assert.ok(cds.resources.every((r: any) => r["@type"] === "type.googleapis.com/envoy.config.cluster.v3.Cluster"));
        for (const l of lds.resources) {
            // The two files are applied one after the other; a listener must not wait for its cluster.
            assert.equal(hcmOf(l).route_config.validate_clusters, false);
        }
    });

    it("bounds each HTTP/2 stream's buffering with flow-control windows, downstream and upstream", () => {
        const windows = { initial_stream_window_size: 1024 * 1024, initial_connection_window_size: 4 * 1024 * 1024 };
        for (const cl of dev.clusters) {
            assert.deepEqual(hcmOf(listener(`thanos_${cl.name}`)).http2_protocol_options, windows);
            const options = upstream(`thanos_${cl.name}`).typed_extension_protocol_options["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"];
            assert.deepEqual(options.explicit_http_config.http2_protocol_options, { connection_keepalive: { interval: "30s", timeout: "10s" }, ...windows });
        }
    });

    it("opens a new upstream connection after envoy.maxRequestsPerConnection streams, below ingress-nginx's 1000", () => {
        assert.ok(dev.envoy.maxRequestsPerConnection < 1000, "the default must stay below ingress-nginx's keep-alive-requests");
        const chosen = model({ ...rawConfigFromStackFiles(ROOT, "dev").raw, envoy: { maxRequestsPerConnection: 250 } });
        for (const [m, expected] of [
            [dev, dev.envoy.maxRequestsPerConnection],
            [chosen, 250],
        ] as const) {
            for (const c of (buildClusters({ envoy: m.envoy, clusters: m.clusters }) as any).resources) {
                const options = c.typed_extension_protocol_options["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"];
                assert.deepEqual(options.common_http_protocol_options, { max_requests_per_connection: expected });
            }
        }
    });

    it("logs requests to stdout only when envoy.accessLog is set", () => {
        assert.equal(hcmOf(listener("thanos_cl1")).access_log, undefined);
        const logged = model({ renderDirectory: "x", envoy: { accessLog: true }, clusters: [{ name: "a", host: "a.example.com" }] });
        const hcm = hcmOf((buildListeners({ envoy: logged.envoy, clusters: logged.clusters }) as any).resources[0]);
        assert.deepEqual(hcm.access_log, [
            { name: "envoy.access_loggers.stdout", typed_config: { "@type": "type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog" } },
        ]);
    });

    it("gives every filter and extension a typed_config (the router too) and uses no deprecated names", () => {
        assert.deepEqual(filtersWithoutTypedConfig([bootstrap, listeners, upstreams]), []);
        const text = YAML.stringify([bootstrap, listeners, upstreams]);
        assert.doesNotMatch(text, /envoy\.http_connection_manager\b/);
        assert.doesNotMatch(text, /envoy\.api\.v2|\.v2\./);
        for (const l of listeners) {
            assert.equal(hcmOf(l).http_filters.at(-1).name, "envoy.filters.http.router");
            assert.ok(hcmOf(l).http_filters.at(-1).typed_config["@type"].endsWith("router.v3.Router"));
        }
    });

    it("binds admin to loopback and exposes only /stats/prometheus and /ready on the metrics port, which answers /live itself", () => {
        assert.equal(bootstrap.admin.address.socket_address.address, "127.0.0.1");
        const routes = hcmOf(listener("metrics")).route_config.virtual_hosts[0].routes;
        const toAdmin = routes.filter((r: any) => r.route?.cluster === "envoy_admin").map((r: any) => r.match);
        assert.deepEqual(toAdmin, [{ path: "/stats/prometheus" }, { path: "/ready" }]);
        assert.deepEqual(
            routes.find((r: any) => r.match.path === "/live"),
            { match: { path: "/live" }, direct_response: { status: 200 } },
        );
        assert.deepEqual(routes.at(-1), { match: { prefix: "/" }, direct_response: { status: 404 } });
        const admin = upstream("envoy_admin");
        assert.deepEqual(admin.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address, {
            address: "127.0.0.1",
            port_value: dev.envoy.adminPort,
        });
    });

    it("limits downstream connections globally, except on the metrics listener that the probes use", () => {
        const monitor = bootstrap.overload_manager.resource_monitors[0];
        assert.equal(monitor.name, "envoy.resource_monitors.global_downstream_max_connections");
        assert.equal(monitor.typed_config.max_active_downstream_connections, dev.envoy.maxDownstreamConnections);
        assert.equal(listener("metrics").ignore_global_conn_limit, true);
        for (const cl of dev.clusters) assert.equal(listener(`thanos_${cl.name}`).ignore_global_conn_limit, undefined);
    });

    it("sheds load before the memory limit: the heap monitor is 80 % of it, shrink the heap at 90 %, refuse new requests at 95 %", () => {
        const heap = bootstrap.overload_manager.resource_monitors[1];
        assert.equal(heap.name, "envoy.resource_monitors.fixed_heap");
        assert.equal(heap.typed_config.max_heap_size_bytes, Math.floor(512 * 1024 * 1024 * 0.8));
        assert.deepEqual(
            bootstrap.overload_manager.actions.map((a: any) => [a.name, a.triggers[0].name, a.triggers[0].threshold.value]),
            [
                ["envoy.overload_actions.shrink_heap", "envoy.resource_monitors.fixed_heap", 0.9],
                ["envoy.overload_actions.stop_accepting_requests", "envoy.resource_monitors.fixed_heap", 0.95],
            ],
        );
        const small = model({
            renderDirectory: "x",
            envoy: { resources: { limits: { memory: "1Gi" } }, heapPercentOfMemoryLimit: 50 },
            clusters: [{ name: "a", host: "a" }],
        });
        assert.equal((buildBootstrap({ envoy: small.envoy }) as any).overload_manager.resource_monitors[1].typed_config.max_heap_size_bytes, 512 * 1024 * 1024);
    });

    it("contains no certificate or key material, only file paths", () => {
        const files = renderEnvoyFiles({ envoy: dev.envoy, clusters: dev.clusters });
        for (const text of Object.values(files)) {
            assert.doesNotMatch(text, /BEGIN/);
        }
    });

    it("is what `npm run envoy-config -- dev` prints (the bootstrap)", () => {
        const printed = execFileSync(process.execPath, ["--import", "tsx", path.join(ROOT, "tools/envoy-config.ts"), "dev"], { cwd: ROOT }).toString();
        assert.equal(printed, renderEnvoyFiles({ envoy: dev.envoy, clusters: dev.clusters })[FILES.bootstrap]);
        assert.deepEqual(YAML.parse(printed), bootstrap);
    });

    it("`npm run envoy-config` names the bad key and exits non-zero on an invalid stack", () => {
        let failure: any;
        try {
            execFileSync(process.execPath, ["--import", "tsx", path.join(ROOT, "tools/envoy-config.ts"), "no-such-stack"], { cwd: ROOT, stdio: "pipe" });
        } catch (err) {
            failure = err;
        }
        assert.equal(failure?.status, 1);
        assert.match(String(failure.stderr), /no stack file .*Pulumi\.no-such-stack\.yaml/);
    });
});
