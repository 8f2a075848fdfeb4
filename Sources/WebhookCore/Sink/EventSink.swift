import NIOCore
import ServiceLifecycle

/// A destination for events: Kafka, Redis Streams, files (SPEC section 7).
///
/// `deliver` returns only once the event is durable there (Kafka ack, `XADD` reply, fsync);
/// a sink is also a `Service`, so its background work (poll loops, connections, flushing)
/// starts and stops with the bridge in a defined order.
public protocol EventSink: Service {
    /// The sink's name in the config.
    var name: String { get }
    /// Writes `event` durably or throws a ``SinkError``.
    func deliver(_ event: WebhookEvent) async throws -> DeliveryReceipt
    /// True while the sink can accept events (`/readyz`).
    var isReady: Bool { get }
}

/// A sink whose deliveries end in a callback rather than an awaited result: the bridge then
/// runs a delivery without a task of its own (the Kafka sink, whose acknowledgements arrive
/// as librdkafka events anyway).
public protocol CallbackDeliveringSink: EventSink {
    /// Starts delivering `event`; `completion` runs exactly once, on `eventLoop`, with the
    /// receipt or the ``SinkError`` the async ``EventSink/deliver(_:)`` would have returned
    /// or thrown.
    func deliver(
        _ event: WebhookEvent, on eventLoop: any EventLoop,
        completion: @escaping @Sendable (Result<DeliveryReceipt, SinkError>) -> Void)
}

/// Where an event ended up. Kept as parts and formatted only when read (a span's
/// attribute, a log line): most receipts are never looked at.
public struct DeliveryReceipt: Sendable, Equatable {
    public enum Offset: Sendable, Equatable {
        /// A file's byte offset.
        case byte(Int64)
        /// A Kafka partition's offset.
        case partition(Int32, offset: Int64)
        /// A Redis stream entry id.
        case entry(String)
    }

    public let sink: String
    /// The file, topic or stream key.
    public let place: String
    public let offset: Offset

    public init(sink: String, place: String, offset: Offset) {
        self.sink = sink
        self.place = place
        self.offset = offset
    }

    /// `path:offset`, `topic/partition@offset` or `stream/entry-id`.
    public var position: String {
        switch offset {
        case .byte(let byte): return "\(place):\(byte)"
        case .partition(let partition, let offset): return "\(place)/\(partition)@\(offset)"
        case .entry(let id): return "\(place)/\(id)"
        }
    }
}

/// A failed delivery. ``isPermanent`` tells an event that can never succeed (too large,
/// unknown topic: dead-letter it) from one worth retrying (sink down, timeout).
public struct SinkError: Error, Sendable, CustomStringConvertible {
    private enum Code: Sendable {
        case unavailable
        case rejected
        case timedOut
    }

    private let code: Code
    public let sink: String
    public let reason: String

    private init(_ code: Code, sink: String, reason: String) {
        self.code = code
        self.sink = sink
        self.reason = reason
    }

    /// The sink can't take events now; a retry may succeed.
    public static func unavailable(sink: String, reason: String) -> SinkError { .init(.unavailable, sink: sink, reason: reason) }
    /// The sink refuses this event for good.
    public static func rejected(sink: String, reason: String) -> SinkError { .init(.rejected, sink: sink, reason: reason) }
    /// No acknowledgement within `limits.ackTimeoutMs`.
    public static func timedOut(sink: String, afterMilliseconds ms: Int) -> SinkError {
        .init(.timedOut, sink: sink, reason: "no acknowledgement within \(ms) ms")
    }

    public var isPermanent: Bool { code == .rejected }
    /// `unavailable`, `rejected` or `timed_out`: the kind of failure, for metrics and for
    /// throttling repeated log lines.
    public var kind: String {
        switch code {
        case .unavailable: return "unavailable"
        case .rejected: return "rejected"
        case .timedOut: return "timed_out"
        }
    }
    public var description: String { "sink \(sink): \(reason)" }
}
