import NIOCore
import NIOHTTP1
import Testing
import WebhookCore
import WebhookEncoding

@Suite("Structured CloudEvents lines (SPEC section 7)")
struct CloudEventJSONTests {
    func line(body: [UInt8], contentType: String? = "application/json") throws -> JSONValue {
        let event = WebhookEvent(
            id: "evt_1", source: "stripe", type: "charge.succeeded", time: Timestamp(millisecondsSince1970: 1_764_424_800_123),
            dataContentType: contentType, scheme: "stripe", keyIndex: 1, data: ByteBuffer(bytes: body))
        var out = ByteBuffer()
        CloudEventJSON.appendLine(event, to: &out)
        let bytes = Array(out.readableBytesView)
        #expect(bytes.last == 0x0A)
        #expect(bytes.dropLast().allSatisfy { $0 != 0x0A })
        return try JSONParser.parse(bytes)
    }

    @Test("a JSON body is embedded as data, on one line, with every attribute")
    func jsonBody() throws {
        let body = Array("{\n  \"id\": \"evt_1\",\r\n  \"text\": \"a\\nb\"\n}\n".utf8)
        let value = try line(body: body)
        #expect(value["specversion"] == .string("1.0"))
        #expect(value["id"] == .string("evt_1"))
        #expect(value["source"] == .string("stripe"))
        #expect(value["type"] == .string("charge.succeeded"))
        #expect(value["time"] == .string("2025-11-29T14:00:00.123Z"))
        #expect(value["datacontenttype"] == .string("application/json"))
        #expect(value["webhookscheme"] == .string("stripe"))
        #expect(value["webhookkey"] == .number("1"))
        #expect(value["data"] == (try JSONParser.parse(body)))
        #expect(value["data_base64"] == nil)
    }

    @Test("attributes set by a config (subject, extensions) are written after webhookkey and read back, as the spool needs")
    func extensionAttributes() throws {
        var event = WebhookEvent(
            id: "evt_1", source: "stripe", type: "charge.succeeded", time: Timestamp(millisecondsSince1970: 1_764_424_800_123),
            dataContentType: "application/json", scheme: "stripe", keyIndex: 0, data: ByteBuffer(string: "{}"))
        event.setExtensionAttribute("subject", "ch_1")
        event.setExtensionAttribute("tenant", "t-9")
        event.setExtensionAttribute("subject", "ch_2")
        #expect(event.attributes.map(\.name).suffix(3) == ["webhookkey", "subject", "tenant"])
        var out = ByteBuffer()
        CloudEventJSON.appendLine(event, to: &out, dataAsBase64: true, extensions: [("deadletterreason", "too large")])
        let decoded = try CloudEventJSON.decode(out.readableBytesView.dropLast())
        #expect(decoded.extensionAttributes.map(\.name) == ["subject", "tenant"])
        #expect(decoded.extensionAttributes.map(\.value) == ["ch_2", "t-9"])
        #expect(decoded.type == "charge.succeeded")
    }

    @Test("a body that is not JSON goes to data_base64, byte for byte")
    func binaryBody() throws {
        let body: [UInt8] = Array("From=%2B1555&Body=hi".utf8) + [0x00, 0xFF, 0x0A]
        let value = try line(body: body, contentType: "application/x-www-form-urlencoded")
        #expect(value["data"] == nil)
        guard case .string(let encoded)? = value["data_base64"] else {
            Issue.record("no data_base64")
            return
        }
        #expect(Base64.decode(encoded) == body)
    }

    @Test("datacontenttype is left out when the request had no Content-Type")
    func noContentType() throws {
        #expect(try line(body: Array("{}".utf8), contentType: nil)["datacontenttype"] == nil)
    }

    @Test(
        "RFC 3339 time across dates",
        arguments: [
            (Int64(0), "1970-01-01T00:00:00.000Z"),
            (Int64(951_782_400_000), "2000-02-29T00:00:00.000Z"),
            (Int64(1_798_761_599_999), "2026-12-31T23:59:59.999Z"),
            (Int64(253_402_300_799_999), "9999-12-31T23:59:59.999Z"),
            (Int64(-62_167_219_200_000), "0000-01-01T00:00:00.000Z"),
            (Int64(1_000_000_000_001), "2001-09-09T01:46:40.001Z"),
            // Past year 9999 the digit-by-digit writer hands over to the general one.
            (Int64(253_402_300_800_000), "10000-01-01T00:00:00.000Z"),
        ])
    func time(milliseconds: Int64, text: String) {
        #expect(Timestamp(millisecondsSince1970: milliseconds).rfc3339 == text)
    }

    @Test("RFC 3339 time reads back as the same instant, over 10,000 seeded instants")
    func timeRoundTrip() {
        var generator = SeededGenerator(seed: 0x7173)
        for _ in 0..<10_000 {
            let milliseconds = Int64.random(in: -62_167_219_200_000...253_402_300_799_999, using: &generator)
            let text = Timestamp(millisecondsSince1970: milliseconds).rfc3339
            #expect(text.utf8.count == 24)
            #expect(Timestamp(rfc3339: text)?.millisecondsSince1970 == milliseconds, "\(milliseconds) \(text)")
        }
    }
}
