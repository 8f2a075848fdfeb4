#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif
import Synchronization
import Tracing
import W3CTraceContext
import WebhookCore

/// An attribute's value, as OTLP carries it.
enum SpanValue: Sendable, Equatable {
    case string(String)
    case int(Int)
    case bool(Bool)
}

/// One span of a request, whichever tracer records it: the bridge's own (``RecordedSpan``,
/// exported over OTLP/HTTP) or, for OTLP/gRPC, swift-otel's.
protocol RequestSpan: AnyObject, Sendable {
    /// The W3C `traceparent` that names this span (sampled).
    var traceParent: String { get }
    /// A span of the same trace whose parent is this one.
    func child(_ name: String, kind: SpanKind) -> any RequestSpan
    func set(_ key: String, _ value: SpanValue)
    /// Sets the span's status to error.
    func fail(_ message: String?)
    func end()
}

/// Starts the server span of a request that is sampled.
protocol RequestTracer: Sendable {
    /// A root span, or, with `incoming`, a child of the caller's span in the caller's trace.
    func start(_ name: String, kind: SpanKind, incoming: IncomingTraceContext?) -> any RequestSpan
}

/// A span as the bridge records it: its ids, times and attributes, handed to its
/// ``OTLPSpanExporter`` when it ends. It makes no ids from the system's random source, boxes
/// no attribute, and wakes no other thread: swift-otel's span did all three (its start and
/// its end each went through an `AsyncStream` to a task on another thread), which was most
/// of the cost of tracing every request.
///
/// A request's spans are changed by the request's task only, one step after another; the
/// lock keeps that safe should a delivery's span end on another task.
final class RecordedSpan: RequestSpan {
    let exporter: OTLPSpanExporter
    let traceHigh: UInt64
    let traceLow: UInt64
    let spanID: UInt64
    /// 0: a root span.
    let parentID: UInt64
    let name: String
    let kind: SpanKind
    let start: UInt64
    let traceState: String?

    struct Mutable {
        var attributes: [(String, SpanValue)] = []
        var error = false
        var message: String?
        var ended = false
    }
    private let mutable = Mutex(Mutable())

    init(
        exporter: OTLPSpanExporter, trace: (high: UInt64, low: UInt64), parentID: UInt64, name: String, kind: SpanKind,
        traceState: String?
    ) {
        self.exporter = exporter
        self.traceHigh = trace.high
        self.traceLow = trace.low
        self.spanID = TraceIDs.nonZero()
        self.parentID = parentID
        self.name = name
        self.kind = kind
        self.start = Self.now()
        self.traceState = traceState
    }

    /// Nanoseconds since 1970 (OTLP's times).
    static func now() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        return UInt64(time.tv_sec) &* 1_000_000_000 &+ UInt64(time.tv_nsec)
    }

    var traceParent: String { TraceIDs.traceParent(trace: (traceHigh, traceLow), span: spanID, sampled: true) }

    func child(_ name: String, kind: SpanKind) -> any RequestSpan {
        RecordedSpan(
            exporter: exporter, trace: (traceHigh, traceLow), parentID: spanID, name: name, kind: kind, traceState: traceState)
    }

    /// The longest string attribute or status message kept, in UTF-8 bytes (a sink's error
    /// can be long; the queue bounds spans, this bounds each one).
    static let maximumValueBytes = 1024

    /// `text`, cut to ``maximumValueBytes`` at a character's end and marked, as log lines cut theirs.
    static func bounded(_ text: String) -> String { LoggedValue.bounded(text, bytes: maximumValueBytes) }

    func set(_ key: String, _ value: SpanValue) {
        var value = value
        if case .string(let text) = value { value = .string(Self.bounded(text)) }
        mutable.withLock { state in
            if let index = state.attributes.firstIndex(where: { $0.0 == key }) {
                state.attributes[index].1 = value
            } else {
                state.attributes.append((key, value))
            }
        }
    }

    func fail(_ message: String?) {
        let message = message.map(Self.bounded)
        mutable.withLock { state in
            state.error = true
            state.message = message
        }
    }

    func end() {
        let end = Self.now()
        let state = mutable.withLock { state -> Mutable? in
            guard !state.ended else { return nil }
            state.ended = true
            return state
        }
        guard let state else { return }
        exporter.add(
            FinishedSpan(
                traceHigh: traceHigh, traceLow: traceLow, spanID: spanID, parentID: parentID, traceState: traceState,
                name: name, kind: kind, start: start, end: end, attributes: state.attributes, error: state.error,
                message: state.message))
    }
}

/// A span that ended, as it is exported.
struct FinishedSpan: Sendable {
    var traceHigh: UInt64
    var traceLow: UInt64
    var spanID: UInt64
    var parentID: UInt64
    var traceState: String?
    var name: String
    var kind: SpanKind
    var start: UInt64
    var end: UInt64
    var attributes: [(String, SpanValue)]
    var error: Bool
    var message: String?

    /// OTLP's `Span.SpanKind`.
    var otlpKind: Int {
        switch kind {
        case .internal: return 1
        case .server: return 2
        case .client: return 3
        case .producer: return 4
        case .consumer: return 5
        }
    }
}

/// The bridge's own tracer: spans recorded as ``RecordedSpan`` and exported by `exporter`.
struct OwnTracer: RequestTracer {
    let exporter: OTLPSpanExporter

    func start(_ name: String, kind: SpanKind, incoming: IncomingTraceContext?) -> any RequestSpan {
        guard let incoming else {
            return RecordedSpan(
                exporter: exporter, trace: (TraceIDs.nonZero(), TraceIDs.nonZero()), parentID: 0, name: name, kind: kind,
                traceState: nil)
        }
        let trace = TraceIDs.words(incoming.traceID)
        let parent = withUnsafeBytes(of: incoming.spanID.bytes) { UInt64(bigEndian: $0.loadUnaligned(as: UInt64.self)) }
        return RecordedSpan(
            exporter: exporter, trace: trace, parentID: parent, name: name, kind: kind, traceState: incoming.traceState)
    }
}

/// Lowercase hex digits of 64-bit values.
enum Hex16 {
    /// The 16 digits of `value`.
    static func digits(_ value: UInt64) -> String {
        String(unsafeUninitializedCapacity: 16) { text in
            write(value, into: text, at: 0)
            return 16
        }
    }

    static func write(_ value: UInt64, into text: UnsafeMutableBufferPointer<UInt8>, at offset: Int) {
        for index in 0..<16 {
            let nibble = UInt8(truncatingIfNeeded: value >> UInt64(60 - 4 * index)) & 0xF
            text[offset + index] = nibble < 10 ? 0x30 + nibble : 0x57 + nibble
        }
    }
}
