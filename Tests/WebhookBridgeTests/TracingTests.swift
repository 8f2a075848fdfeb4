import BridgeTestSupport
import Foundation
import Synchronization
import Testing
import W3CTraceContext
@testable import WebhookBridge
import WebhookCore
import WebhookEncoding

/// `scripts/otlp-receiver.py` as a child process: a real OTLP/HTTP and OTLP/gRPC endpoint
/// (opentelemetry-proto's messages, grpcio's server) that prints every span it receives.
final class OTLPReceiver: @unchecked Sendable {
    static let python = DeployTests.root.appendingPathComponent(".build-tools/venv/bin/python").path
    /// The trait of the tests that need it: run when its Python packages are installed
    /// (scripts/install-test-tools.sh, which `make test` runs).
    static let required = ConditionTrait.enabled(
        if: isInstalled, "opentelemetry-proto and grpcio are not installed (scripts/install-test-tools.sh, run by make test)")

    static var isInstalled: Bool {
        guard FileManager.default.isExecutableFile(atPath: python) else { return false }
        let check = Process()
        check.executableURL = URL(fileURLWithPath: python)
        check.arguments = ["-c", "import grpc, opentelemetry.proto"]
        check.standardError = FileHandle.nullDevice
        guard (try? check.run()) != nil else { return false }
        check.waitUntilExit()
        return check.terminationStatus == 0
    }

    struct ReceivedSpan: Sendable {
        let json: JSONValue
        var name: String { json["name"]?.scalarText ?? "" }
        var traceID: String { json["trace_id"]?.scalarText ?? "" }
        var spanID: String { json["span_id"]?.scalarText ?? "" }
        var parentSpanID: String { json["parent_span_id"]?.scalarText ?? "" }
        var kind: Int { Int(json["kind"]?.scalarText ?? "") ?? -1 }
        var transport: String { json["transport"]?.scalarText ?? "" }
        func attribute(_ name: String) -> String? { json["attributes"]?[name]?.scalarText }
    }

    private final class Output: Sendable {
        let text = Mutex("")
    }
    private let process = Process()
    private let output = Output()
    let httpPort: Int
    let grpcPort: Int

    init() throws {
        process.executableURL = URL(fileURLWithPath: Self.python)
        process.arguments = [DeployTests.root.appendingPathComponent("scripts/otlp-receiver.py").path]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let handle = pipe.fileHandleForReading
        // The first line names the ports; read it before the draining thread takes over.
        var first = Data()
        while !first.contains(0x0A) {
            let chunk = handle.availableData
            if chunk.isEmpty { throw ServerError("otlp-receiver.py ended: \(String(decoding: first, as: UTF8.self))") }
            first += chunk
        }
        let text = String(decoding: first, as: UTF8.self)
        let line = text.prefix { $0 != "\n" }
        func port(_ name: String) -> Int? {
            line.split(separator: " ").first { $0.hasPrefix(name + "=") }.flatMap { Int($0.dropFirst(name.count + 1)) }
        }
        guard let http = port("http"), let grpc = port("grpc") else { throw ServerError("otlp-receiver.py said: \(line)") }
        httpPort = http
        grpcPort = grpc
        output.text.withLock { $0 = String(text.drop { $0 != "\n" }.dropFirst()) }
        let output = self.output
        Thread {
            while true {
                let chunk = handle.availableData
                if chunk.isEmpty { break }
                output.text.withLock { $0 += String(decoding: chunk, as: UTF8.self) }
            }
        }.start()
    }

    /// Every span received so far.
    var spans: [ReceivedSpan] {
        output.text.withLock { $0 }.split(separator: "\n").compactMap { line in
            (try? JSONParser.parse(Array(line.utf8))).map(ReceivedSpan.init)
        }
    }

    /// How many spans each export request carried, in the order they arrived.
    var batchSizes: [Int] {
        var sizes: [Int: Int] = [:]
        for span in spans { sizes[Int(span.json["batch"]?.scalarText ?? "") ?? 0, default: 0] += 1 }
        return sizes.keys.sorted().map { sizes[$0]! }
    }

    /// SIGKILL: a child of the test process inherits its blocked SIGTERM.
    func stop() {
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    deinit { if process.isRunning { stop() } }
}

/// Request spans over OTLP and the CloudEvents distributed-tracing extension on events
/// (SPEC section 9), checked against a real OTLP receiver, the real binary and librdkafka's
/// mock cluster.
@Suite("Tracing: request spans over OTLP and traceparent on events", .serialized)
struct TracingTests {
    static let traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
    static let callerSpanID = "00f067aa0ba902b7"
    /// Spans are exported 50 ms after they end instead of the default 5 s.
    static let environment = ["OTEL_BSP_SCHEDULE_DELAY": "50"]

    func fileConfig(port: Int, directory: TemporaryDirectory, tracing: String?) -> String {
        """
        {"listen": {"host": "127.0.0.1", "port": \(port)},
         \(tracing.map { "\"tracing\": \($0)," } ?? "")
         "sinks": {"archive": {"type": "file", "path": "\(directory.file("events.jsonl"))"}},
         "sources": {"gh": {"path": "/gh", "verify": {"scheme": "github", "secrets": ["gh-secret"]}, "sinks": ["archive"]}}}
        """
    }

    /// A bridge process exporting over OTLP/HTTP to `receiver`, with `settings` added to its
    /// `tracing` object; its port and process.
    func tracedBridge(_ receiver: OTLPReceiver, _ directory: TemporaryDirectory, _ settings: String) throws -> (
        Int, BridgeProcess
    ) {
        let port = try RedisServer.freePort()
        let tracing = #"{"otlpEndpoint": "http://127.0.0.1:\#(receiver.httpPort)", \#(settings)}"#
        let config = try writeConfig(fileConfig(port: port, directory: directory, tracing: tracing), in: directory)
        return (port, try BridgeProcess(config: config, environment: Self.environment))
    }

    func events(in directory: TemporaryDirectory) throws -> [JSONValue] {
        guard let data = FileManager.default.contents(atPath: directory.file("events.jsonl")) else { return [] }
        return try data.split(separator: 0x0A).map { try JSONParser.parse(Array($0)) }
    }

    @Test(
        "OTLP/HTTP: the request's server span continues the caller's traceparent, with children for verify, idempotency and the sink; the event carries the server span",
        OTLPReceiver.required)
    func httpSpans() async throws {
        let receiver = try OTLPReceiver()
        defer { receiver.stop() }
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let (port, server) = try tracedBridge(receiver, directory, #""serviceName": "bridge-under-test""#)
        let connection = try KeepAliveConnection(port: port)
        let body = #"{"action": "opened"}"#
        let traceparent = "00-\(Self.traceID)-\(Self.callerSpanID)-01"
        let accepted = try connection.post(
            "/gh", headers: githubHeaders(body, delivery: "d-1") + [("traceparent", traceparent), ("tracestate", "vendor=abc")],
            body: body)
        #expect(accepted.status == 200)
        // Refused from its head (no signature): a span of its own, with the 401.
        #expect(try connection.post("/gh", headers: [("Content-Type", "application/json")], body: body).status == 401)

        #expect(await eventually { receiver.spans.count >= 5 }, "\(receiver.spans.map(\.json))")
        let spans = receiver.spans
        let servers = spans.filter { $0.kind == 2 }  // SPAN_KIND_SERVER
        let request = try #require(servers.first { $0.traceID == Self.traceID }, "\(spans.map(\.json))")
        #expect(request.name == "POST /gh")
        #expect(request.parentSpanID == Self.callerSpanID)
        #expect(request.transport == "http/protobuf")
        #expect(request.json["service_name"]?.scalarText == "bridge-under-test")
        #expect(request.attribute("http.request.method") == "POST")
        #expect(request.attribute("url.path") == "/gh")
        #expect(request.attribute("http.response.status_code") == "200")
        #expect(request.attribute("webhook.source") == "gh")
        #expect(request.attribute("webhook.id") == "d-1")
        #expect(request.attribute("webhook.verification") == "ok")
        #expect(request.attribute("webhook.outcome") == "accepted")

        let children = spans.filter { $0.parentSpanID == request.spanID }
        #expect(Set(children.map(\.name)) == ["webhook.verify", "webhook.idempotency", "webhook.deliver archive"])
        #expect(children.allSatisfy { $0.traceID == Self.traceID })
        #expect(children.first { $0.name == "webhook.deliver archive" }?.attribute("webhook.sink.result") == "ok")
        #expect(children.first { $0.name == "webhook.idempotency" }?.attribute("webhook.idempotency") == "new")

        let refused = try #require(servers.first { $0.attribute("http.response.status_code") == "401" })
        #expect(refused.traceID != Self.traceID)
        #expect(refused.attribute("webhook.outcome") == "signature_missing")

        // The event names the bridge's request span as its parent, and keeps the tracestate.
        let event = try #require(try events(in: directory).first)
        #expect(event["traceparent"]?.scalarText == "00-\(Self.traceID)-\(request.spanID)-01")
        #expect(event["tracestate"]?.scalarText == "vendor=abc")
        #expect(server.terminate() == 0)
    }

    @Test(
        "sampleRatio 0: a request that is not sampled exports no span and its event still carries the trace's context (flag 00); a sampled caller's request is traced whole",
        OTLPReceiver.required)
    func unsampledRequests() async throws {
        let receiver = try OTLPReceiver()
        defer { receiver.stop() }
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let (port, server) = try tracedBridge(receiver, directory, #""sampleRatio": 0"#)
        let connection = try KeepAliveConnection(port: port)
        let unsampled = #"{"action": "closed"}"#
        #expect(try connection.post("/gh", headers: githubHeaders(unsampled, delivery: "u-1"), body: unsampled).status == 200)
        let sampled = #"{"action": "opened"}"#
        let traceparent = "00-\(Self.traceID)-\(Self.callerSpanID)-01"
        #expect(
            try connection.post(
                "/gh", headers: githubHeaders(sampled, delivery: "s-1") + [("traceparent", traceparent)], body: sampled
            )
            .status == 200)

        #expect(await eventually { receiver.spans.count >= 4 }, "\(receiver.spans.map(\.json))")
        #expect(receiver.spans.allSatisfy { $0.traceID == Self.traceID }, "\(receiver.spans.map(\.json))")
        let events = try events(in: directory)
        let context = try #require(events.first { $0["id"] == .string("u-1") }?["traceparent"]?.scalarText)
        let parts = context.split(separator: "-")
        #expect(
            parts.count == 4 && parts[0] == "00" && parts[1].count == 32 && parts[2].count == 16 && parts[3] == "00", "\(context)"
        )
        #expect(parts.count == 4 && parts[1] != Substring(Self.traceID))
        let traced = try #require(events.first { $0["id"] == .string("s-1") }?["traceparent"]?.scalarText)
        #expect(traced.hasPrefix("00-\(Self.traceID)-") && traced.hasSuffix("-01"))
        #expect(server.terminate() == 0)
    }

    @Test(
        "sampleRatio 1: a caller whose traceparent says not sampled (-00) is followed: no span exported, the event keeps the caller's trace with a span id of its own and -00; a request without one is traced",
        OTLPReceiver.required)
    func unsampledCaller() async throws {
        let receiver = try OTLPReceiver()
        defer { receiver.stop() }
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let (port, server) = try tracedBridge(receiver, directory, #""sampleRatio": 1"#)
        let connection = try KeepAliveConnection(port: port)
        let followed = #"{"action": "closed"}"#
        let parent = "00-\(Self.traceID)-\(Self.callerSpanID)-00"
        #expect(
            try connection.post(
                "/gh", headers: githubHeaders(followed, delivery: "c-1") + [("traceparent", parent)], body: followed
            )
            .status == 200)
        let root = #"{"action": "opened"}"#
        #expect(try connection.post("/gh", headers: githubHeaders(root, delivery: "r-1"), body: root).status == 200)

        #expect(await eventually { receiver.spans.count >= 4 }, "\(receiver.spans.map(\.json))")
        #expect(!receiver.spans.contains { $0.traceID == Self.traceID }, "\(receiver.spans.map(\.json))")
        let events = try events(in: directory)
        let context = try #require(events.first { $0["id"] == .string("c-1") }?["traceparent"]?.scalarText)
        let parts = context.split(separator: "-")
        #expect(parts.count == 4 && parts[1] == Substring(Self.traceID) && parts[3] == "00", "\(context)")
        #expect(parts.count == 4 && parts[2].count == 16 && parts[2] != Substring(Self.callerSpanID), "\(context)")
        let traced = try #require(events.first { $0["id"] == .string("r-1") }?["traceparent"]?.scalarText)
        #expect(receiver.spans.contains { traced.contains($0.traceID) && $0.kind == 2 }, "\(traced)")
        #expect(server.terminate() == 0)
    }

    #if OTLPGRPC
        /// The exporter this build has besides OTLP/HTTP's default protobuf bodies: OTLP/gRPC with
        /// the OTLPGRPC trait, else OTLP/HTTP with JSON bodies.
        static let otherTransport = (name: "grpc", protocolName: "grpc")
    #else
        static let otherTransport = (name: "http/json", protocolName: "http/json")
    #endif

    @Test(
        "OTLP/gRPC (or, built without it, OTLP/HTTP with JSON) into a Kafka sink: a request without traceparent starts a trace, and the Kafka message's ce_traceparent names its span",
        OTLPReceiver.required)
    func grpcSpansAndKafkaHeaders() async throws {
        let receiver = try OTLPReceiver()
        defer { receiver.stop() }
        let cluster = try MockKafkaCluster()
        cluster.createTopic("webhooks")
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let port = try RedisServer.freePort()
        // Port 4317 means gRPC by default; any other port needs "protocol": "grpc".
        let collectorPort = Self.otherTransport.name == "grpc" ? receiver.grpcPort : receiver.httpPort
        let config = try writeConfig(
            """
            {"listen": {"host": "127.0.0.1", "port": \(port)},
             "tracing": {"otlpEndpoint": "http://127.0.0.1:\(collectorPort)", "protocol": "\(Self.otherTransport.protocolName)"},
             "sinks": {"bus": {"type": "kafka", "brokers": "\(cluster.bootstraps)", "topic": "webhooks"}},
             "sources": {"gh": {"path": "/gh", "verify": {"scheme": "github", "secrets": ["gh-secret"]}, "sinks": ["bus"]}}}
            """, in: directory)
        let server = try BridgeProcess(config: config, environment: Self.environment)
        let connection = try KeepAliveConnection(port: port)
        let body = #"{"action": "closed"}"#
        #expect(try connection.post("/gh", headers: githubHeaders(body, delivery: "k-1"), body: body).status == 200)

        #expect(await eventually { receiver.spans.contains { $0.kind == 2 } }, "\(receiver.spans.map(\.json))")
        let request = try #require(receiver.spans.first { $0.kind == 2 })
        #expect(request.transport == Self.otherTransport.name)
        #expect(request.parentSpanID.isEmpty)
        #expect(request.json["service_name"]?.scalarText == "webhook-bridge")
        let messages = await consume(bootstraps: cluster.bootstraps, topic: "webhooks", count: 1, timeout: 10)
        let message = try #require(messages.first)
        #expect(message.header("ce_traceparent") == "00-\(request.traceID)-\(request.spanID)-01")
        #expect(message.header("ce_tracestate") == nil)
        #expect(await eventually { receiver.spans.contains { $0.name == "webhook.deliver bus" } })
        let delivery = try #require(receiver.spans.first { $0.name == "webhook.deliver bus" })
        #expect(delivery.parentSpanID == request.spanID)
        #expect(delivery.kind == 4)  // SPAN_KIND_PRODUCER
        #expect(server.terminate() == 0)
    }

    @Test(
        "without tracing: a valid incoming traceparent is passed on to the event as it came, an invalid one or none adds nothing")
    func passThrough() async throws {
        let config = """
            {"listen": {"host": "127.0.0.1", "port": 0},
             "sinks": {"archive": {"type": "file", "path": "{dir}/events.jsonl"}},
             "sources": {"gh": {"path": "/gh", "verify": {"scheme": "github", "secrets": ["gh-secret"]}, "sinks": ["archive"]}}}
            """
        try await RunningBridge.with(config: config) { bridge in
            let traceparent = "00-\(Self.traceID)-\(Self.callerSpanID)-01"
            let cases: [(id: String, trace: [(String, String)])] = [
                ("with", [("traceparent", traceparent), ("tracestate", "a=1,b=2")]),
                ("invalid", [("traceparent", "00-\(Self.traceID)-0000000000000000-01")]),
                ("none", []),
            ]
            for (id, trace) in cases {
                let body = #"{"case": "\#(id)"}"#
                let answer = try await bridge.post("/gh", headers: githubHeaders(body, delivery: id) + trace, body: body)
                #expect(answer.status == .ok)
            }
            let events = try bridge.lines("events.jsonl")
            let byID = Dictionary(uniqueKeysWithValues: events.map { ($0["id"]?.scalarText ?? "", $0) })
            #expect(byID["with"]?["traceparent"]?.scalarText == traceparent)
            #expect(byID["with"]?["tracestate"]?.scalarText == "a=1,b=2")
            #expect(byID["invalid"]?["traceparent"] == nil)
            #expect(byID["none"]?["traceparent"] == nil)
            #expect(byID["none"]?["tracestate"] == nil)
        }
    }

    @Test(
        "with tracing: an invalid traceparent logs no request header (Cookie, Authorization, tokens), signed or not, and no log line is long"
    )
    func invalidTraceparentLogsNoHeaders() async throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let port = try RedisServer.freePort()
        // Nothing listens on the collector's port: spans are dropped, requests are not.
        let config = try writeConfig(
            fileConfig(port: port, directory: directory, tracing: #"{"otlpEndpoint": "http://127.0.0.1:1"}"#), in: directory)
        let server = try BridgeProcess(config: config)
        let secrets = [
            ("Cookie", "session=COOKIE-SECRET-" + String(repeating: "c", count: 30_000)),
            ("Authorization", "Bearer AUTH-SECRET"),
            ("X-Telegram-Bot-Api-Secret-Token", "TELEGRAM-SECRET"),
        ]
        for traceparent in ["garbage", "00-\(Self.traceID)-0000000000000000-01", "00-zz-\(Self.callerSpanID)-01"] {
            let body = #"{"action": "opened"}"#
            // Unsigned (refused from its head, which closes the connection) and signed
            // (through the pipeline).
            let unsigned = try KeepAliveConnection(port: port).post(
                "/gh", headers: secrets + [("traceparent", traceparent)], body: body)
            #expect(unsigned.status == 401)
            let signed = try KeepAliveConnection(port: port).post(
                "/gh",
                headers: githubHeaders(body, delivery: "t-\(traceparent.count)") + secrets + [("traceparent", traceparent)],
                body: body)
            #expect(signed.status == 200)
        }
        // Lines are written in order: once the reload's line is there, every earlier one is.
        #expect(server.reload())
        let log = server.logText
        for needle in ["COOKIE-SECRET", "AUTH-SECRET", "TELEGRAM-SECRET"] {
            #expect(!log.contains(needle), "\(needle) reached the log: \(log.prefix(2000))")
        }
        #expect(log.split(separator: "\n").allSatisfy { $0.utf8.count < 2048 }, "a log line over 2 KB")
        #expect(server.terminate() == 0)
    }

    @Test(
        "tracestate: only W3C-valid members are passed on (at most 32, 512 characters), and an invalid one never drops a valid traceparent",
        arguments: [false, true])
    func traceStateChecked(recordSpans: Bool) async throws {
        let tracing = recordSpans ? #", "tracing": {"otlpEndpoint": "http://127.0.0.1:1"}"# : ""
        let config = """
            {"listen": {"host": "127.0.0.1", "port": 0}\(tracing),
             "sinks": {"archive": {"type": "file", "path": "{dir}/events.jsonl"}},
             "sources": {"gh": {"path": "/gh", "verify": {"scheme": "github", "secrets": ["gh-secret"]}, "sinks": ["archive"]}}}
            """
        try await RunningBridge.with(config: config) { bridge in
            let traceparent = "00-\(Self.traceID)-\(Self.callerSpanID)-01"
            let many = (0..<250).map { "k\($0)=v\($0)" }.joined(separator: ",")
            let huge = "big=" + String(repeating: "x", count: 65_000)
            let cases: [(id: String, state: String)] = [
                ("many", many),
                ("invalid", "not valid!!"),
                ("mixed", "a=1, BAD=2 ,b@sys=3,c=,d=has=equals,e=ok"),
                ("huge", huge + ",small=1"),
                ("long", (0..<5).map { "l\($0)=" + String(repeating: "y", count: 200) }.joined(separator: ",") + ",s=1"),
            ]
            for (id, state) in cases {
                let body = #"{"case": "\#(id)"}"#
                let answer = try await bridge.post(
                    "/gh", headers: githubHeaders(body, delivery: id) + [("traceparent", traceparent), ("tracestate", state)],
                    body: body)
                #expect(answer.status == .ok)
            }
            let events = try bridge.lines("events.jsonl")
            let byID = Dictionary(uniqueKeysWithValues: events.map { ($0["id"]?.scalarText ?? "", $0) })
            for (id, _) in cases {
                // The caller's trace goes on: as it came, or as the parent of the bridge's span.
                let parent = byID[id]?["traceparent"]?.scalarText ?? ""
                #expect(parent.hasPrefix("00-\(Self.traceID)-"), "\(id): \(parent)")
            }
            // The members, in order (a tracer writes them with optional spaces after commas).
            func members(_ id: String) -> [String]? {
                byID[id]?["tracestate"]?.scalarText.map {
                    $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
                }
            }
            #expect(members("many") == (0..<32).map { "k\($0)=v\($0)" })
            #expect(byID["invalid"]?["tracestate"] == nil)
            #expect(members("mixed") == ["a=1", "b@sys=3", "e=ok"])
            #expect(members("huge") == ["small=1"])
            // Over 512 characters: the members over 128 go first.
            #expect(members("long") == ["s=1"])
        }
    }

    @Test(
        "sampleRatio: the share of new traces started is the ratio (0.25 of 20000 draws within 4 standard deviations), 0 and 1 exactly; ids don't repeat"
    )
    func rootSampling() {
        let quarter = RequestTracing(tracer: nil, service: nil, sampleRatio: 0.25)
        let sampled = (0..<20000).filter { _ in quarter.samplesRoot() }.count
        // Binomial: mean 5000, standard deviation about 61.
        #expect((4756...5244).contains(sampled), "\(sampled)")
        #expect(!(0..<1000).contains { _ in RequestTracing(tracer: nil, service: nil, sampleRatio: 0).samplesRoot() })
        #expect((0..<1000).allSatisfy { _ in RequestTracing(tracer: nil, service: nil, sampleRatio: 1).samplesRoot() })
        let ids = Set((0..<10000).map { _ in TraceIDs.traceID().description })
        #expect(ids.count == 10000)
    }

    @Test(
        "an unsampled request's traceparent: 00, the caller's trace id or a new one, a new span id, flags 00; W3C's parser reads it"
    )
    func unsampledParent() throws {
        let caller = TraceIDs.traceID()
        let kept = TraceIDs.unsampledParent(traceID: caller)
        let parsed = try TraceContext(traceParentHeaderValue: kept, traceStateHeaderValue: nil)
        #expect(parsed.traceID == caller)
        #expect(!parsed.flags.contains(.sampled))
        #expect(kept.hasPrefix("00-\(caller)-") && kept.hasSuffix("-00") && kept.utf8.count == 55)
        let fresh = (0..<2000).map { _ in TraceIDs.unsampledParent(traceID: nil) }
        for parent in fresh {
            let context = try TraceContext(traceParentHeaderValue: parent, traceStateHeaderValue: nil)
            #expect(parent == "00-\(context.traceID)-\(context.spanID)-00")
        }
        #expect(Set(fresh.map { $0.split(separator: "-")[1] }).count == 2000)
        #expect(Set(fresh.map { $0.split(separator: "-")[2] }).count == 2000)
    }

    @Test("config: tracing's endpoint, protocol and sampleRatio are checked, each problem with its JSON path")
    func configProblems() throws {
        let config = """
            {"tracing": {"otlpEndpoint": "collector:4318", "protocol": "thrift", "sampleRatio": 2, "exporter": "x"},
             "sinks": {"archive": {"type": "file", "path": "/tmp/x.jsonl"}},
             "sources": {"gh": {"path": "/gh", "verify": {"scheme": "github", "secrets": ["s"]}, "sinks": ["archive"]}}}
            """
        let error = #expect(throws: ConfigError.self) { try Bridge.loadConfig(Array(config.utf8), environment: [:]) }
        let text = error.map { "\($0)" } ?? ""
        #expect(text.contains("tracing.otlpEndpoint"), "\(text)")
        #expect(text.contains("tracing.protocol"), "\(text)")
        #expect(text.contains("tracing.sampleRatio"), "\(text)")
        #expect(text.contains("tracing.exporter"), "\(text)")

        func tracing(
            _ json: String, exporters: BridgeConfig.Tracing.Exporters = .built
        ) throws -> BridgeConfig.Tracing? {
            let text = """
                {"tracing": \(json), "sinks": {"archive": {"type": "file", "path": "/tmp/x.jsonl"}},
                 "sources": {"gh": {"path": "/gh", "verify": {"scheme": "github", "secrets": ["s"]}, "sinks": ["archive"]}}}
                """
            return try ConfigLoader.load(Array(text.utf8), environment: [:], libraries: Bridge.libraries, exporters: exporters)
                .tracing
        }
        // A build with the OTLPGRPC trait takes gRPC, chosen or implied by port 4317.
        let grpc = try #require(
            try tracing(#"{"otlpEndpoint": "http://collector:4317"}"#, exporters: .init(grpc: true)))
        #expect(grpc.transport == .grpc)
        #expect(grpc.tracesURL == "http://collector:4317")
        // Built without it, gRPC is refused with its JSON path, never sent as HTTP to a gRPC port.
        for (json, path) in [
            (#"{"otlpEndpoint": "http://collector:4317"}"#, "tracing.otlpEndpoint"),
            (#"{"otlpEndpoint": "http://collector:9000", "protocol": "grpc"}"#, "tracing.protocol"),
        ] {
            let refusal = #expect(throws: ConfigError.self) { try tracing(json, exporters: .init(grpc: false)) }
            let text = refusal.map { "\($0)" } ?? ""
            #expect(text.contains(path) && text.contains("OTLPGRPC") && text.contains("4318"), "\(text)")
        }
        let http = try #require(try tracing(#"{"otlpEndpoint": "https://otlp.example.com/", "sampleRatio": 0.25}"#))
        #expect(http.transport == .httpProtobuf)
        #expect(http.tracesURL == "https://otlp.example.com/v1/traces")
        #expect(http.sampleRatio == 0.25)
        let full = try #require(try tracing(#"{"otlpEndpoint": "http://c:4318/v1/traces", "protocol": "http/json"}"#))
        #expect(full.tracesURL == "http://c:4318/v1/traces")
        #expect(full.transport == .httpJSON)
        // Headers are written into each export's head as given: a line break, a bad name or a
        // framing header of the exporter's own would break every export, so each is refused.
        let headers = #expect(throws: ConfigError.self) {
            try tracing(
                #"{"otlpEndpoint": "http://c:4318", "headers": {"Authorization": "Bearer t\n", "bad name": "x", "Host": "h", "X-Ok": "1"}}"#
            )
        }
        let headerText = headers.map { "\($0)" } ?? ""
        #expect(headerText.contains("tracing.headers.Authorization") && headerText.contains("line break"), "\(headerText)")
        #expect(headerText.contains("tracing.headers.bad name"), "\(headerText)")
        #expect(headerText.contains("tracing.headers.Host") && headerText.contains("set by the exporter"), "\(headerText)")
        #expect(!headerText.contains("X-Ok"), "\(headerText)")
        let kept = try #require(try tracing(#"{"otlpEndpoint": "http://c:4318", "headers": {"Authorization": "Bearer t"}}"#))
        #expect(kept.headers == ["Authorization": "Bearer t"])
        // The same rule for OTEL_EXPORTER_OTLP_HEADERS, at startup, naming the variable.
        #expect(throws: (any Error).self) {
            try OTLPSpanExporter.Settings(
                config: BridgeConfig.Tracing(otlpEndpoint: "http://c:4318", transport: .httpProtobuf),
                environment: ["OTEL_EXPORTER_OTLP_HEADERS": "Content-Length=5"])
        }
    }
}
