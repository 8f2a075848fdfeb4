import NIOCore

/// The structured-mode CloudEvents JSON encoding (SPEC section 7, file sink and dead letters):
/// one object on one line; `data` holds the body when it is JSON, else `data_base64`.
public enum CloudEventJSON {
    /// Appends `event` as one JSON line, newline included.
    public static func appendLine(_ event: WebhookEvent, to out: inout ByteBuffer) {
        var head: [UInt8] = [UInt8(ascii: "{")]
        for (index, attribute) in event.attributes.enumerated() {
            if index > 0 { head.append(UInt8(ascii: ",")) }
            JSONWriter.appendString(attribute.name, to: &head)
            head.append(UInt8(ascii: ":"))
            if attribute.name == "webhookkey" {
                head.append(contentsOf: attribute.value.utf8)  // an integer extension
            } else {
                JSONWriter.appendString(attribute.value, to: &head)
            }
        }
        out.writeBytes(head)
        let isJSON = event.bodyJSON != nil || JSONParser.isValid(event.data.readableBytesView)
        if isJSON {
            out.writeString(",\"data\":")
            // Valid JSON holds CR and LF only as whitespace between tokens, so dropping them
            // keeps the value intact and the line one line.
            for byte in event.data.readableBytesView where byte != 0x0A && byte != 0x0D {
                out.writeInteger(byte)
            }
        } else {
            out.writeString(",\"data_base64\":\"")
            out.writeString(Base64.encode(event.data.readableBytesView))
            out.writeString("\"")
        }
        out.writeString("}\n")
    }
}
