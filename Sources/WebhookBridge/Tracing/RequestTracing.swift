import Logging
import NIOCore
import NIOHTTP1
#if OTLPGRPC
    import OTel
#endif
import Foundation
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
    let span: (any RequestSpan)?
    /// What the event carries as `traceparent` and `tracestate`.
    let traceParent: String?
    let traceState: String?
    /// The request's inspector record; nil when the inspector is off.
    let inspection: InspectionDraft?

    static let none = RequestTrace(span: nil, traceParent: nil, traceState: nil, inspection: nil)

    fileprivate init(span: (any RequestSpan)?, traceParent: String?, traceState: String?, inspection: InspectionDraft?) {
        self.span = span
        self.traceParent = traceParent
        self.traceState = traceState
        self.inspection = inspection
    }

    /// A child span of the request's (verification, idempotency, a sink delivery).
    /// The name is made only when the request is traced.
    func child(_ name: @autoclosure () -> String, kind: SpanKind = .internal) -> (any RequestSpan)? {
        span?.child(name(), kind: kind)
    }

    /// Stamps the trace context on `event`.
    func stamp(_ event: inout WebhookEvent) {
        event.traceParent = traceParent
        event.traceState = traceState
    }
}

/// Starts requests' traces: continues a W3C `traceparent` (and `tracestate`) from the
/// request and, with `tracing` configured, records a server span per request with child
/// spans, exported over OTLP/HTTP by the bridge's own exporter (``OTLPSpanExporter``), or
/// over OTLP/gRPC by swift-otel in a build with the `OTLPGRPC` trait. With the inspector on,
/// every request to a source also gets its inspector record.
public final class RequestTracing: Sendable {
    private let tracer: (any RequestTracer)?
    /// The exporter's batching and its flush at shutdown; run with the bridge's services.
    let service: (any Service)?
    /// The inspector's memory (config `admin`); nil when it is off.
    let inspector: InspectorLog?

    /// No spans; an incoming `traceparent` is still passed on to the event.
    public static let passThrough = RequestTracing(tracer: nil, service: nil)

    /// The share of new traces recorded (`sampleRatio`). Decided here, before the tracer is
    /// asked: a request that is not sampled costs no span at all.
    let sampleRatio: Double

    init(tracer: (any RequestTracer)?, service: (any Service)?, inspector: InspectorLog? = nil, sampleRatio: Double = 1) {
        self.tracer = tracer
        self.service = service
        self.inspector = inspector
        self.sampleRatio = sampleRatio
    }

    /// Whether a request without a parent starts a recorded trace.
    func samplesRoot() -> Bool {
        sampleRatio >= 1 || (sampleRatio > 0 && Double(TraceIDs.next() >> 11) * 0x1p-53 < sampleRatio)
    }

    /// Builds the tracer and exporter for `config`. The `OTEL_*` variables of OpenTelemetry's
    /// SDK configuration that apply (`OTEL_EXPORTER_OTLP_HEADERS`,
    /// `OTEL_EXPORTER_OTLP_CERTIFICATE`, `OTEL_BSP_SCHEDULE_DELAY`, …) override it.
    static func make(
        _ config: BridgeConfig.Tracing?, inspector: InspectorLog? = nil, logger: Logger,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws -> RequestTracing {
        guard let config, environment["OTEL_SDK_DISABLED"]?.lowercased() != "true" else {
            return RequestTracing(tracer: nil, service: nil, inspector: inspector)
        }
        let chosen = OTLPSpanExporter.Settings.variable("PROTOCOL", in: environment)
        if (chosen?.value ?? config.transport.rawValue) == BridgeConfig.Tracing.Transport.grpc.rawValue {
            #if OTLPGRPC
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
                // The endpoint as configured: a gRPC endpoint takes no path.
                otel.traces.otlpExporter.endpoint = config.otlpEndpoint
                otel.traces.otlpExporter.headers = config.headers.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
                otel.traces.otlpExporter.protocol = .grpc
                let backend = try OTel.makeTracingBackend(configuration: otel)
                return RequestTracing(
                    tracer: SwiftOTelTracer(tracer: backend.factory), service: backend.service, inspector: inspector,
                    sampleRatio: config.sampleRatio)
            #else
                // The config check refuses gRPC in a build without it; the variable is checked here.
                throw ConfigurationFailure(
                    "\(chosen?.name ?? "tracing.protocol")=grpc: OTLP/gRPC is not in this build (built without the OTLPGRPC package trait)"
                )
            #endif
        }
        let exporter = OTLPSpanExporter(
            settings: try OTLPSpanExporter.Settings(config: config, environment: environment), logger: logger)
        return RequestTracing(
            tracer: OwnTracer(exporter: exporter), service: exporter, inspector: inspector, sampleRatio: config.sampleRatio)
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
                span: nil, traceParent: incoming?.traceParent, traceState: incoming?.traceState, inspection: inspection)
        }
        guard incoming?.sampled ?? samplesRoot() else {
            // Not sampled: the event carries the trace's context (the caller's trace, or a new
            // one) with a span id of its own and the flag 00, and nothing else is made.
            let parent = TraceIDs.unsampledParent(traceID: incoming?.traceID)
            return RequestTrace(span: nil, traceParent: parent, traceState: incoming?.traceState, inspection: inspection)
        }
        // OpenTelemetry's HTTP server span name: the method and the route.
        let span = tracer.start("\(method.rawValue) \(path)", kind: .server, incoming: incoming)
        span.set("http.request.method", .string(method.rawValue))
        span.set("url.path", .string(path))
        span.set("http.route", .string(path))
        span.set("webhook.source", .string(source))
        return RequestTrace(
            span: span, traceParent: span.traceParent, traceState: incoming?.traceState, inspection: inspection)
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
        span.set("http.response.status_code", .int(status))
        if status >= 500 { span.fail(nil) }
        span.end()
    }

    /// What became of the request (`accepted`, `handshake`, `rate_limited`, …).
    func note(outcome: String) {
        span?.set("webhook.outcome", .string(outcome))
        inspection?.note(outcome: outcome)
    }

    /// The event a request became: on the span, and in the inspector's record.
    func note(event: WebhookEvent) {
        if let span {
            span.set("webhook.id", .string(event.id))
            span.set("webhook.type", .string(event.type))
        }
        inspection?.noteEvent(id: event.id, type: event.type)
    }

    /// An event was taken (delivered or kept): the inspector's event stream gets it, as it
    /// was received (before any transform), with its request's headers.
    func noteTaken(_ event: WebhookEvent) { inspection?.noteTaken(event) }

    /// Ends the verification span; the result (`ok` or the 401 code) goes on the request's
    /// span too, and with the detail into the inspector's record.
    func noteVerification(_ verifySpan: (any RequestSpan)?, result: String, keyIndex: Int?, detail: String? = nil) {
        if let inspection {
            if result == "ok" {
                inspection.noteKey(keyIndex)
            } else {
                inspection.noteRejection(cause: result, detail: detail)
            }
        }
        guard let span else { return }
        span.set("webhook.verification", .string(result))
        if let verifySpan {
            verifySpan.set("webhook.verification", .string(result))
            if let keyIndex { verifySpan.set("webhook.key", .int(keyIndex)) }
            verifySpan.end()
        }
    }

    /// A sink delivery's span (a producer span: the event is handed to a queue).
    func deliverySpan(sink: String, required: Bool) -> (any RequestSpan)? {
        guard let span = child("webhook.deliver \(sink)", kind: .producer) else { return nil }
        span.set("webhook.sink", .string(sink))
        span.set("webhook.sink.required", .bool(required))
        return span
    }

    /// Ends a delivery's span with its result, which goes into the inspector's record too.
    func endDelivery(
        _ span: (any RequestSpan)?, sink: String, required: Bool, _ result: Result<DeliveryReceipt, SinkError>
    ) {
        inspection?.noteDelivery(sink: sink, required: required, result)
        guard let span else { return }
        switch result {
        case .success(let receipt):
            span.set("webhook.sink.result", .string("ok"))
            span.set("webhook.sink.position", .string(receipt.position))
        case .failure(let error):
            span.set("webhook.sink.result", .string(error.isPermanent ? "rejected" : "failed"))
            span.fail(error.reason)
        }
        span.end()
    }
}

#if OTLPGRPC
    /// swift-otel's tracer (OTLP/gRPC), behind the bridge's span interface.
    struct SwiftOTelTracer: RequestTracer {
        let tracer: any Tracer

        func start(_ name: String, kind: SpanKind, incoming: IncomingTraceContext?) -> any RequestSpan {
            var context = ServiceContext.topLevel
            if let incoming {
                // The tracer sees these two checked values, never the request's headers.
                var carrier = ["traceparent": incoming.traceParent]
                carrier["tracestate"] = incoming.traceState
                tracer.extract(carrier, into: &context, using: DictionaryExtractor())
            }
            return SwiftOTelSpan(span: tracer.startSpan(name, context: context, ofKind: kind), tracer: tracer)
        }
    }

    final class SwiftOTelSpan: RequestSpan {
        let span: any Span
        let tracer: any Tracer

        init(span: any Span, tracer: any Tracer) {
            self.span = span
            self.tracer = tracer
        }

        var traceParent: String {
            var carrier: [String: String] = [:]
            tracer.inject(span.context, into: &carrier, using: DictionaryInjector())
            return carrier["traceparent"] ?? ""
        }

        func child(_ name: String, kind: SpanKind) -> any RequestSpan {
            SwiftOTelSpan(span: tracer.startSpan(name, context: span.context, ofKind: kind), tracer: tracer)
        }

        func set(_ key: String, _ value: SpanValue) {
            switch value {
            case .string(let text): span.attributes[key] = text
            case .int(let number): span.attributes[key] = number
            case .bool(let flag): span.attributes[key] = flag
            }
        }

        func fail(_ message: String?) { span.setStatus(SpanStatus(code: .error, message: message)) }

        func end() { span.end() }
    }

    private struct DictionaryExtractor: Extractor {
        func extract(key: String, from carrier: [String: String]) -> String? { carrier[key] }
    }

    private struct DictionaryInjector: Injector {
        func inject(_ value: String, forKey key: String, into carrier: inout [String: String]) { carrier[key] = value }
    }
#endif

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

    /// A draw that is never zero (an all-zero trace or span id is invalid).
    static func nonZero() -> UInt64 { max(next(), 1) }

    static func spanID() -> SpanID {
        var generator = Generator()
        return SpanID.random(using: &generator)
    }

    /// The `traceparent` of a request that is not sampled, `00-TRACE-SPAN-00`: the caller's
    /// trace id (else a new one) and a new span id.
    static func unsampledParent(traceID: TraceID?) -> String {
        traceParent(trace: traceID.map(words) ?? (nonZero(), nonZero()), span: nonZero(), sampled: false)
    }

    /// `00-TRACE-SPAN-FLAGS`, written digit by digit into the string's own storage
    /// (interpolating the ids' descriptions made three strings).
    static func traceParent(trace: (high: UInt64, low: UInt64), span: UInt64, sampled: Bool) -> String {
        String(unsafeUninitializedCapacity: 55) { text in
            text[0] = 0x30
            text[1] = 0x30
            text[2] = 0x2D
            Hex16.write(trace.high, into: text, at: 3)
            Hex16.write(trace.low, into: text, at: 19)
            text[35] = 0x2D
            Hex16.write(span, into: text, at: 36)
            text[52] = 0x2D
            text[53] = 0x30
            text[54] = sampled ? 0x31 : 0x30
            return 55
        }
    }

    /// A trace id's 16 bytes as two big-endian words.
    static func words(_ id: TraceID) -> (high: UInt64, low: UInt64) {
        withUnsafeBytes(of: id.bytes) { bytes in
            (
                UInt64(bigEndian: bytes.loadUnaligned(as: UInt64.self)),
                UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
            )
        }
    }
}
