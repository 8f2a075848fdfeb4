import BridgeTestSupport
import Foundation
import Testing
import WebhookBridge
import WebhookCore
import WebhookEncoding
import WebhookProviders

/// What the operator reads: lines a request can't forge, failures that don't flood, and
/// reloads that say what they could not apply (SPEC section 8).
@Suite("The log, as an operator reads it", .serialized)
struct OperatorLogTests {
    func stripeHeaders(_ body: String) throws -> [(String, String)] {
        try WebhookSigner.sign(
            scheme: "stripe", .init(body: Array(body.utf8), secret: "whsec_s", timestamp: Int64(Date().timeIntervalSince1970))
        ).headers
    }

    @Test("a newline or terminal escape in a signed event's type is logged escaped: it can't start a forged line")
    func noForgedLines() throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let port = try RedisServer.freePort()
        let config = try writeConfig(
            """
            {"listen": {"host": "127.0.0.1", "port": \(port)},
             "sinks": {"archive": {"type": "file", "path": "\(directory.file("events.jsonl"))"}},
             "sources": {"stripe": {"path": "/stripe", "verify": {"scheme": "stripe", "secrets": ["whsec_s"]},
                                    "routes": [{"types": ["invoice.*"], "sinks": ["archive"]}]}}}
            """, in: directory)
        // Debug: a filtered event is logged at debug, with its type.
        let server = try BridgeProcess(config: config, environment: ["LOG_LEVEL": "debug"])
        let forged = "2026-12-01T00:00:00+0000 critical webhook-bridge: forged"
        // JSON escapes: the parsed type holds a real newline and a real ESC.
        let body = #"{"id": "evt_1", "type": "charge\n\#(forged) \u001b[2J"}"#
        let connection = try KeepAliveConnection(port: port)
        // No route takes the event: the bridge logs it (debug), with the type.
        let offset = server.logLength
        #expect(try connection.post("/stripe", headers: stripeHeaders(body), body: body).status == 200)
        #expect(server.waitForLog("no route takes the event", after: offset), "\(server.logText)")
        let log = server.logText
        #expect(!log.split(separator: "\n").contains { $0.hasPrefix(forged) }, "\(log)")
        #expect(!log.contains("\u{1b}"))
        #expect(log.contains(#"charge\n2026-12-01T00:00:00+0000 critical webhook-bridge: forged \u{1b}[2J"#), "\(log)")
        #expect(server.terminate() == 0)
    }

    @Test("during an outage, one failure line per interval with a count, not one per request")
    func failuresThrottled() async throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let port = try RedisServer.freePort()
        let nobody = try RedisServer.freePort()  // nothing listens there: every delivery fails
        let config = try writeConfig(
            """
            {"listen": {"host": "127.0.0.1", "port": \(port)},
             "limits": {"ackTimeoutMs": 1000},
             "sinks": {"jobs": {"type": "redis", "url": "redis://127.0.0.1:\(nobody)/0", "stream": "webhooks"}},
             "sources": {"gh": {"path": "/gh", "verify": {"scheme": "github", "secrets": ["gh-secret"]}, "sinks": ["jobs"]}}}
            """, in: directory)
        let server = try BridgeProcess(config: config)
        let connection = try KeepAliveConnection(port: port)
        let started = Date()
        for index in 0..<40 {
            let body = #"{"n": \#(index)}"#
            let status = try await offThePool {
                try connection.post("/gh", headers: githubHeaders(body, delivery: "o-\(index)"), body: body).status
            }
            #expect(status == 503)
        }
        // One line per 10 s interval the run spanned (one, unless a loaded machine slowed it).
        let intervals = 1 + Int(Date().timeIntervalSince(started) / 10)
        let lines = server.logText.split(separator: "\n").filter { $0.contains("delivery failed") }
        #expect((1...intervals).contains(lines.count), "\(intervals) intervals: \(lines.joined(separator: "\n"))")
        #expect(lines.dropFirst().allSatisfy { $0.contains("log.suppressed=") })
        #expect(server.terminate() == 0)
    }

    @Test("SIGHUP applies secrets and warns by name about each changed key that needs a restart")
    func reloadWarnsAboutRestartKeys() throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let port = try RedisServer.freePort()
        let otherPort = try RedisServer.freePort()
        let config = directory.file("config.json")
        func write(port: Int, maxBodyBytes: Int, secret: String) throws {
            try Data(
                """
                {"listen": {"host": "127.0.0.1", "port": \(port)},
                 "limits": {"maxBodyBytes": \(maxBodyBytes)},
                 "sinks": {"archive": {"type": "file", "path": "\(directory.file("events.jsonl"))"}},
                 "sources": {"gh": {"path": "/gh", "verify": {"scheme": "github", "secrets": ["\(secret)"]}, "sinks": ["archive"]}}}
                """.utf8
            ).write(to: URL(fileURLWithPath: config))
        }
        try write(port: port, maxBodyBytes: 4096, secret: "old")
        let server = try BridgeProcess(config: config)
        try write(port: otherPort, maxBodyBytes: 8192, secret: "new")
        let offset = server.logLength
        #expect(server.reload(), "\(server.logText)")
        let log = String(server.logText.dropFirst(offset))
        #expect(log.contains("listen.port changed but needs a restart"), "\(log)")
        #expect(log.contains("limits.maxBodyBytes changed but needs a restart"), "\(log)")
        #expect(!log.contains("limits.ackTimeoutMs"), "\(log)")
        // The secret is applied; the port is the running one.
        let connection = try KeepAliveConnection(port: port)
        let body = #"{"n": 1}"#
        #expect(try connection.post("/gh", headers: githubHeaders(body, delivery: "w-1", secret: "new"), body: body).status == 200)
        #expect(server.terminate() == 0)
    }

    /// A `gh` source (github, secret `gh-secret`) into a file sink, on `port`.
    static func githubConfig(port: Int, directory: TemporaryDirectory) throws -> String {
        try writeConfig(
            """
            {"listen": {"host": "127.0.0.1", "port": \(port)},
             "sinks": {"archive": {"type": "file", "path": "\(directory.file("events.jsonl"))"}},
             "sources": {"gh": {"path": "/gh", "verify": {"scheme": "github", "secrets": ["gh-secret"]}, "sinks": ["archive"]}}}
            """, in: directory)
    }

    @Test("a flood of rejections is one line per source and cause, and a 78 KB X-Request-Id is logged as its first 128 bytes")
    func rejectionFloodThrottled() throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let port = try RedisServer.freePort()
        let config = try Self.githubConfig(port: port, directory: directory)
        let server = try BridgeProcess(config: config)
        let requestID = "flood-" + String(repeating: "r", count: 78_000)
        let body = #"{"n": 1}"#
        for n in 0..<100 {
            // Unsigned (refused from the head, which closes the connection) and wrongly signed
            // (refused after the body).
            let headers = n % 2 == 0 ? [] : githubHeaders(body, delivery: "f-\(n)", secret: "wrong")
            let connection = try KeepAliveConnection(port: port)
            #expect(try connection.post("/gh", headers: headers + [("X-Request-Id", requestID)], body: body).status == 401)
        }
        // Lines are written in order: once the reload's line is there, every earlier one is.
        #expect(server.reload())
        let log = server.logText
        let rejected = log.split(separator: "\n").filter { $0.contains("webhook rejected") }
        // One line per cause (a second one only if the run outlasted the 10 s interval).
        #expect((2...4).contains(rejected.count), "\(rejected.count) lines")
        #expect(rejected.contains { $0.contains("signature_missing") } && rejected.contains { $0.contains("signature_invalid") })
        #expect(rejected.allSatisfy { $0.contains("http.request_id=flood-rrr") && $0.utf8.count < 1024 }, "\(rejected.first ?? "")")
        #expect(log.utf8.count < 16_384, "\(log.utf8.count) bytes of log")
        #expect(server.terminate() == 0)
    }

    @Test("each cause of a 401 and 403 is logged at info with its reason and what was checked, never a secret")
    func rejectionsExplained() throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let port = try RedisServer.freePort()
        let config = try writeConfig(
            """
            {"listen": {"host": "127.0.0.1", "port": \(port)},
             "sinks": {"archive": {"type": "file", "path": "\(directory.file("events.jsonl"))"}},
             "sources": {"stripe": {"path": "/stripe", "verify": {"scheme": "stripe", "secrets": ["whsec_first", "whsec_second"]},
                                    "sinks": ["archive"]},
                         "closed": {"path": "/closed", "verify": {"scheme": "none"}, "allow": ["10.0.0.0/8"], "sinks": ["archive"]}}}
            """, in: directory)
        let server = try BridgeProcess(config: config)
        let connection = try KeepAliveConnection(port: port)
        let body = #"{"id": "evt_1", "type": "charge.succeeded"}"#
        let now = Int64(Date().timeIntervalSince1970)
        let forged = try WebhookSigner.sign(scheme: "stripe", .init(body: Array(body.utf8), secret: "whsec_other", timestamp: now))
        #expect(try connection.post("/stripe", headers: forged.headers, body: body).status == 401)
        let stale = try WebhookSigner.sign(
            scheme: "stripe", .init(body: Array(body.utf8), secret: "whsec_first", timestamp: now - 3600))
        #expect(try connection.post("/stripe", headers: stale.headers, body: body).status == 401)
        #expect(try connection.post("/stripe", headers: [], body: body).status == 401)
        #expect(try KeepAliveConnection(port: port).post("/closed", headers: [], body: body).status == 403)
        #expect(server.waitForLog("is not in allow", after: 0), "\(server.logText)")
        let lines = server.logText.split(separator: "\n").filter { $0.contains("webhook rejected") }
        #expect(lines.count == 4, "\(lines)")
        #expect(lines.allSatisfy { $0.contains(" info ") })
        #expect(lines.contains { $0.contains("webhook.reason=signature_invalid") && $0.contains("none of 2 secrets") })
        #expect(lines.contains { $0.contains("webhook.reason=timestamp_expired") && $0.contains("the tolerance is 300 s") })
        #expect(lines.contains { $0.contains("webhook.reason=signature_missing") && $0.contains("Stripe-Signature is missing") })
        #expect(lines.contains { $0.contains("webhook.reason=forbidden") && $0.contains("127.0.0.1") })
        #expect(!server.logText.contains("whsec_first") && !server.logText.contains("whsec_second"))
        #expect(server.terminate() == 0)
    }

    @Test("LOG_FORMAT=json: one JSON object a line with time, level, message, logger and each metadata key as a field")
    func jsonLogs() throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let port = try RedisServer.freePort()
        let config = try Self.githubConfig(port: port, directory: directory)
        let server = try BridgeProcess(config: config, environment: ["LOG_FORMAT": "json"])
        let connection = try KeepAliveConnection(port: port)
        let body = #"{"n": 1}"#
        var headers = githubHeaders(body, delivery: "j-1", secret: "wrong")
        headers.append(("X-Request-Id", "req-json-1"))
        #expect(try connection.post("/gh", headers: headers, body: body).status == 401)
        #expect(server.waitForLog("webhook rejected", after: 0), "\(server.logText)")
        #expect(server.terminate() == 0)
        let lines = server.logText.split(separator: "\n")
        #expect(lines.count >= 3)
        var objects: [JSONValue] = []
        for line in lines {
            guard let object = try? JSONParser.parse(Array(line.utf8)) else {
                Issue.record("not one JSON object: \(line)")
                continue
            }
            objects.append(object)
        }
        #expect(objects.allSatisfy { $0["time"] != nil && $0["level"] != nil && $0["message"] != nil && $0["logger"] != nil })
        let rejected = try #require(objects.first { $0["message"]?.scalarText == "webhook rejected" })
        #expect(rejected["level"]?.scalarText == "info")
        #expect(rejected["webhook.source"]?.scalarText == "gh")
        #expect(rejected["webhook.reason"]?.scalarText == "signature_invalid")
        #expect(rejected["logger"]?.scalarText == "webhook-bridge")
        #expect(rejected["http.request_id"]?.scalarText == "req-json-1")
    }

    @Test(
        "GET /metrics after traffic passes promtool check metrics, with process_* metrics and the build info",
        .enabled(if: MonitoringTests.hasPromtool, "promtool is not installed (scripts/install-test-tools.sh, run by make test)"))
    func prometheusExposition() throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let port = try RedisServer.freePort()
        let config = try Self.githubConfig(port: port, directory: directory)
        let server = try BridgeProcess(config: config)
        let connection = try KeepAliveConnection(port: port)
        let body = #"{"n": 1}"#
        #expect(try connection.post("/gh", headers: githubHeaders(body, delivery: "p-1"), body: body).status == 200)
        #expect(try connection.post("/gh", headers: githubHeaders(body, delivery: "p-2", secret: "wrong"), body: body).status == 401)
        let metrics = try connection.get("/metrics")
        #expect(metrics.status == 200)
        #expect(server.terminate() == 0)
        for name in [
            "webhook_requests_total{", "webhook_verifications_total{", "webhook_sink_deliveries_total{",
            "webhook_sink_latency_seconds_bucket{", "webhook_idempotency_total{", "process_cpu_seconds_total ",
            "process_resident_memory_bytes ", "process_open_fds ", "process_start_time_seconds ", "webhook_bridge_build_info{",
            "webhook_buffered_body_bytes ",
        ] {
            #expect(metrics.body.contains(name), "\(name) is missing")
        }
        // Below Prometheus' default first bucket (5 ms), where a sink's acknowledgement falls.
        let latencyBuckets = metrics.body.split(separator: "\n").filter {
            $0.hasPrefix("webhook_sink_latency_seconds_bucket{")
        }
        for bound in ["0.0005", "0.001", "0.0025", "0.005", "10.0"] {
            #expect(latencyBuckets.contains { $0.contains("le=\"\(bound)\"") }, "no \(bound) s bucket in \(latencyBuckets)")
        }
        let (status, text) = try runTool(try #require(MonitoringTests.promtoolPath), ["check", "metrics"], input: Data(metrics.body.utf8))
        #expect(status == 0, "\(text)")
    }

    @Test(
        "run as an unprivileged user, the server answers (TCP_NODELAY is set at the TCP level: as SOL_SOCKET it was SO_DEBUG, refused to non-root, and every connection was closed)",
        .enabled(if: getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv"), "needs root to drop to nobody with setpriv"))
    func unprivilegedUser() throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        chmod(directory.path, 0o777)
        let port = try RedisServer.freePort()
        let config = try writeConfig(
            """
            {"listen": {"host": "127.0.0.1", "port": \(port)},
             "sinks": {"archive": {"type": "file", "path": "\(directory.file("events.jsonl"))"}},
             "sources": {"stripe": {"path": "/stripe", "verify": {"scheme": "stripe", "secrets": ["whsec_s"]}, "sinks": ["archive"]}}}
            """, in: directory)
        chmod(config, 0o644)
        let server = try BridgeProcess(config: config, unprivileged: true)
        let connection = try KeepAliveConnection(port: port)
        #expect(try connection.get("/healthz").status == 200)
        let body = #"{"id": "evt_nobody", "type": "charge.succeeded"}"#
        #expect(try connection.post("/stripe", headers: stripeHeaders(body), body: body).status == 200)
        let owner = try FileManager.default.attributesOfItem(atPath: directory.file("events.jsonl"))[.ownerAccountID] as? Int
        #expect(owner == 65534, "the event file is written by the unprivileged server")
        server.kill9()
    }
}
