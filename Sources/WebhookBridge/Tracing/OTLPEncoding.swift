import WebhookEncoding

/// An OTLP `ExportTraceServiceRequest` (opentelemetry-proto's
/// `collector/trace/v1/trace_service.proto`) written straight from finished spans: in
/// protobuf's binary encoding for `http/protobuf`, or in OTLP's JSON encoding for `http/json`
/// (protobuf's JSON mapping, except that trace and span ids are hex, as OTLP requires).
///
/// One resource (`service.name` and the others) and one instrumentation scope (the bridge)
/// hold every span of the batch.
struct OTLPEncoding: Sendable {
    /// The resource's attributes, `service.name` first.
    let resource: [(String, SpanValue)]
    let scopeName: String
    let scopeVersion: String

    // MARK: protobuf

    func protobuf(_ spans: some Collection<FinishedSpan>) -> [UInt8] {
        var spansBytes: [UInt8] = []
        spansBytes.reserveCapacity(spans.count * 300)
        var scratch: [UInt8] = []
        for span in spans {
            scratch.removeAll(keepingCapacity: true)
            Self.span(span, into: &scratch)
            Protobuf.message(2, scratch, into: &spansBytes)  // ScopeSpans.spans
        }
        var scope: [UInt8] = []
        Protobuf.string(1, scopeName, into: &scope)  // InstrumentationScope.name
        Protobuf.string(2, scopeVersion, into: &scope)
        var scopeSpans: [UInt8] = []
        Protobuf.message(1, scope, into: &scopeSpans)  // ScopeSpans.scope
        scopeSpans += spansBytes

        var resourceBytes: [UInt8] = []
        for (key, value) in resource { Self.keyValue(1, key, value, into: &resourceBytes) }  // Resource.attributes
        var resourceSpans: [UInt8] = []
        Protobuf.message(1, resourceBytes, into: &resourceSpans)  // ResourceSpans.resource
        Protobuf.message(2, scopeSpans, into: &resourceSpans)  // ResourceSpans.scope_spans

        var request: [UInt8] = []
        request.reserveCapacity(resourceSpans.count + 8)
        Protobuf.message(1, resourceSpans, into: &request)  // ExportTraceServiceRequest.resource_spans
        return request
    }

    /// `opentelemetry.proto.trace.v1.Span`.
    static func span(_ span: FinishedSpan, into bytes: inout [UInt8]) {
        Protobuf.tag(1, .lengthDelimited, into: &bytes)  // trace_id
        Protobuf.varint(16, into: &bytes)
        Protobuf.bigEndian(span.traceHigh, into: &bytes)
        Protobuf.bigEndian(span.traceLow, into: &bytes)
        Protobuf.tag(2, .lengthDelimited, into: &bytes)  // span_id
        Protobuf.varint(8, into: &bytes)
        Protobuf.bigEndian(span.spanID, into: &bytes)
        if let state = span.traceState { Protobuf.string(3, state, into: &bytes) }
        if span.parentID != 0 {
            Protobuf.tag(4, .lengthDelimited, into: &bytes)  // parent_span_id
            Protobuf.varint(8, into: &bytes)
            Protobuf.bigEndian(span.parentID, into: &bytes)
        }
        Protobuf.string(5, span.name, into: &bytes)
        Protobuf.tag(6, .varint, into: &bytes)  // kind
        Protobuf.varint(UInt64(span.otlpKind), into: &bytes)
        Protobuf.fixed64(7, span.start, into: &bytes)  // start_time_unix_nano
        Protobuf.fixed64(8, span.end, into: &bytes)  // end_time_unix_nano
        for (key, value) in span.attributes { keyValue(9, key, value, into: &bytes) }
        if span.error {
            var status: [UInt8] = []
            if let message = span.message { Protobuf.string(2, message, into: &status) }
            Protobuf.tag(3, .varint, into: &status)  // Status.code: STATUS_CODE_ERROR
            Protobuf.varint(2, into: &status)
            Protobuf.message(15, status, into: &bytes)
        }
    }

    /// A `KeyValue` as field `field` of its message.
    static func keyValue(_ field: Int, _ key: String, _ value: SpanValue, into bytes: inout [UInt8]) {
        var any: [UInt8] = []
        switch value {
        case .string(let text): Protobuf.string(1, text, into: &any)
        case .bool(let flag):
            Protobuf.tag(2, .varint, into: &any)
            Protobuf.varint(flag ? 1 : 0, into: &any)
        case .int(let number):
            Protobuf.tag(3, .varint, into: &any)
            Protobuf.varint(UInt64(bitPattern: Int64(number)), into: &any)
        }
        var pair: [UInt8] = []
        Protobuf.string(1, key, into: &pair)
        Protobuf.message(2, any, into: &pair)
        Protobuf.message(field, pair, into: &bytes)
    }

    // MARK: JSON

    func json(_ spans: some Collection<FinishedSpan>) -> [UInt8] {
        let scope = JSONValue.object([("name", .string(scopeName)), ("version", .string(scopeVersion))])
        let document = JSONValue.object([
            (
                "resourceSpans",
                .array([
                    .object([
                        ("resource", .object([("attributes", .array(resource.map(Self.jsonKeyValue)))])),
                        ("scopeSpans", .array([.object([("scope", scope), ("spans", .array(spans.map(Self.jsonSpan)))])])),
                    ])
                ])
            )
        ])
        var bytes: [UInt8] = []
        JSONWriter.append(document, to: &bytes)
        return bytes
    }

    static func jsonSpan(_ span: FinishedSpan) -> JSONValue {
        var members: [(String, JSONValue)] = [
            ("traceId", .string(Hex16.digits(span.traceHigh) + Hex16.digits(span.traceLow))),
            ("spanId", .string(Hex16.digits(span.spanID))),
        ]
        if let state = span.traceState { members.append(("traceState", .string(state))) }
        if span.parentID != 0 { members.append(("parentSpanId", .string(Hex16.digits(span.parentID)))) }
        members += [
            ("name", .string(span.name)),
            ("kind", .number(String(span.otlpKind))),
            // 64-bit integers are strings in protobuf's JSON mapping.
            ("startTimeUnixNano", .string(String(span.start))),
            ("endTimeUnixNano", .string(String(span.end))),
            ("attributes", .array(span.attributes.map(jsonKeyValue))),
        ]
        if span.error {
            var status: [(String, JSONValue)] = [("code", .number("2"))]
            if let message = span.message { status.append(("message", .string(message))) }
            members.append(("status", .object(status)))
        }
        return .object(members)
    }

    static func jsonKeyValue(_ pair: (String, SpanValue)) -> JSONValue {
        let value: JSONValue
        switch pair.1 {
        case .string(let text): value = .object([("stringValue", .string(text))])
        case .bool(let flag): value = .object([("boolValue", .bool(flag))])
        case .int(let number): value = .object([("intValue", .string(String(number)))])
        }
        return .object([("key", .string(pair.0)), ("value", value)])
    }
}

/// Protocol buffers' binary encoding, the few parts OTLP's trace messages use.
enum Protobuf {
    enum WireType: UInt64 {
        case varint = 0
        case fixed64 = 1
        case lengthDelimited = 2
    }

    static func tag(_ field: Int, _ type: WireType, into bytes: inout [UInt8]) {
        varint(UInt64(field) << 3 | type.rawValue, into: &bytes)
    }

    static func varint(_ value: UInt64, into bytes: inout [UInt8]) {
        var value = value
        while value >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: value) | 0x80)
            value >>= 7
        }
        bytes.append(UInt8(value))
    }

    static func fixed64(_ field: Int, _ value: UInt64, into bytes: inout [UInt8]) {
        tag(field, .fixed64, into: &bytes)
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    static func bigEndian(_ value: UInt64, into bytes: inout [UInt8]) {
        withUnsafeBytes(of: value.bigEndian) { bytes.append(contentsOf: $0) }
    }

    static func string(_ field: Int, _ text: String, into bytes: inout [UInt8]) {
        tag(field, .lengthDelimited, into: &bytes)
        var text = text
        text.withUTF8 { utf8 in
            varint(UInt64(utf8.count), into: &bytes)
            bytes.append(contentsOf: utf8)
        }
    }

    /// An embedded message (its encoded bytes) as field `field`.
    static func message(_ field: Int, _ message: [UInt8], into bytes: inout [UInt8]) {
        tag(field, .lengthDelimited, into: &bytes)
        varint(UInt64(message.count), into: &bytes)
        bytes += message
    }
}
