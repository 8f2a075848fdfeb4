import BridgeTestSupport
import Foundation
import KafkaSink
import Logging
import Testing
import WebhookBridge
import WebhookCore
import WebhookEncoding

@Suite("Webhooks into Kafka through the bridge", .serialized)
struct KafkaBridgeTests {
    @Test("brokers down mid-load: every 2xx is in Kafka, every 5xx is retried until it is; readiness follows the brokers")
    func outageUnderLoad() async throws {
        let cluster = try MockKafkaCluster()
        cluster.createTopic("webhooks.github")
        let config = """
            {"listen": {"host": "127.0.0.1", "port": 0},
             "limits": {"ackTimeoutMs": 1500},
             "sinks": {"bus": {"type": "kafka", "brokers": "\(cluster.bootstraps)", "topic": "webhooks.{source}",
                               "key": "{source}/{id}"}},
             "sources": {"github": {"path": "/gh", "verify": {"scheme": "github", "secrets": ["gh-secret"]}, "sinks": ["bus"]}}}
            """
        try await RunningBridge.with(config: config) { bridge in
            func send(_ id: String) async throws -> Int {
                let body = #"{"delivery": "\#(id)"}"#
                return Int(try await bridge.post("/gh", headers: githubHeaders(body, delivery: id), body: body).status.code)
            }
            func sendAll(_ ids: [String]) async throws -> [String: Int] {
                try await withThrowingTaskGroup(of: (String, Int).self) { group in
                    for id in ids { group.addTask { (id, try await send(id)) } }
                    return try await group.reduce(into: [String: Int]()) { $0[$1.0] = $1.1 }
                }
            }
            let before = try await sendAll((0..<20).map { "a-\($0)" })
            #expect(before.values.allSatisfy { $0 == 200 })
            #expect(try await bridge.get("/readyz").status == .ok)

            for broker in Int32(1)...3 { cluster.setBroker(broker, up: false) }
            let during = try await sendAll((0..<10).map { "b-\($0)" })
            #expect(during.values.allSatisfy { $0 == 503 }, "\(during)")
            #expect(try await bridge.get("/readyz").status == .serviceUnavailable)

            for broker in Int32(1)...3 { cluster.setBroker(broker, up: true) }
            // The provider retries what got a 5xx; each must end up accepted (or, if a late
            // acknowledgement already got it in, answered as a retry of a delivered event).
            var pending = during.keys.sorted()
            for _ in 0..<20 where !pending.isEmpty {
                let answers = try await sendAll(pending)
                pending = answers.filter { $0.value != 200 }.keys.sorted()
            }
            #expect(pending.isEmpty, "still failing: \(pending)")

            let expected = Set(before.keys).union(during.keys).map { "github/\($0)" }
            let messages = await consume(
                bootstraps: cluster.bootstraps, topic: "webhooks.github", count: expected.count + 10, timeout: 8)
            let keys = Set(messages.map { String(decoding: $0.key, as: UTF8.self) })
            #expect(keys == Set(expected))
            #expect(messages.allSatisfy { $0.header("ce_source") == "github" && $0.header("content-type") == "application/json" })
        }
    }

    @Test("brokers down with a spool: answered 202 queued, then forwarded to Kafka in order once they are back")
    func spooledWhileDown() async throws {
        let cluster = try MockKafkaCluster()
        cluster.createTopic("webhooks.github", partitions: 1)
        let config = """
            {"listen": {"host": "127.0.0.1", "port": 0},
             "limits": {"ackTimeoutMs": 1000},
             "spool": {"directory": "{dir}/spool"},
             "sinks": {"bus": {"type": "kafka", "brokers": "\(cluster.bootstraps)", "topic": "webhooks.{source}",
                               "key": "{id}"}},
             "sources": {"github": {"path": "/gh", "verify": {"scheme": "github", "secrets": ["gh-secret"]}, "sinks": ["bus"]}}}
            """
        try await RunningBridge.with(config: config) { bridge in
            func send(_ id: String) async throws -> (Int, String) {
                let body = #"{"delivery": "\#(id)"}"#
                let answer = try await bridge.post("/gh", headers: githubHeaders(body, delivery: id), body: body)
                return (Int(answer.status.code), String(decoding: answer.body, as: UTF8.self))
            }
            #expect(try await send("s-0").0 == 200)
            for broker in Int32(1)...3 { cluster.setBroker(broker, up: false) }
            // One at a time, so their order is the providers' order.
            for n in 1...5 {
                let (status, body) = try await send("s-\(n)")
                #expect(status == 202, "s-\(n): \(body)")
                #expect(body.contains(#""status":"queued""#), "\(body)")
            }
            // A retry of a spooled event is a duplicate: it is durable already.
            #expect(try await send("s-3").1.contains("duplicate"))
            for broker in Int32(1)...3 { cluster.setBroker(broker, up: true) }
            let messages = await consume(
                bootstraps: cluster.bootstraps, topic: "webhooks.github", partitions: 1, count: 6, timeout: 20)
            #expect(messages.map { String(decoding: $0.key, as: UTF8.self) } == (0...5).map { "s-\($0)" })
        }
    }

    @Test("an event Kafka refuses for good goes to the dead letters with its reason, answered 202")
    func deadLetter() async throws {
        let cluster = try MockKafkaCluster()
        cluster.createTopic("webhooks.github")
        let spool = TemporaryDirectory()
        defer { spool.cleanup() }
        let config = """
            {"listen": {"host": "127.0.0.1", "port": 0},
             "spool": {"directory": "\(spool.path)"},
             "sinks": {"bus": {"type": "kafka", "brokers": "\(cluster.bootstraps)", "topic": "webhooks.{source}",
                               "properties": {"message.max.bytes": "2000"}}},
             "sources": {"github": {"path": "/gh", "verify": {"scheme": "github", "secrets": ["gh-secret"]}, "sinks": ["bus"]}}}
            """
        let body = #"{"pad": "\#(String(repeating: "x", count: 4000))"}"#
        try await RunningBridge.with(config: config) { bridge in
            let answer = try await bridge.post("/gh", headers: githubHeaders(body, delivery: "big-1"), body: body)
            #expect(answer.status == .accepted)
            #expect(answer.json?["status"] == .string("queued"))
        }
        let lines = try String(contentsOfFile: spool.file("dead-letter.jsonl"), encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 1)
        let letter = try JSONParser.parse(Array(lines[0].utf8))
        #expect(letter["id"] == .string("big-1"))
        #expect(letter["deadlettersink"] == .string("bus"))
        #expect(letter["deadletterreason"]?.scalarText?.contains("webhooks.github") == true)
        #expect(letter["data_base64"]?.scalarText.flatMap { Base64.decode($0) } == Array(body.utf8))
    }

    @Test(
        "a real broker: deliveries are acknowledged and read back (set KAFKA_BOOTSTRAP_SERVERS to run)",
        .enabled(if: ProcessInfo.processInfo.environment["KAFKA_BOOTSTRAP_SERVERS"] != nil, "KAFKA_BOOTSTRAP_SERVERS is not set")
    )
    func realBroker() async throws {
        let brokers = try #require(ProcessInfo.processInfo.environment["KAFKA_BOOTSTRAP_SERVERS"])
        let topic = ProcessInfo.processInfo.environment["KAFKA_TEST_TOPIC"] ?? "webhook-bridge-integration"
        var logger = Logger(label: "test")
        logger.logLevel = .warning
        let sink = try KafkaSink(
            name: "bus", brokers: brokers, topic: Template(parsing: topic), key: Template(parsing: "{id}"), properties: [:],
            ackTimeoutMs: 10_000, logger: logger)
        let run = UUID().uuidString
        let ids = (0..<5).map { "\(run)-\($0)" }
        try await running(sink) {
            for id in ids { _ = try await sink.deliver(event(id)) }
        }
        let messages = await consume(bootstraps: brokers, topic: topic, partitions: 1, count: Int.max, timeout: 15)
        #expect(Set(ids).isSubset(of: Set(messages.map { String(decoding: $0.key, as: UTF8.self) })))
    }
}
