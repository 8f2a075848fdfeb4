import WebhookEncoding
import NIOCore

/// The structured-mode CloudEvents JSON encoding (SPEC section 7, file sink and dead letters):
/// one object on one line; `data` holds the body when it is JSON, else `data_base64`.
public enum CloudEventJSON {
    /// Appends `event` as one JSON line, newline included.
    ///
    /// - Parameters:
    ///   - dataAsBase64: always write `data_base64`, so the body comes back byte for byte
    ///     (the spool and the dead letters; a file sink embeds JSON bodies as `data`).
    ///   - extensions: extra string attributes (the dead letter's reason).
    ///   - headers: request headers to keep in a `webhookheaders` object, for sink templates
    ///     that read them when the event is delivered later.
    public static func appendLine(
        _ event: WebhookEvent, to out: inout ByteBuffer, dataAsBase64: Bool = false,
        extensions: [(String, String)] = [], headers: [String] = []
    ) {
        var head: [UInt8] = [UInt8(ascii: "{")]
        event.forEachAttribute { name, value in
            if head.count > 1 { head.append(UInt8(ascii: ",")) }
            JSONWriter.appendString(name, to: &head)
            head.append(UInt8(ascii: ":"))
            if name == "webhookkey" {
                head.append(contentsOf: value.utf8)  // an integer extension
            } else {
                JSONWriter.appendString(value, to: &head)
            }
        }
        for (name, value) in extensions {
            head.append(UInt8(ascii: ","))
            JSONWriter.appendString(name, to: &head)
            head.append(UInt8(ascii: ":"))
            JSONWriter.appendString(value, to: &head)
        }
        let kept = headers.compactMap { name in event.requestHeaders.first(name: name).map { (name, $0) } }
        if !kept.isEmpty {
            head.append(contentsOf: ",\"webhookheaders\":{".utf8)
            for (index, (name, value)) in kept.enumerated() {
                if index > 0 { head.append(UInt8(ascii: ",")) }
                JSONWriter.appendString(name, to: &head)
                head.append(UInt8(ascii: ":"))
                JSONWriter.appendString(value, to: &head)
            }
            head.append(UInt8(ascii: "}"))
        }
        out.writeBytes(head)
        let isJSON =
            !dataAsBase64 && (event.bodyJSON != nil || (event.bodyIsJSON ?? JSONParser.isValid(event.data.readableBytesView)))
        if isJSON {
            out.writeString(",\"data\":")
            // Valid JSON holds CR and LF only as whitespace between tokens, so dropping them
            // keeps the value intact and the line one line.
            // Copied in runs between the dropped bytes: byte by byte, this loop was a sixth of
            // the CPU a file sink's request took.
            event.data.withUnsafeReadableBytes { bytes in
                var start = 0
                for (index, byte) in bytes.enumerated() where byte == 0x0A || byte == 0x0D {
                    if index > start { out.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[start..<index])) }
                    start = index + 1
                }
                if bytes.count > start { out.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[start...])) }
            }
        } else {
            out.writeString(",\"data_base64\":\"")
            out.writeString(Base64.encode(event.data.readableBytesView))
            out.writeString("\"")
        }
        out.writeString("}\n")
    }

    /// Why a line is not an event.
    public struct DecodingError: Error, Sendable, CustomStringConvertible {
        public let description: String
    }

    /// Reads back one structured CloudEvent line: a file sink's output, the spool's or the
    /// dead letters'. `data_base64` gives the body byte for byte; `data` (a file sink's JSON
    /// body) is written back compactly, the same JSON value but not always the same bytes.
    public static func decode<Bytes: Collection>(_ line: Bytes) throws(DecodingError) -> WebhookEvent
    where Bytes.Element == UInt8 {
        let value: JSONValue
        do {
            value = try JSONParser.parse(line)
        } catch {
            throw DecodingError(description: error.description)
        }
        func text(_ name: String) throws(DecodingError) -> String {
            guard let text = value[name]?.scalarText else { throw DecodingError(description: "no \(name)") }
            return text
        }
        guard value["specversion"]?.scalarText == "1.0" else { throw DecodingError(description: "not a CloudEvents 1.0 event") }
        let data: ByteBuffer
        if let encoded = value["data_base64"]?.scalarText {
            guard let bytes = Base64.decode(encoded) else { throw DecodingError(description: "data_base64 is not base64") }
            data = ByteBuffer(bytes: bytes)
        } else if let json = value["data"] {
            var bytes: [UInt8] = []
            JSONWriter.append(json, to: &bytes)
            data = ByteBuffer(bytes: bytes)
        } else {
            data = ByteBuffer()
        }
        var headers = TemplateHeaders()
        if case .object(let members)? = value["webhookheaders"] {
            for (name, header) in members { if let text = header.scalarText { headers.add(name: name, value: text) } }
        }
        let time = value["time"]?.scalarText.flatMap(Timestamp.init(rfc3339:)) ?? Timestamp.now()
        var event = WebhookEvent(
            id: try text("id"), source: try text("source"), type: try text("type"), time: time,
            dataContentType: value["datacontenttype"]?.scalarText, scheme: value["webhookscheme"]?.scalarText ?? "replay",
            keyIndex: Int(value["webhookkey"]?.scalarText ?? "0") ?? 0, data: data, requestHeaders: headers)
        event.traceParent = value["traceparent"]?.scalarText
        event.traceState = value["tracestate"]?.scalarText
        // Attributes a config's `attributes` set (`subject`, extensions) come back as they
        // were written; the ones the bridge sets itself are read above or dropped.
        if case .object(let members) = value {
            for (name, member) in members where !EventAttributes.reserved.contains(name) && name != "type" {
                if case .string(let text) = member { event.setExtensionAttribute(name, text) }
            }
        }
        return event
    }
}
