import WebhookEncoding
import NIOCore

/// A verified webhook on its way to the sinks: a CloudEvent 1.0 (SPEC section 7) plus the
/// request context that sink templates may read (`{header:Name}`, `{json:/pointer}`).
///
/// The body stays the `ByteBuffer` it arrived in; nothing copies it on the way to a sink.
public struct WebhookEvent: Sendable {
    /// `id`: the provider's event id, else `sha256:` + the body's hex digest.
    public var id: String
    /// `source`: the configured source's name.
    public var source: String
    /// `type`: from the scheme (section 4).
    public var type: String
    /// `time`: when the bridge received the request.
    public var time: Timestamp
    /// `datacontenttype`: the request's Content-Type, when it sent one.
    public var dataContentType: String?
    /// Extension `webhookscheme`.
    public var scheme: String
    /// Extension `webhookkey`: index of the secret that matched.
    public var keyIndex: Int
    /// The raw request body, byte for byte.
    public var data: ByteBuffer
    /// The CloudEvents distributed-tracing extension (`traceparent`, `tracestate`): the
    /// bridge's request span, or the request's own `traceparent` when the bridge records no
    /// spans; nil without a trace context.
    public var traceParent: String?
    public var traceState: String?
    /// Attributes a source's or route's `attributes` set (`subject`, extensions), in the order
    /// they were first set; written by every sink after `webhookkey`.
    public var extensionAttributes: [(name: String, value: String)] = []

    /// The request headers the sinks' templates read (`{header:Name}`); not written to sinks.
    public var requestHeaders: TemplateHeaders
    /// The body parsed as JSON, when something on the way needed it.
    public var bodyJSON: JSONValue?
    /// Whether the body is JSON, when something on the way found out (a scheme's scan for
    /// its type); nil when nothing looked. Spares the file sink a second look.
    public var bodyIsJSON: Bool?

    public init(
        id: String, source: String, type: String, time: Timestamp, dataContentType: String?,
        scheme: String, keyIndex: Int, data: ByteBuffer, requestHeaders: TemplateHeaders = [:],
        bodyJSON: JSONValue? = nil, bodyIsJSON: Bool? = nil
    ) {
        self.id = id
        self.source = source
        self.type = type
        self.time = time
        self.dataContentType = dataContentType
        self.scheme = scheme
        self.keyIndex = keyIndex
        self.data = data
        self.requestHeaders = requestHeaders
        self.bodyJSON = bodyJSON
        self.bodyIsJSON = bodyIsJSON
    }

    /// The CloudEvents context attributes, in a fixed order, as sinks write them.
    public var attributes: [(name: String, value: String)] {
        var list: [(name: String, value: String)] = []
        list.reserveCapacity(attributeCountBound)
        forEachAttribute { list.append(($0, $1)) }
        return list
    }

    /// At least as many as ``attributes`` holds.
    public var attributeCountBound: Int { 10 + extensionAttributes.count }

    /// Calls `body` with each of ``attributes`` in turn, without building the list (what a
    /// sink writes for every event).
    public func forEachAttribute(_ body: (_ name: String, _ value: String) throws -> Void) rethrows {
        try body("specversion", "1.0")
        try body("id", id)
        try body("source", source)
        try body("type", type)
        try body("time", time.rfc3339)
        if let dataContentType { try body("datacontenttype", dataContentType) }
        try body("webhookscheme", scheme)
        try body("webhookkey", String(keyIndex))
        for (name, value) in extensionAttributes { try body(name, value) }
        if let traceParent {
            try body("traceparent", traceParent)
            if let traceState, !traceState.isEmpty { try body("tracestate", traceState) }
        }
    }

    /// Sets the attribute `name` (replacing an earlier value).
    public mutating func setExtensionAttribute(_ name: String, _ value: String) {
        if let index = extensionAttributes.firstIndex(where: { $0.name == name }) {
            extensionAttributes[index].value = value
        } else {
            extensionAttributes.append((name, value))
        }
    }
}
