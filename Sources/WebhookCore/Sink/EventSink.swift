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
    /// Why the sink is not ready, for `/readyz` (`circuit open`); nil while it is.
    var unreadyReason: String? { get }
    /// A timeout the sink keeps itself (an HTTP sink's `timeoutMs`), which a spooled
    /// delivery, with no provider waiting on it, is given instead of `limits.ackTimeoutMs`
    /// when longer.
    var ownTimeoutMs: Int? { get }
}

extension EventSink {
    public var unreadyReason: String? { isReady ? nil : "unreachable" }
    public var ownTimeoutMs: Int? { nil }
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
        /// An HTTP receiver's status code.
        case status(Int)
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

    /// `path:offset`, `topic/partition@offset`, `stream/entry-id` or `host/path status`.
    public var position: String {
        switch offset {
        case .byte(let byte): return "\(place):\(byte)"
        case .partition(let partition, let offset): return "\(place)/\(partition)@\(offset)"
        case .entry(let id): return "\(place)/\(id)"
        case .status(let status): return "\(place) \(status)"
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
    /// How long the sink asked to be left alone (an HTTP `Retry-After`): the spool's next
    /// try waits this long instead of its own backoff.
    public let retryAfter: Duration?
    /// What a dead letter of this failure carries besides the reason, as CloudEvent
    /// extension attributes (an HTTP sink's `deadletterstatus` and `deadletteranswer`).
    public let details: [(name: String, value: String)]

    private init(
        _ code: Code, sink: String, reason: String, retryAfter: Duration? = nil, details: [(name: String, value: String)] = []
    ) {
        self.code = code
        self.sink = sink
        self.reason = reason
        self.retryAfter = retryAfter
        self.details = details
    }

    /// The sink can't take events now; a retry may succeed (not before `retryAfter`, when
    /// the sink said when).
    public static func unavailable(sink: String, reason: String, retryAfter: Duration? = nil) -> SinkError {
        .init(.unavailable, sink: sink, reason: reason, retryAfter: retryAfter)
    }
    /// The sink refuses this event for good; `details` go into its dead letter.
    public static func rejected(sink: String, reason: String, details: [(name: String, value: String)] = []) -> SinkError {
        .init(.rejected, sink: sink, reason: reason, details: details)
    }
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
