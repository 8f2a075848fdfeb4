import BridgeTestSupport
import CoreMetrics
import MetricsTestKit
import Testing
@_spi(Testing) import WebhookBridge
import WebhookCore

/// One test metrics backend for the whole test process (the metrics system is global).
enum SharedTestMetrics {
    static let instance: TestMetrics = {
        let metrics = TestMetrics()
        MetricsSystem.bootstrap(metrics)
        return metrics
    }()
}

@Suite("Verification metrics")
struct MetricsTests {
    @Test("verifications are counted per source, result and matching secret; deliveries and latency per sink")
    func rotationIsVisible() async throws {
        let metrics = SharedTestMetrics.instance
        let config = """
            {"listen": {"host": "127.0.0.1", "port": 0},
             "sinks": {"metered": {"type": "file", "path": "{dir}/events.jsonl"}},
             "sources": {"rotating": {"path": "/r", "verify": {"scheme": "github", "secrets": ["old", "gh-secret"]}, "sinks": ["metered"]}}}
            """
        try await RunningBridge.with(config: config) { bridge in
            for index in 0..<3 {
                let body = #"{"n": \#(index)}"#
                _ = try await bridge.post(
                    "/r", headers: githubHeaders(body, delivery: "m-\(index)", secret: "gh-secret"), body: body)
            }
            _ = try await bridge.post("/r", headers: githubHeaders("{}", delivery: "m-old", secret: "old"), body: "{}")
            _ = try await bridge.post("/r", headers: githubHeaders("{}", delivery: "m-bad", secret: "neither"), body: "{}")
        }
        let new = try metrics.expectCounter(
            "webhook.verifications.total",
            [
                ("webhook.source", "rotating"), ("webhook.result", "ok"), ("webhook.key", "1"),
            ])
        #expect(new.totalValue == 3)
        let old = try metrics.expectCounter(
            "webhook.verifications.total",
            [
                ("webhook.source", "rotating"), ("webhook.result", "ok"), ("webhook.key", "0"),
            ])
        #expect(old.totalValue == 1)
        let rejected = try metrics.expectCounter(
            "webhook.verifications.total",
            [
                ("webhook.source", "rotating"), ("webhook.result", "signature_invalid"),
            ])
        #expect(rejected.totalValue == 1)
        let delivered = try metrics.expectCounter("webhook.sink.deliveries.total", [("sink.name", "metered"), ("sink.result", "ok")])
        #expect(delivered.totalValue == 4)
        let latency = try metrics.expectTimer("webhook.sink.latency.seconds", [("sink.name", "metered")])
        #expect(latency.values.count == 4)
    }

    @Test("a sink's spool backlog gauge grows as events are spooled, not only as the forwarder advances")
    func backlogGrowsDuringOutage() async throws {
        let metrics = SharedTestMetrics.instance
        let nobody = try RedisServer.freePort()  // nothing listens there: every delivery fails
        let config = """
            {"listen": {"host": "127.0.0.1", "port": 0},
             "limits": {"ackTimeoutMs": 1000},
             "spool": {"directory": "{dir}/spool"},
             "sinks": {"outage": {"type": "redis", "url": "redis://127.0.0.1:\(nobody)/0", "stream": "s"}},
             "sources": {"gh": {"path": "/gh", "verify": {"scheme": "github", "secrets": ["gh-secret"]}, "sinks": ["outage"]}}}
            """
        try await RunningBridge.with(config: config) { bridge in
            for index in 0..<3 {
                let body = #"{"n": \#(index)}"#
                let answer = try await bridge.post("/gh", headers: githubHeaders(body, delivery: "b-\(index)"), body: body)
                #expect(answer.status == .accepted)
            }
            let gauge = try metrics.expectGauge("webhook.spool.backlog_bytes", [("sink.name", "outage")])
            #expect((gauge.lastValue ?? 0) > 0, "\(gauge.values)")
            #expect(Int(gauge.lastValue ?? 0) == bridge.bridge.spoolBacklog(for: "outage"))
        }
    }
}
