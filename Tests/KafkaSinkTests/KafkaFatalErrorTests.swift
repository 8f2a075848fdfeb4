import BridgeTestSupport
import Foundation
@_spi(Testing) import KafkaSink
import Logging
import Testing
@_spi(Testing) import WebhookBridge
import WebhookCore

/// librdkafka's rule for a fatal error (an idempotent producer fenced, e.g. after a frozen
/// broker): that producer can never produce again; destroy it and make a new one.
@Suite("A fatal producer error: the Kafka sink recovers by itself", .serialized)
struct KafkaFatalErrorTests {
    @Test("after a fatal error the sink replaces its producer: deliveries fail as retryable, then succeed without a restart")
    func sinkRecovers() async throws {
        let cluster = try MockKafkaCluster()
        cluster.createTopic("webhooks.github")
        let sink = try makeSink(cluster, ackTimeoutMs: 3000)
        let delivered = try await running(sink) { () -> [String] in
            var delivered: [String] = []
            for index in 0..<5 {
                _ = try await sink.deliver(event("before-\(index)"))
                delivered.append("before-\(index)")
            }
            sink.raiseFatalErrorForTesting()
            // Until the producer is replaced a delivery fails, and never as a rejection for good.
            var after = 0
            let deadline = Date().addingTimeInterval(20)
            while after < 5, Date() < deadline {
                do {
                    _ = try await sink.deliver(event("after-\(after)"))
                    delivered.append("after-\(after)")
                    after += 1
                } catch let error as SinkError {
                    #expect(!error.isPermanent, "\(error)")
                    try await Task.sleep(for: .milliseconds(50))
                }
            }
            #expect(after == 5, "the sink did not recover")
            #expect(sink.producerGeneration == 1)
            #expect(sink.isReady)
            return delivered
        }
        let messages = await consume(bootstraps: cluster.bootstraps, topic: "webhooks.github", count: delivered.count, timeout: 8)
        let keys = Set(messages.map { String(decoding: $0.key, as: UTF8.self) })
        #expect(Set(delivered).isSubset(of: keys), "acknowledged but missing: \(Set(delivered).subtracting(keys))")
    }

    @Test("a fatal error under load with a spool: every event answered 2xx is in the broker afterwards")
    func nothingAcknowledgedIsLost() async throws {
        let cluster = try MockKafkaCluster()
        cluster.createTopic("webhooks.github")
        let spool = TemporaryDirectory()
        defer { spool.cleanup() }
        let config = """
            {"listen": {"host": "127.0.0.1", "port": 0},
             "limits": {"ackTimeoutMs": 2000},
             "spool": {"directory": "\(spool.path)", "maxBytes": 10485760},
             "sinks": {"bus": {"type": "kafka", "brokers": "\(cluster.bootstraps)", "topic": "webhooks.{source}"}},
             "sources": {"github": {"path": "/gh", "verify": {"scheme": "github", "secrets": ["gh-secret"]}, "sinks": ["bus"]}}}
            """
        try await RunningBridge.with(config: config) { bridge in
            let sink = try #require(bridge.bridge.sink(named: "bus") as? KafkaSink)
            func send(_ id: String) async throws -> Int {
                let body = #"{"delivery": "\#(id)"}"#
                return Int(try await bridge.post("/gh", headers: githubHeaders(body, delivery: id), body: body).status.code)
            }
            let acknowledged = try await withThrowingTaskGroup(of: (String, Int).self) { group in
                for index in 0..<200 {
                    group.addTask { (("e-\(index)"), try await send("e-\(index)")) }
                    if index == 80 { sink.raiseFatalErrorForTesting() }
                }
                return try await group.reduce(into: [String]()) { if (200...202).contains($1.1) { $0.append($1.0) } }
            }
            #expect(acknowledged.count == 200, "with a spool, every event is answered 2xx")
            let messages = await consume(
                bootstraps: cluster.bootstraps, topic: "webhooks.github", count: acknowledged.count, timeout: 20)
            let keys = Set(messages.map { String(decoding: $0.key, as: UTF8.self) })
            #expect(Set(acknowledged).subtracting(keys).isEmpty, "missing: \(Set(acknowledged).subtracting(keys).sorted())")
            #expect(sink.producerGeneration >= 1)
            #expect(try await bridge.get("/readyz").status == .ok)
        }
    }
}
