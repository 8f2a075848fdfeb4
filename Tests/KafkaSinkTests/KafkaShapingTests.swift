import BridgeTestSupport
import Foundation
import Testing
import WebhookEncoding

/// Transforms and batch splitting in front of Kafka, through the real binary and librdkafka's
/// mock cluster, read back with a Kafka consumer.
@Suite("Shaping in front of Kafka", .serialized)
struct KafkaShapingTests {
    @Test("a remove transform keeps a field out of Kafka and out of the file sink; subject lands as ce_subject")
    func redaction() async throws {
        let cluster = try MockKafkaCluster()
        cluster.createTopic("webhooks.shop", partitions: 1)
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let port = try RedisServer.freePort()
        let config = try writeConfig(
            """
            {"listen": {"host": "127.0.0.1", "port": \(port)},
             "sinks": {"bus": {"type": "kafka", "brokers": "\(cluster.bootstraps)", "topic": "webhooks.{source}"},
                       "archive": {"type": "file", "path": "\(directory.file("archive.jsonl"))"}},
             "sources": {"shop": {"path": "/shop", "verify": {"scheme": "none"},
                "transform": [{"op": "remove", "path": "/customer/email"}, {"op": "remove", "path": "/card"}],
                "attributes": {"subject": "{json:/order_id}"},
                "sinks": ["bus", "archive"]}}}
            """, in: directory)
        let server = try BridgeProcess(config: config)
        defer { _ = server.terminate() }
        let connection = try KeepAliveConnection(port: port)
        let orders = [
            #"{"order_id": "o-1", "customer": {"name": "Ada", "email": "ada@example.com"}, "card": {"last4": "4242"}}"#,
            #"{"order_id": "o-2", "customer": {"name": "Bob"}}"#,
        ]
        for order in orders {
            let answer = try connection.post("/shop", headers: [("Content-Type", "application/json")], body: order)
            #expect(answer.status == 200, "\(answer.body)")
        }
        let messages = await consume(bootstraps: cluster.bootstraps, topic: "webhooks.shop", partitions: 1, count: 2, timeout: 20)
        #expect(
            messages.map { String(decoding: $0.value, as: UTF8.self) } == [
                #"{"order_id":"o-1","customer":{"name":"Ada"}}"#, #"{"order_id":"o-2","customer":{"name":"Bob"}}"#,
            ])
        #expect(messages.map { $0.header("ce_subject") } == ["o-1", "o-2"])
        let archive = try String(contentsOfFile: directory.file("archive.jsonl"), encoding: .utf8)
        #expect(archive.split(separator: "\n").count == 2)
        #expect(!archive.contains("ada@example.com") && !archive.contains("4242"), "\(archive)")
    }

    @Test("one poison element of a batch goes to the dead letters alone; the others reach Kafka; answered 202")
    func poisonElement() async throws {
        let cluster = try MockKafkaCluster()
        cluster.createTopic("webhooks.mail", partitions: 1)
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let port = try RedisServer.freePort()
        let config = try writeConfig(
            """
            {"listen": {"host": "127.0.0.1", "port": \(port)},
             "spool": {"directory": "\(directory.file("spool"))"},
             "sinks": {"bus": {"type": "kafka", "brokers": "\(cluster.bootstraps)", "topic": "webhooks.{source}", "key": "{id}",
                               "properties": {"message.max.bytes": "2000"}}},
             "sources": {"mail": {"path": "/mail", "verify": {"scheme": "none"},
                                  "split": {"pointer": "", "id": "/sg_event_id", "type": "/event"}, "sinks": ["bus"]}}}
            """, in: directory)
        let server = try BridgeProcess(config: config)
        defer { _ = server.terminate() }
        let connection = try KeepAliveConnection(port: port)
        let poison = #"{"sg_event_id": "big", "event": "processed", "pad": "\#(String(repeating: "x", count: 4000))"}"#
        let batch = #"[{"sg_event_id": "a", "event": "delivered"}, \#(poison), {"sg_event_id": "c", "event": "open"}]"#
        let answer = try connection.post("/mail", headers: [("Content-Type", "application/json")], body: batch)
        #expect(answer.status == 202, "\(answer.body)")
        #expect(
            try JSONParser.parse(Array(answer.body.utf8))
                == JSONParser.parse(
                    Array(#"{"status": "queued", "events": 3, "accepted": 3, "duplicates": 0, "filtered": 0}"#.utf8)))
        let messages = await consume(bootstraps: cluster.bootstraps, topic: "webhooks.mail", partitions: 1, count: 2, timeout: 20)
        #expect(Set(messages.map { String(decoding: $0.key, as: UTF8.self) }) == ["a", "c"])
        let letters = try String(contentsOfFile: directory.file("spool/dead-letter.jsonl"), encoding: .utf8)
            .split(separator: "\n").map { try JSONParser.parse(Array($0.utf8)) }
        #expect(letters.count == 1)
        #expect(letters.first?["id"] == .string("big"))
        #expect(letters.first?["type"] == .string("processed"))
        var element: [UInt8] = []
        JSONWriter.append(try JSONParser.parse(Array(poison.utf8)), to: &element)
        #expect(letters.first?["data_base64"]?.scalarText.flatMap { Base64.decode($0) } == element)
        // The provider's retry of the whole batch: every element is a duplicate now.
        let retry = try connection.post("/mail", headers: [("Content-Type", "application/json")], body: batch)
        #expect(retry.status == 200)
        #expect(retry.body.contains(#""duplicates":3"#), "\(retry.body)")
    }
}
