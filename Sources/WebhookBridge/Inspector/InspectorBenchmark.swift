import NIOCore
import NIOHTTP1
import WebhookCore

/// What the inspector adds to one request, done in a loop for `bench/inspector-bench`: the
/// record made, noted at the points the pipeline notes it, written to the ring, and the
/// accepted event kept for the event stream. Without `admin` none of it happens (the
/// request's trace is ``RequestTrace/none``).
@_spi(Benchmark)
public enum InspectorBenchmark {
    /// Runs `iterations` requests' worth of inspector work on a ring of `recent`; returns a
    /// checksum so the work is not optimized away.
    public static func run(iterations: Int, recent: Int = 1000, maxBodyBytes: Int = 65536, body: [UInt8]) -> Int {
        let log = InspectorLog(recent: recent, maxBodyBytes: maxBodyBytes)
        let headers = HTTPHeaders([
            ("Host", "127.0.0.1:8080"), ("User-Agent", "wrk"), ("Content-Type", "application/json"),
            ("Content-Length", String(body.count)), ("webhook-id", "msg_1764000000_1_000000001"),
            ("webhook-timestamp", "1764000000"), ("webhook-signature", "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4="),
        ])
        var buffer = ByteBufferAllocator().buffer(capacity: body.count)
        buffer.writeBytes(body)
        let event = WebhookEvent(
            id: "msg_1764000000_1_000000001", source: "bench", type: "invoice.paid", time: .now(),
            dataContentType: "application/json", scheme: "standard-webhooks", keyIndex: 0, data: buffer)
        let answer = BridgeAnswer.event(.ok, id: event.id, "accepted")
        let receipt = DeliveryReceipt(sink: "kafka", place: "webhooks.bench", offset: .partition(1, offset: 42))
        var checksum = 0
        for _ in 0..<iterations {
            let draft = InspectionDraft(
                log: log, source: "bench", method: .POST, uri: "/webhooks/bench", client: "127.0.0.1", headers: headers,
                body: buffer)
            draft.noteKey(0)
            draft.noteEvent(id: event.id, type: event.type)
            draft.noteDelivery(sink: "kafka", required: true, .success(receipt))
            draft.note(outcome: "accepted")
            draft.noteTaken(event)
            draft.finish(answer: answer)
            checksum &+= Int(log.lastSequence & 0xFF)
        }
        return checksum
    }
}
