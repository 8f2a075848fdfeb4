import BridgeTestSupport
import Foundation
import Logging
import Metrics
import MetricsTestKit
import NIOCore
import NIOHTTP1
import ServiceLifecycle
import Testing
import Tracing

@testable import WebhookBridge

/// The bridge's own OTLP/HTTP span exporter against `scripts/otlp-receiver.py`, which decodes
/// every batch with opentelemetry-proto's own messages (and OTLP's JSON with hex ids): the
/// encodings, the batching, the bounded queue, the flush at shutdown, and the `OTEL_*`
/// variables.
@Suite("OTLP/HTTP span export: encodings, batches, queue, shutdown, OTEL_* variables", .serialized)
struct SpanExportTests {
    static let quiet = Logger(label: "span-export-tests") { _ in SwiftLogNoOpLogHandler() }

    static func config(_ endpoint: String, transport: BridgeConfig.Tracing.Transport = .httpProtobuf) -> BridgeConfig.Tracing {
        BridgeConfig.Tracing(otlpEndpoint: endpoint, transport: transport)
    }

    /// Runs `exporter` as a service around `body`, then stops it gracefully.
    static func running(_ exporter: OTLPSpanExporter, _ body: () async throws -> Void) async throws {
        let group = ServiceGroup(services: [exporter], logger: quiet)
        let task = Task { try await group.run() }
        try await body()
        await group.triggerGracefulShutdown()
        try await task.value
    }

    static func exporter(
        _ receiver: OTLPReceiver, transport: BridgeConfig.Tracing.Transport = .httpProtobuf,
        environment: [String: String] = [:], counters: (@Sendable () -> OTLPSpanExporter.Counters)? = nil
    ) throws -> OTLPSpanExporter {
        let settings = try OTLPSpanExporter.Settings(
            config: config("http://127.0.0.1:\(receiver.httpPort)", transport: transport), environment: environment)
        return OTLPSpanExporter(settings: settings, logger: quiet, counters: counters ?? OTLPSpanExporter.Counters.standard)
    }

    /// The exporter's two counters under a dimension of this test's own (the metrics backend
    /// is the test process's, shared by suites that run at once), and their readings.
    static func counters(_ test: String) -> (make: @Sendable () -> OTLPSpanExporter.Counters, read: () throws -> (Int64, Int64)) {
        let metrics = SharedTestMetrics.instance
        let label = "test.tracing.spans.total"
        let make: @Sendable () -> OTLPSpanExporter.Counters = {
            OTLPSpanExporter.Counters(
                exported: Counter(label: label, dimensions: [("test", test), ("result", "exported")]),
                dropped: Counter(label: label, dimensions: [("test", test), ("result", "dropped")]))
        }
        let read = {
            (
                try metrics.expectCounter(label, [("test", test), ("result", "exported")]).totalValue,
                try metrics.expectCounter(label, [("test", test), ("result", "dropped")]).totalValue
            )
        }
        return (make, read)
    }

    @Test(
        "protobuf and JSON bodies: ids, parent, kind, times, trace state, string/int/bool attributes, error status with its message, resource and scope, as opentelemetry-proto reads them",
        OTLPReceiver.required, arguments: [BridgeConfig.Tracing.Transport.httpProtobuf, .httpJSON])
    func encodings(transport: BridgeConfig.Tracing.Transport) async throws {
        let receiver = try OTLPReceiver()
        defer { receiver.stop() }
        let exporter = try Self.exporter(
            receiver, transport: transport,
            environment: ["OTEL_BSP_SCHEDULE_DELAY": "20", "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=test%20one"])
        let incoming = try #require(
            IncomingTraceContext(
                headers: ["traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "tracestate": "vendor=abc"]))
        var traceParent = ""
        try await Self.running(exporter) {
            let root = OwnTracer(exporter: exporter).start("POST /gh", kind: .server, incoming: incoming)
            traceParent = root.traceParent
            root.set("http.response.status_code", .int(503))
            root.set("webhook.source", .string("gh"))
            root.set("webhook.source", .string("gh2"))  // set again: replaced, not repeated
            root.set("webhook.long", .string(String(repeating: "é", count: 600)))  // 1200 bytes: cut to 1024
            root.fail(nil)
            let child = root.child("webhook.deliver bus", kind: .producer)
            child.set("webhook.sink.required", .bool(true))
            child.set("webhook.sink.result", .string("failed"))
            child.fail("the broker is down")
            child.end()
            root.end()
            root.end()  // a second end exports nothing
            #expect(await eventually { receiver.spans.count >= 2 }, "\(receiver.spans.map(\.json))")
        }
        let spans = receiver.spans
        #expect(spans.count == 2, "\(spans.map(\.json))")
        let server = try #require(spans.first { $0.name == "POST /gh" })
        let delivery = try #require(spans.first { $0.name == "webhook.deliver bus" })
        #expect(server.transport == (transport == .httpJSON ? "http/json" : "http/protobuf"))
        #expect(server.traceID == "4bf92f3577b34da6a3ce929d0e0e4736")
        #expect(server.parentSpanID == "00f067aa0ba902b7")
        #expect(traceParent == "00-4bf92f3577b34da6a3ce929d0e0e4736-\(server.spanID)-01")
        #expect(server.kind == 2 && delivery.kind == 4)
        #expect(delivery.traceID == server.traceID && delivery.parentSpanID == server.spanID)
        #expect(server.spanID.count == 16 && server.spanID != delivery.spanID)
        #expect(server.json["trace_state"]?.scalarText == "vendor=abc")
        #expect(server.json["attributes"]?["http.response.status_code"] == .number("503"))
        #expect(server.attribute("webhook.source") == "gh2")
        if case .object(let members)? = server.json["attributes"] {
            #expect(members.count == 3)
        } else {
            Issue.record("no attributes")
        }
        #expect(server.attribute("webhook.long") == String(repeating: "é", count: 512) + "… (1200 bytes)")
        #expect(delivery.json["attributes"]?["webhook.sink.required"] == .bool(true))
        #expect(server.json["status_code"] == .number("2") && delivery.json["status_code"] == .number("2"))
        #expect(delivery.json["status_message"]?.scalarText == "the broker is down")
        let start = try #require(server.json["start_time_unix_nano"]?.scalarText.flatMap { UInt64($0) })
        let end = try #require(server.json["end_time_unix_nano"]?.scalarText.flatMap { UInt64($0) })
        let now = UInt64(Date().timeIntervalSince1970 * 1e9)
        #expect(start <= end && end <= now && now - start < 60_000_000_000, "\(start) \(end) \(now)")
        #expect(server.json["service_name"]?.scalarText == "webhook-bridge")
        #expect(server.json["resource"]?["deployment.environment"]?.scalarText == "test one")
        #expect(server.json["resource"]?["telemetry.sdk.language"]?.scalarText == "swift")
        #expect(server.json["scope"]?.scalarText == "webhook-bridge")
    }

    @Test(
        "a full batch leaves at once (the delay is a minute) with whatever else is queued, in exports of at most a batch, all on one kept-alive connection; what is queued at shutdown is sent",
        OTLPReceiver.required)
    func batchesAndShutdown() async throws {
        let receiver = try OTLPReceiver()
        defer { receiver.stop() }
        let exporter = try Self.exporter(
            receiver, environment: ["OTEL_BSP_SCHEDULE_DELAY": "60000", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "3"])
        let tracer = OwnTracer(exporter: exporter)
        // Queued before the exporter runs: ended while it ran, the exporter could take the
        // queue after the fifth or sixth span, and the one or two after it would wait out the
        // minute.
        for index in 0..<7 { tracer.start("span \(index)", kind: .server, incoming: nil).end() }
        try await Self.running(exporter) {
            // Full batches leave at once, long before the minute is up.
            #expect(await eventually { receiver.spans.count == 7 }, "\(receiver.spans.count)")
            #expect(receiver.batchSizes.allSatisfy { $0 <= 3 }, "\(receiver.batchSizes)")
            // Less than a batch: it waits for the delay, or the shutdown.
            for index in 7..<9 { tracer.start("span \(index)", kind: .server, incoming: nil).end() }
        }
        #expect(await eventually { receiver.spans.count >= 9 })
        #expect(receiver.spans.map(\.name).sorted() == (0..<9).map { "span \($0)" })
        #expect(Set(receiver.spans.map(\.traceID)).count == 9)
        // Every batch on one kept-alive connection.
        #expect(Set(receiver.spans.map { $0.json["peer"]?.scalarText ?? "" }).count == 1, "\(receiver.batchSizes)")
        #expect(receiver.batchSizes.count >= 3)
    }

    @Test(
        "past OTEL_BSP_MAX_QUEUE_SIZE spans are dropped, not held: the queue's spans are sent, the rest are not",
        OTLPReceiver.required)
    func boundedQueue() async throws {
        let receiver = try OTLPReceiver()
        defer { receiver.stop() }
        let counters = Self.counters("bounded-queue")
        let exporter = try Self.exporter(
            receiver, environment: ["OTEL_BSP_SCHEDULE_DELAY": "60000", "OTEL_BSP_MAX_QUEUE_SIZE": "4"],
            counters: counters.make)
        // Ended before the exporter runs: nothing takes them off the queue.
        let tracer = OwnTracer(exporter: exporter)
        for index in 0..<10 { tracer.start("span \(index)", kind: .server, incoming: nil).end() }
        try await Self.running(exporter) {}
        // The receiver's lines reach this process through a pipe another thread reads.
        #expect(await eventually { receiver.spans.count >= 4 })
        #expect(receiver.spans.map(\.name).sorted() == (0..<4).map { "span \($0)" })
        // webhook_tracing_spans_total: 4 exported, 6 dropped.
        let (exported, dropped) = try counters.read()
        #expect(exported == 4 && dropped == 6, "exported \(exported), dropped \(dropped)")
    }

    @Test(
        "a collector that is down costs spans, never the caller: ending spans returns at once, and at shutdown the queue is dropped after the first failed export instead of tried batch by batch"
    )
    func collectorDown() async throws {
        let settings = try OTLPSpanExporter.Settings(
            config: Self.config("http://127.0.0.1:1"),
            // A network that drops the connection attempt instead of refusing it ends the
            // export at the timeout: half a second, not the default 10 s.
            environment: ["OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "2", "OTEL_EXPORTER_OTLP_TIMEOUT": "500"])
        let counters = Self.counters("collector-down")
        let exporter = OTLPSpanExporter(settings: settings, logger: Self.quiet, counters: counters.make)
        let tracer = OwnTracer(exporter: exporter)
        let started = ContinuousClock.now
        try await Self.running(exporter) {
            for index in 0..<50 { tracer.start("span \(index)", kind: .server, incoming: nil).end() }
        }
        // 25 batches with a retry a second later each would take 25 s.
        #expect(ContinuousClock.now - started < .seconds(10))
        // Every span is counted as dropped, whether its batch failed or was given up at the stop.
        let (exported, dropped) = try counters.read()
        #expect(exported == 0 && dropped == 50, "exported \(exported), dropped \(dropped)")
    }

    @Test(
        "OTEL_* variables: endpoint, protocol, headers, timeout, batch settings, service name and resource over the config; bad values are named"
    )
    func environment() throws {
        var config = Self.config("http://collector:4318")
        config.headers = ["x-team": "config", "x-keep": "1"]
        config.serviceName = "from-config"
        let plain = try OTLPSpanExporter.Settings(config: config, environment: [:])
        #expect(plain.host == "collector" && plain.port == 4318 && plain.path == "/v1/traces" && plain.sslContext == nil)
        #expect(!plain.json && plain.scheduleDelay == .seconds(5) && plain.maxQueueSize == 2048)
        #expect(plain.resource.first.map { $0.0 == "service.name" && $0.1 == .string("from-config") } == true)

        let set = try OTLPSpanExporter.Settings(
            config: config,
            environment: [
                "OTEL_EXPORTER_OTLP_ENDPOINT": "https://otlp.example.com/base/",
                "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json",
                "OTEL_EXPORTER_OTLP_HEADERS": "X-Team=env%20team,api-key=k%3D1",
                "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": "2500",
                "OTEL_BSP_SCHEDULE_DELAY": "100",
                "OTEL_BSP_MAX_QUEUE_SIZE": "10",
                "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "50",
                "OTEL_RESOURCE_ATTRIBUTES": "service.name=from-attributes,region=eu",
            ])
        #expect(set.host == "otlp.example.com" && set.port == 443 && set.path == "/base/v1/traces" && set.sslContext != nil)
        #expect(set.json && set.timeout == .milliseconds(2500) && set.scheduleDelay == .milliseconds(100))
        // A batch is never larger than the queue.
        #expect(set.maxQueueSize == 10 && set.maxExportBatchSize == 10)
        let headers = Dictionary(uniqueKeysWithValues: set.headers)
        #expect(headers == ["x-keep": "1", "X-Team": "env team", "api-key": "k=1"])
        #expect(set.resource.first { $0.0 == "service.name" }?.1 == .string("from-attributes"))
        #expect(set.resource.contains { $0.0 == "region" && $0.1 == .string("eu") })
        #expect(set.resource.filter { $0.0 == "service.name" }.count == 1)

        let named = try OTLPSpanExporter.Settings(
            config: config,
            environment: [
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://traces:9999/custom",
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://ignored:1",
                "OTEL_SERVICE_NAME": "from-env", "OTEL_RESOURCE_ATTRIBUTES": "service.name=loses",
            ])
        #expect(named.host == "traces" && named.port == 9999 && named.path == "/custom")
        #expect(named.resource.first { $0.0 == "service.name" }?.1 == .string("from-env"))

        // An empty traces-specific variable is unset: the general one applies.
        let general = try OTLPSpanExporter.Settings(
            config: config,
            environment: [
                "OTEL_EXPORTER_OTLP_TRACES_HEADERS": "", "OTEL_EXPORTER_OTLP_HEADERS": "x-general=1,Content-Type=text/plain",
            ])
        #expect(general.headers.contains { $0 == ("x-general", "1") })
        #expect(!general.headers.contains { $0.0.lowercased() == "content-type" })

        for (name, value) in [
            ("OTEL_BSP_SCHEDULE_DELAY", "soon"), ("OTEL_BSP_SCHEDULE_DELAY", "0"),
            ("OTEL_BSP_EXPORT_TIMEOUT", "99999999999999999"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "-1"), ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "0"), ("OTEL_BSP_MAX_QUEUE_SIZE", "0"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "thrift"), ("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318"),
            ("OTEL_EXPORTER_OTLP_CERTIFICATE", "/nonexistent/ca.pem"), ("OTEL_EXPORTER_OTLP_HEADERS", "no-equals-sign"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "bad name=1"), ("OTEL_EXPORTER_OTLP_HEADERS", "x=a%0D%0Ab"),
            ("OTEL_RESOURCE_ATTRIBUTES", "region"),
        ] {
            var environment = [name: value]
            if name.hasSuffix("CERTIFICATE") { environment["OTEL_EXPORTER_OTLP_ENDPOINT"] = "https://collector:4318" }
            let error = #expect(throws: ConfigurationFailure.self, "\(name)=\(value)") {
                try OTLPSpanExporter.Settings(config: config, environment: environment)
            }
            let text = error?.description ?? ""
            #expect(text.hasPrefix(name), "\(name): \(text)")
        }
    }
}
