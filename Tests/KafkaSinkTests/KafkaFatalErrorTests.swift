import BridgeTestSupport
import CRdKafka
import Foundation
@_spi(Testing) import KafkaSink
import Logging
import Testing
@_spi(Testing) import WebhookBridge
import WebhookCore

/// librdkafka's rule for a fatal error (an idempotent producer fenced, e.g. after a frozen
/// broker): that producer can never produce again; destroy it and make a new one. The same
/// goes for a producer whose messages come back fenced or out of sequence, which librdkafka
/// reports only per message.
@Suite("A producer that can't produce again: the Kafka sink recovers by itself", .serialized)
struct KafkaFatalErrorTests {
    /// POSTs a signed GitHub delivery `id`; the status.
    static func post(_ id: String, to bridge: RunningBridge) async throws -> Int {
        let body = #"{"delivery": "\#(id)"}"#
        return Int(try await bridge.post("/gh", headers: githubHeaders(body, delivery: id), body: body).status.code)
    }

    /// The bridge on `cluster` (topic webhooks.{source}) with a spool in `spool`, retried
    /// within a second (the default backoff grows to 5 minutes).
    static func spooledConfig(cluster: MockKafkaCluster, spool: TemporaryDirectory) -> String {
        """
        {"listen": {"host": "127.0.0.1", "port": 0},
         "limits": {"ackTimeoutMs": 2000},
         "spool": {"directory": "\(spool.path)", "maxBytes": 10485760, "retry": {"initialMs": 100, "maxMs": 1000}},
         "sinks": {"bus": {"type": "kafka", "brokers": "\(cluster.bootstraps)", "topic": "webhooks.{source}"}},
         "sources": {"github": {"path": "/gh", "verify": {"scheme": "github", "secrets": ["gh-secret"]}, "sinks": ["bus"]}}}
        """
    }

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
        let config = Self.spooledConfig(cluster: cluster, spool: spool)
        try await RunningBridge.with(config: config) { bridge in
            let sink = try #require(bridge.bridge.sink(named: "bus") as? KafkaSink)
            let send: @Sendable (String) async throws -> Int = { id in try await Self.post(id, to: bridge) }
            let acknowledged = try await withThrowingTaskGroup(of: (String, Int).self) { group in
                for index in 0..<200 {
                    group.addTask { (("e-\(index)"), try await send("e-\(index)")) }
                    if index == 80 { sink.raiseFatalErrorForTesting() }
                }
                return try await group.reduce(into: [String]()) { if (200...202).contains($1.1) { $0.append($1.0) } }
            }
            #expect(acknowledged.count == 200, "with a spool, every event is answered 2xx")
            // Up to a minute, returning as soon as every message is there: under the full suite's
            // load the consumer alone once needed more than 20 s for one partition.
            let messages = await consume(
                bootstraps: cluster.bootstraps, topic: "webhooks.github", count: acknowledged.count, timeout: 60)
            let keys = Set(messages.map { String(decoding: $0.key, as: UTF8.self) })
            #expect(Set(acknowledged).subtracting(keys).isEmpty, "missing: \(Set(acknowledged).subtracting(keys).sorted())")
            #expect(sink.producerGeneration >= 1)
            #expect(try await bridge.get("/readyz").status == .ok)
        }
    }

    /// Errors injected into the Produce requests that follow, in order, and what they stand
    /// for. librdkafka 2.0 to 2.8 reports PRODUCER_FENCED and INVALID_PRODUCER_EPOCH per
    /// message and bumps its epoch locally (no fatal error); OUT_OF_ORDER_SEQUENCE_NUMBER on
    /// the first request in flight is fatal; UNKNOWN_PRODUCER_ID is retried by librdkafka
    /// itself unless the batch was sent before, then fatal: hence the retryable error first.
    struct ProduceErrors: Sendable, CustomTestStringConvertible {
        let errors: [rd_kafka_resp_err_t]
        var testDescription: String { errors.map { String(cString: rd_kafka_err2name($0)) }.joined(separator: ", ") }

        static let all: [ProduceErrors] = [
            ProduceErrors(errors: [RD_KAFKA_RESP_ERR_PRODUCER_FENCED]),
            ProduceErrors(errors: [RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH]),
            ProduceErrors(errors: [RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER]),
            ProduceErrors(errors: [RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS, RD_KAFKA_RESP_ERR_UNKNOWN_PRODUCER_ID]),
        ]
    }

    @Test(
        "a producer fenced or out of sequence on Produce is replaced once: what it held is spooled (202), then delivered with the later events by the new one",
        arguments: ProduceErrors.all)
    func fencedOnProduce(_ injected: ProduceErrors) async throws {
        let cluster = try MockKafkaCluster()
        // One partition: every Produce request goes to one broker, in order, so the injected
        // errors meet the requests they are meant for.
        cluster.createTopic("webhooks.github", partitions: 1)
        let spool = TemporaryDirectory()
        defer { spool.cleanup() }
        let config = Self.spooledConfig(cluster: cluster, spool: spool)
        try await RunningBridge.with(config: config) { bridge in
            let sink = try #require(bridge.bridge.sink(named: "bus") as? KafkaSink)
            let send: @Sendable (String) async throws -> Int = { id in try await Self.post(id, to: bridge) }
            #expect(try await send("first") == 200)

            cluster.failProduceRequests(injected.errors)
            let answers = try await withThrowingTaskGroup(of: (String, Int).self) { group in
                for index in 0..<100 { group.addTask { ("held-\(index)", try await send("held-\(index)")) } }
                return try await group.reduce(into: [String: Int]()) { $0[$1.0] = $1.1 }
            }
            #expect(
                answers.values.allSatisfy { (200...202).contains($0) }, "with a spool, every event is answered 2xx: \(answers)")
            // The events whose Produce failed were spooled, not refused and not dead-lettered.
            #expect(answers.values.contains(202), "nothing was spooled: the errors did not reach a delivery")

            // Later events: answered 200 once the new producer is in place (the old one refuses
            // every send once it is known to be done).
            var later: [String] = []
            let deadline = Date().addingTimeInterval(15)
            while Date() < deadline {
                let id = "later-\(later.count)"
                let status = try await send(id)
                #expect((200...202).contains(status), "\(id): \(status)")
                later.append(id)
                if status == 200, sink.producerGeneration >= 1 { break }
                try await Task.sleep(for: .milliseconds(50))
            }
            #expect(sink.producerGeneration == 1, "replaced once, not per failed message, and not never")
            #expect(try await send("last") == 200)
            #expect(await eventually(10) { sink.liveProducerCount == 1 }, "the replaced producer was not destroyed")

            let acknowledged = ["first", "last"] + Array(answers.keys) + later
            let messages = await consume(
                bootstraps: cluster.bootstraps, topic: "webhooks.github", partitions: 1, count: acknowledged.count, timeout: 60)
            let keys = Set(messages.map { String(decoding: $0.key, as: UTF8.self) })
            #expect(Set(acknowledged).subtracting(keys).isEmpty, "missing: \(Set(acknowledged).subtracting(keys).sorted())")
            #expect(sink.producerGeneration == 1)
        }
        let deadLetters = (try? String(contentsOfFile: spool.file("dead-letter.jsonl"), encoding: .utf8)) ?? ""
        #expect(deadLetters.isEmpty, "nothing is dead-lettered: \(deadLetters.prefix(300))")
    }
}
