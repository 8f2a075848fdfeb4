import BridgeTestSupport
import CRdKafka
import Foundation
import KafkaSink
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Testing
import WebhookCore

/// Runs `sink` as a service (so its event poller runs) for the duration of `body`.
func running<T>(_ sink: KafkaSink, _ body: () async throws -> T) async throws -> T {
    let group = ServiceGroup(services: [sink], logger: Logger(label: "test"))
    let task = Task { try await group.run() }
    defer { task.cancel() }
    let result = try await body()
    await group.triggerGracefulShutdown()
    try await task.value
    return result
}

func makeSink(
    _ cluster: MockKafkaCluster, topic: String = "webhooks.{source}", key: String = "{id}", ackTimeoutMs: Int = 5000,
    properties: [String: String] = [:]
) throws -> KafkaSink {
    var logger = Logger(label: "test")
    logger.logLevel = .critical
    return try KafkaSink(
        name: "bus", brokers: cluster.bootstraps, topic: Template(parsing: topic), key: Template(parsing: key),
        properties: properties, ackTimeoutMs: ackTimeoutMs, logger: logger)
}

func event(_ id: String, source: String = "github", body: String? = nil) -> WebhookEvent {
    WebhookEvent(
        id: id, source: source, type: "push", time: Timestamp(millisecondsSince1970: 1_764_424_800_123),
        dataContentType: "application/json",
        scheme: "github", keyIndex: 1, data: ByteBuffer(string: body ?? #"{"id": "\#(id)", "bytes": "\u{00e9}"}"#))
}

@Suite("Kafka sink on librdkafka's mock cluster", .serialized)
struct KafkaSinkTests {
    @Test("N concurrent deliveries give exactly N messages with the right topic, key, headers and bytes")
    func concurrentDeliveries() async throws {
        let cluster = try MockKafkaCluster()
        cluster.createTopic("webhooks.github")
        let sink = try makeSink(cluster)
        let count = 60
        let receipts = try await running(sink) {
            try await withThrowingTaskGroup(of: DeliveryReceipt.self) { group in
                for index in 0..<count { group.addTask { try await sink.deliver(event("evt-\(index)")) } }
                return try await group.reduce(into: [DeliveryReceipt]()) { $0.append($1) }
            }
        }
        #expect(receipts.count == count)
        #expect(Set(receipts.map(\.position)).count == count)
        let messages = await consume(bootstraps: cluster.bootstraps, topic: "webhooks.github", count: count)
        #expect(messages.count == count)
        #expect(Set(messages.map { String(decoding: $0.key, as: UTF8.self) }) == Set((0..<count).map { "evt-\($0)" }))
        for message in messages {
            let id = String(decoding: message.key, as: UTF8.self)
            #expect(message.value == Array(event(id).data.readableBytesView))
            #expect(message.header("ce_id") == id)
            #expect(message.header("ce_specversion") == "1.0")
            #expect(message.header("ce_source") == "github")
            #expect(message.header("ce_type") == "push")
            #expect(message.header("ce_time") == "2025-11-29T14:00:00.123Z")
            #expect(message.header("ce_webhookscheme") == "github")
            #expect(message.header("ce_webhookkey") == "1")
            #expect(message.header("content-type") == "application/json")
            #expect(message.header("ce_datacontenttype") == nil)
        }
    }

    @Test("a callback delivery completes on the event loop it names, also after the sink stopped")
    func callbacksOnTheLoop() async throws {
        let cluster = try MockKafkaCluster()
        cluster.createTopic("webhooks.github")
        let sink = try makeSink(cluster)
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        @Sendable func deliver(_ id: String) async -> (onLoop: Bool, result: Result<DeliveryReceipt, SinkError>) {
            await withCheckedContinuation { continuation in
                sink.deliver(event(id), on: loop) { continuation.resume(returning: (loop.inEventLoop, $0)) }
            }
        }
        let delivered = try await running(sink) { await deliver("evt-callback") }
        #expect(delivered.onLoop)
        #expect((try? delivered.result.get())?.place == "webhooks.github")
        let late = await deliver("evt-late")
        #expect(late.onLoop)
        guard case .failure(let error) = late.result else {
            Issue.record("delivered after the sink stopped")
            return
        }
        #expect(!error.isPermanent)
    }

    @Test("transient produce errors are retried by librdkafka and still end acknowledged")
    func injectedTransientErrors() async throws {
        let cluster = try MockKafkaCluster()
        cluster.createTopic("webhooks.github")
        cluster.failProduceRequests([
            RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS, RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
            RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
        ])
        let sink = try makeSink(cluster)
        let receipt = try await running(sink) { try await sink.deliver(event("retried")) }
        #expect(receipt.position.hasPrefix("webhooks.github/"))
        let messages = await consume(bootstraps: cluster.bootstraps, topic: "webhooks.github", count: 1)
        #expect(messages.map { String(decoding: $0.key, as: UTF8.self) } == ["retried"])
    }

    @Test("leader changes mid-load lose nothing")
    func leaderChanges() async throws {
        let cluster = try MockKafkaCluster()
        cluster.createTopic("webhooks.github")
        let sink = try makeSink(cluster)
        let count = 90
        let delivered = try await running(sink) {
            try await withThrowingTaskGroup(of: String.self) { group in
                for index in 0..<count {
                    if index % 30 == 15 {
                        for partition in Int32(0)..<3 {
                            cluster.setLeader(topic: "webhooks.github", partition: partition, broker: Int32(index / 30 + 1))
                        }
                    }
                    group.addTask {
                        _ = try await sink.deliver(event("l-\(index)")); return "l-\(index)"
                    }
                }
                return try await group.reduce(into: [String]()) { $0.append($1) }
            }
        }
        let messages = await consume(bootstraps: cluster.bootstraps, topic: "webhooks.github", count: count)
        #expect(Set(messages.map { String(decoding: $0.key, as: UTF8.self) }) == Set(delivered))
        #expect(delivered.count == count)
    }

    @Test("with every broker down a delivery fails as retryable within the ack timeout, and succeeds once they are back")
    func brokersDown() async throws {
        let cluster = try MockKafkaCluster()
        cluster.createTopic("webhooks.github")
        let sink = try makeSink(cluster, ackTimeoutMs: 1500)
        try await running(sink) {
            _ = try await sink.deliver(event("before"))
            for broker in Int32(1)...3 { cluster.setBroker(broker, up: false) }
            do {
                _ = try await sink.deliver(event("during"))
                Issue.record("a delivery to a cluster with every broker down succeeded")
            } catch let error as SinkError {
                #expect(!error.isPermanent, "\(error)")
            }
            for broker in Int32(1)...3 { cluster.setBroker(broker, up: true) }
            // Like a provider's retries: librdkafka reconnects with backoff, so the first
            // attempts after the outage may still time out; one must get through.
            var delivered = false
            for _ in 0..<15 where !delivered {
                delivered = (try? await sink.deliver(event("after"))) != nil
            }
            #expect(delivered)
        }
        let keys = await consume(bootstraps: cluster.bootstraps, topic: "webhooks.github", count: 2).map {
            String(decoding: $0.key, as: UTF8.self)
        }
        #expect(Set(keys).isSuperset(of: ["before", "after"]))
    }

    @Test("a message too large for the producer is rejected for good, not retried")
    func tooLarge() async throws {
        let cluster = try MockKafkaCluster()
        cluster.createTopic("webhooks.github")
        let sink = try makeSink(cluster, properties: ["message.max.bytes": "2000"])
        try await running(sink) {
            do {
                _ = try await sink.deliver(event("big", body: String(repeating: "x", count: 5000)))
                Issue.record("an oversized message was accepted")
            } catch let error as SinkError {
                #expect(error.isPermanent, "\(error)")
            }
        }
    }

    @Test("librdkafka refusing a property is a setup error that names it")
    func badProperty() throws {
        let cluster = try MockKafkaCluster()
        #expect {
            _ = try makeSink(cluster, properties: ["linger.ms": "soon"])
        } throws: { error in
            "\(error)".contains("properties.linger.ms:")
        }
        #expect(
            KafkaSink.validate(brokers: "x:9092", properties: ["no.such.property": "1"], ackTimeoutMs: 5000)?.path
                == "properties.no.such.property")
        #expect(KafkaSink.validate(brokers: "x:9092", properties: ["compression.type": "lz4"], ackTimeoutMs: 5000) == nil)
    }

    @Test("the bridge's defaults are acks=all and idempotence, overridable by properties")
    func defaults() {
        let configuration = KafkaSink.configuration(brokers: "b:9092", properties: ["linger.ms": "5"], ackTimeoutMs: 3000)
        #expect(configuration["acks"] == "all")
        #expect(configuration["enable.idempotence"] == "true")
        #expect(configuration["message.timeout.ms"] == "2700")
        #expect(configuration["linger.ms"] == "5")
        #expect(configuration["max.in.flight"] == "1")
        #expect(configuration["bootstrap.servers"] == "b:9092")
    }

    @Test("a property under another of librdkafka's names replaces the bridge's default")
    func aliases() throws {
        let properties = [
            "delivery.timeout.ms": "9000", "request.required.acks": "all", "queue.buffering.max.ms": "7",
            "max.in.flight.requests.per.connection": "5",
        ]
        let configuration = KafkaSink.configuration(brokers: "b:9092", properties: properties, ackTimeoutMs: 3000)
        for (name, value) in properties { #expect(configuration[name] == value) }
        for name in ["message.timeout.ms", "acks", "linger.ms", "max.in.flight"] { #expect(configuration[name] == nil) }
        // `brokers` stays the one list of brokers.
        let other = KafkaSink.configuration(
            brokers: "b:9092", properties: ["metadata.broker.list": "elsewhere:9092"], ackTimeoutMs: 3000)
        #expect(other["metadata.broker.list"] == nil && other["bootstrap.servers"] == "b:9092")
        // librdkafka takes the configuration as a whole.
        #expect(KafkaSink.validate(brokers: "b:9092", properties: properties, ackTimeoutMs: 3000) == nil)
    }
}
