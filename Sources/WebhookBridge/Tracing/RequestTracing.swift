import Logging
import NIOCore
import NIOHTTP1
#if OTLP
    import OTel
#endif
import ServiceLifecycle
import Tracing
import Synchronization
import W3CTraceContext
import WebhookCore

/// The trace of one request: its server span (when the bridge records spans) and the trace
/// context its event carries (the CloudEvents distributed-tracing extension).
///
/// With the inspector on (config `admin`), it also carries the request's inspector record
/// (``InspectionDraft``), noted at the same points as the span.
///
/// Without `tracing`, without an incoming `traceparent` and without the inspector it is
/// ``none``: no span, no attribute, nothing allocated on the request path.
struct RequestTrace: Sendable {
    /// The request's server span; nil when the bridge records no spans.
    let span: (any Span)?
    /// What the event carries as `traceparent` and `tracestate`.
    let traceParent: String?
    let traceState: String?
    private let tracer: (any Tracer)?
    /// The request's inspector record; nil when the inspector is off.
    let inspection: InspectionDraft?

    static let none = RequestTrace(span: nil, traceParent: nil, traceState: nil, tracer: nil, inspection: nil)

    fileprivate init(
        span: (any Span)?, traceParent: String?, traceState: String?, tracer: (any Tracer)?, inspection: InspectionDraft?
    ) {
        self.span = span
        self.traceParent = traceParent
        self.traceState = traceState
        self.tracer = tracer
        self.inspection = inspection
    }

    /// A child span of the request's (verification, idempotency, a sink delivery).
    /// The name is made only when the request is traced.
    func child(_ name: @autoclosure () -> String, kind: SpanKind = .internal) -> (any Span)? {
        guard let tracer, let span else { return nil }
        return tracer.startSpan(name(), context: span.context, ofKind: kind)
    }

    /// Stamps the trace context on `event`.
    func stamp(_ event: inout WebhookEvent) {
        event.traceParent = traceParent
        event.traceState = traceState
    }
}

/// Starts requests' traces: continues a W3C `traceparent` (and `tracestate`) from the
/// request and, with `tracing` configured, records a server span per request with child
/// spans, exported over OTLP by swift-otel. With the inspector on, every request to a
/// source also gets its inspector record.
public final class RequestTracing: Sendable {
    private let tracer: (any Tracer)?
    /// The exporter's batching and its flush at shutdown; run with the bridge's services.
    let service: (any Service)?
    /// The inspector's memory (config `admin`); nil when it is off.
    let inspector: InspectorLog?

    /// No spans; an incoming `traceparent` is still passed on to the event.
    public static let passThrough = RequestTracing(tracer: nil, service: nil)

    /// The share of new traces recorded (`sampleRatio`). Decided here, before the tracer is
    /// asked: a request that is not sampled costs no span at all (the tracer made one that
    /// records nothing, with two IDs from the system's random source, a fifth of the
    /// request's CPU at a ratio of 0.01). The tracer samples what it is given (parent-based,
    /// else always).
    let sampleRatio: Double

    init(tracer: (any Tracer)?, service: (any Service)?, inspector: InspectorLog? = nil, sampleRatio: Double = 1) {
        self.tracer = tracer
        self.service = service
        self.inspector = inspector
        self.sampleRatio = sampleRatio
    }

    /// Whether a request without a parent starts a recorded trace.
    func samplesRoot() -> Bool {
        sampleRatio >= 1 || (sampleRatio > 0 && Double(TraceIDs.next() >> 11) * 0x1p-53 < sampleRatio)
    }

    /// Builds the OTLP exporter for `config`. `OTEL_*` environment variables the exporter
    /// knows (`OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_EXPORTER_OTLP_CERTIFICATE`, …) override it.
    static func make(_ config: BridgeConfig.Tracing?, inspector: InspectorLog? = nil, logger: Logger) throws
        -> RequestTracing
    {
        guard let config else { return RequestTracing(tracer: nil, service: nil, inspector: inspector) }
        #if OTLP
            var otel = OTel.Configuration.default
            otel.serviceName = config.serviceName
            otel.diagnosticLogger = .custom(logger)
            otel.diagnosticLogLevel = .warning
            otel.propagators = [.traceContext]
            otel.logs.enabled = false
            otel.metrics.enabled = false
            otel.traces.enabled = true
            otel.traces.exporter = .otlp
            // Roots are sampled by `start` (sampleRatio) before a span is asked for.
            otel.traces.sampler = .parentBasedAlwaysOn
            otel.traces.otlpExporter.endpoint = config.tracesURL
            otel.traces.otlpExporter.headers = config.headers.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
            switch config.transport {
            case .grpc:
                #if OTLPGRPC
                    otel.traces.otlpExporter.protocol = .grpc
                #else
                    // The config check refuses gRPC in a build without it.
                    preconditionFailure("OTLP/gRPC is not in this build")
                #endif
            case .httpProtobuf: otel.traces.otlpExporter.protocol = .httpProtobuf
            case .httpJSON: otel.traces.otlpExporter.protocol = .httpJSON
            }
            let backend = try OTel.makeTracingBackend(configuration: otel)
            return RequestTracing(
                tracer: backend.factory, service: backend.service, inspector: inspector, sampleRatio: config.sampleRatio)
        #else
            // The config check refuses `tracing` in a build without the exporter.
            throw NoExporter()
        #endif
    }

    struct NoExporter: Error, CustomStringConvertible {
        var description: String { "span export is not in this build (built without the OTLP package trait)" }
    }

    /// The trace of a request to a source: ``RequestTrace/none`` unless spans are recorded,
    /// the request carries a valid `traceparent` or the inspector is on.
    func start(
        method: HTTPMethod, path: String, source: String, headers: HTTPHeaders, uri: String, client: String?,
        body: ByteBuffer?
    ) -> RequestTrace {
        // Checked first on every path (see ``IncomingTraceContext``); the cheap test for the
        // header keeps requests without one (nearly all) free of the lookup of two names.
        let incoming = headers.contains(name: "traceparent") ? IncomingTraceContext(headers: headers) : nil
        let inspection = inspector.map {
            InspectionDraft(log: $0, source: source, method: method, uri: uri, client: client, headers: headers, body: body)
        }
        guard let tracer else {
            guard incoming != nil || inspection != nil else { return .none }
            // Passed on as it came, the invalid members of its tracestate left out.
            return RequestTrace(
                span: nil, traceParent: incoming?.traceParent, traceState: incoming?.traceState, tracer: nil,
                inspection: inspection)
        }
        guard incoming?.sampled ?? samplesRoot() else {
            // Not sampled: the event carries the trace's context (the caller's trace, or a new
            // one) with a span id of its own and the flag 00, and nothing else is made.
            let parent = TraceIDs.unsampledParent(traceID: incoming?.traceID)
            return RequestTrace(
                span: nil, traceParent: parent, traceState: incoming?.traceState, tracer: nil, inspection: inspection)
        }
        var context = ServiceContext.topLevel
        if let incoming {
            // The tracer sees these two checked values, never the request's headers.
            var carrier = ["traceparent": incoming.traceParent]
            carrier["tracestate"] = incoming.traceState
            tracer.extract(carrier, into: &context, using: DictionaryExtractor())
        }
        // OpenTelemetry's HTTP server span name: the method and the route.
        let span = tracer.startSpan("\(method.rawValue) \(path)", context: context, ofKind: .server)
        var carrier: [String: String] = [:]
        tracer.inject(span.context, into: &carrier, using: DictionaryInjector())
        span.attributes["http.request.method"] = method.rawValue
        span.attributes["url.path"] = path
        span.attributes["http.route"] = path
        span.attributes["webhook.source"] = source
        return RequestTrace(
            span: span, traceParent: carrier["traceparent"], traceState: carrier["tracestate"], tracer: tracer,
            inspection: inspection)
    }

    /// Records a request answered without the pipeline (refused from its head, a handshake,
    /// a method the source does not take) as one finished server span and inspector record.
    func record(
        method: HTTPMethod, path: String, source: String, headers: HTTPHeaders, uri: String, client: String?,
        answer: BridgeAnswer, outcome: String, cause: (code: String, detail: String)? = nil
    ) {
        guard tracer != nil || inspector != nil else { return }
        let trace = start(method: method, path: path, source: source, headers: headers, uri: uri, client: client, body: nil)
        trace.note(outcome: outcome)
        if let cause { trace.inspection?.noteRejection(cause: cause.code, detail: cause.detail) }
        trace.finish(answer: answer)
    }
}

extension RequestTrace {
    /// Ends the server span with the answer's status (an error status for 5xx, as
    /// OpenTelemetry's HTTP conventions say for servers).
    func finish(answer: BridgeAnswer) {
        inspection?.finish(answer: answer)
        guard let span else { return }
        let status = Int(answer.status.code)
        span.attributes["http.response.status_code"] = status
        if status >= 500 { span.setStatus(SpanStatus(code: .error)) }
        span.end()
    }

    /// What became of the request (`accepted`, `handshake`, `rate_limited`, …).
    func note(outcome: String) {
        span?.attributes["webhook.outcome"] = outcome
        inspection?.note(outcome: outcome)
    }

    /// The event a request became: on the span, and in the inspector's record.
    func note(event: WebhookEvent) {
        if let span {
            span.attributes["webhook.id"] = event.id
            span.attributes["webhook.type"] = event.type
        }
        inspection?.noteEvent(id: event.id, type: event.type)
    }

    /// An event was taken (delivered or kept): the inspector's event stream gets it, as it
    /// was received (before any transform), with its request's headers.
    func noteTaken(_ event: WebhookEvent) { inspection?.noteTaken(event) }

    /// Ends the verification span; the result (`ok` or the 401 code) goes on the request's
    /// span too, and with the detail into the inspector's record.
    func noteVerification(_ verifySpan: (any Span)?, result: String, keyIndex: Int?, detail: String? = nil) {
        if let inspection {
            if result == "ok" {
                inspection.noteKey(keyIndex)
            } else {
                inspection.noteRejection(cause: result, detail: detail)
            }
        }
        guard let span else { return }
        span.attributes["webhook.verification"] = result
        if let verifySpan {
            verifySpan.attributes["webhook.verification"] = result
            if let keyIndex { verifySpan.attributes["webhook.key"] = keyIndex }
            verifySpan.end()
        }
    }

    /// A sink delivery's span (a producer span: the event is handed to a queue).
    func deliverySpan(sink: String, required: Bool) -> (any Span)? {
        guard let span = child("webhook.deliver \(sink)", kind: .producer) else { return nil }
        span.attributes["webhook.sink"] = sink
        span.attributes["webhook.sink.required"] = required
        return span
    }

    /// Ends a delivery's span with its result, which goes into the inspector's record too.
    func endDelivery(
        _ span: (any Span)?, sink: String, required: Bool, _ result: Result<DeliveryReceipt, SinkError>
    ) {
        inspection?.noteDelivery(sink: sink, required: required, result)
        guard let span else { return }
        switch result {
        case .success(let receipt):
            span.attributes["webhook.sink.result"] = "ok"
            span.attributes["webhook.sink.position"] = receipt.position
        case .failure(let error):
            span.attributes["webhook.sink.result"] = error.isPermanent ? "rejected" : "failed"
            span.setStatus(SpanStatus(code: .error, message: error.reason))
        }
        span.end()
    }
}

private struct DictionaryExtractor: Extractor {
    func extract(key: String, from carrier: [String: String]) -> String? { carrier[key] }
}

private struct DictionaryInjector: Injector {
    func inject(_ value: String, forKey key: String, into carrier: inout [String: String]) { carrier[key] = value }
}

/// Trace and span ids for requests that are not sampled: SplitMix64 over one atomic counter,
/// seeded once from the system's random source. Unique and unpredictable enough for ids
/// (W3C asks for randomness, not secrecy) without a `getrandom` call for each.
enum TraceIDs {
    private static let state = Atomic<UInt64>(UInt64.random(in: .min ... .max))

    static func next() -> UInt64 {
        var z = state.wrappingAdd(0x9E37_79B9_7F4A_7C15, ordering: .relaxed).newValue
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    private struct Generator: RandomNumberGenerator {
        mutating func next() -> UInt64 { TraceIDs.next() }
    }

    static func traceID() -> TraceID {
        var generator = Generator()
        return TraceID.random(using: &generator)
    }

    static func spanID() -> SpanID {
        var generator = Generator()
        return SpanID.random(using: &generator)
    }

    /// The `traceparent` of a request that is not sampled, `00-TRACE-SPAN-00`: the caller's
    /// trace id (else a new one) and a new span id, written digit by digit into the
    /// string's own storage (interpolating the two ids' descriptions made three strings).
    static func unsampledParent(traceID: TraceID?) -> String {
        String(unsafeUninitializedCapacity: 55) { text in
            func digit(_ value: UInt64) -> UInt8 { value < 10 ? 0x30 + UInt8(value) : 0x57 + UInt8(value) }
            func put(_ value: UInt64, at offset: Int) {
                for index in 0..<16 { text[offset + index] = digit(value >> UInt64(60 - 4 * index) & 0xF) }
            }
            // All zeros is not a valid id (W3C Trace Context): a draw of zero becomes one.
            func draw() -> UInt64 { max(next(), 1) }
            text[0] = 0x30
            text[1] = 0x30
            text[2] = 0x2D
            if let traceID {
                withUnsafeBytes(of: traceID.bytes) { bytes in
                    for (index, byte) in bytes.enumerated() {
                        text[3 + 2 * index] = digit(UInt64(byte >> 4))
                        text[4 + 2 * index] = digit(UInt64(byte & 0xF))
                    }
                }
            } else {
                put(draw(), at: 3)
                put(draw(), at: 19)
            }
            text[35] = 0x2D
            put(draw(), at: 36)
            text[52] = 0x2D
            text[53] = 0x30
            text[54] = 0x30
            return 55
        }
    }
}
