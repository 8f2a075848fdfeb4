import CRdKafka
import Dispatch
import Foundation

/// librdkafka's in-process mock cluster (rdkafka_mock.h): real brokers speaking the Kafka
/// protocol on loopback, with fault injection. No external service.
public final class MockKafkaCluster: @unchecked Sendable {
    private let host: OpaquePointer
    public let cluster: OpaquePointer
    public let bootstraps: String

    public init(brokers: Int32 = 3) throws {
        let conf = rd_kafka_conf_new()
        var reason = [CChar](repeating: 0, count: 256)
        _ = rd_kafka_conf_set(conf, "log_level", "3", &reason, reason.count)
        guard let host = rd_kafka_new(RD_KAFKA_PRODUCER, conf, &reason, reason.count) else {
            throw MockError("rd_kafka_new failed")
        }
        guard let cluster = rd_kafka_mock_cluster_new(host, brokers) else { throw MockError("mock cluster failed") }
        self.host = host
        self.cluster = cluster
        self.bootstraps = String(cString: rd_kafka_mock_cluster_bootstraps(cluster))
    }

    deinit {
        rd_kafka_mock_cluster_destroy(cluster)
        rd_kafka_destroy(host)
    }

    public func createTopic(_ name: String, partitions: Int32 = 3, replication: Int32 = 3) {
        _ = rd_kafka_mock_topic_create(cluster, name, partitions, replication)
    }

    public func setBroker(_ id: Int32, up: Bool) {
        _ = up ? rd_kafka_mock_broker_set_up(cluster, id) : rd_kafka_mock_broker_set_down(cluster, id)
    }

    public func setLeader(topic: String, partition: Int32, broker: Int32) {
        _ = rd_kafka_mock_partition_set_leader(cluster, topic, partition, broker)
    }

    /// Makes the next Produce requests fail with `errors`, one each.
    public func failProduceRequests(_ errors: [rd_kafka_resp_err_t]) {
        var errors = errors
        rd_kafka_mock_push_request_errors_array(cluster, 0 /* ApiKey Produce */, errors.count, &errors)
    }
}

public struct MockError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}

/// A message read back from Kafka.
public struct ConsumedMessage: Sendable {
    public let topic: String
    public let key: [UInt8]
    public let value: [UInt8]
    public let headers: [(String, String)]

    public func header(_ name: String) -> String? { headers.first { $0.0 == name }?.1 }
}

/// Reads `count` messages from every partition of `topic`, from the beginning, with a
/// librdkafka consumer (off Swift's cooperative pool); gives up after `timeout` seconds.
public func consume(bootstraps: String, topic: String, partitions: Int32 = 3, count: Int, timeout: Double = 20) async
    -> [ConsumedMessage]
{
    await withCheckedContinuation { continuation in
        DispatchQueue.global().async {
            continuation.resume(
                returning: consumeBlocking(
                    bootstraps: bootstraps, topic: topic, partitions: partitions, count: count, timeout: timeout))
        }
    }
}

private func consumeBlocking(bootstraps: String, topic: String, partitions: Int32, count: Int, timeout: Double)
    -> [ConsumedMessage]
{
    let conf = rd_kafka_conf_new()
    var reason = [CChar](repeating: 0, count: 256)
    for (name, value) in [
        ("bootstrap.servers", bootstraps), ("group.id", "test-\(UUID().uuidString)"), ("enable.auto.commit", "false"),
        ("log_level", "3"),
    ] {
        _ = rd_kafka_conf_set(conf, name, value, &reason, reason.count)
    }
    guard let consumer = rd_kafka_new(RD_KAFKA_CONSUMER, conf, &reason, reason.count) else { return [] }
    defer { rd_kafka_destroy(consumer) }
    let assignment = rd_kafka_topic_partition_list_new(partitions)!
    for partition in 0..<partitions {
        rd_kafka_topic_partition_list_add(assignment, topic, partition).pointee.offset = Int64(RD_KAFKA_OFFSET_BEGINNING)
    }
    _ = rd_kafka_assign(consumer, assignment)
    rd_kafka_topic_partition_list_destroy(assignment)

    var messages: [ConsumedMessage] = []
    let deadline = Date().addingTimeInterval(timeout)
    while messages.count < count, Date() < deadline {
        guard let message = rd_kafka_consumer_poll(consumer, 200) else { continue }
        defer { rd_kafka_message_destroy(message) }
        guard message.pointee.err == RD_KAFKA_RESP_ERR_NO_ERROR else { continue }
        var headers: [(String, String)] = []
        var list: OpaquePointer?
        if rd_kafka_message_headers(message, &list) == RD_KAFKA_RESP_ERR_NO_ERROR, let list {
            var index = 0
            var name: UnsafePointer<CChar>?
            var value: UnsafeRawPointer?
            var size = 0
            while rd_kafka_header_get_all(list, index, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR {
                let bytes = value.map { Array(UnsafeRawBufferPointer(start: $0, count: size)) } ?? []
                headers.append((String(cString: name!), String(decoding: bytes, as: UTF8.self)))
                index += 1
            }
        }
        let key = message.pointee.key.map { Array(UnsafeRawBufferPointer(start: $0, count: message.pointee.key_len)) } ?? []
        let value = message.pointee.payload.map { Array(UnsafeRawBufferPointer(start: $0, count: message.pointee.len)) } ?? []
        messages.append(
            ConsumedMessage(
                topic: String(cString: rd_kafka_topic_name(message.pointee.rkt)), key: key, value: value, headers: headers))
    }
    rd_kafka_consumer_close(consumer)
    return messages
}
