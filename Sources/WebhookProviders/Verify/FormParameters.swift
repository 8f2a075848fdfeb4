import WebhookEncoding
import WebhookCore

/// `application/x-www-form-urlencoded` decoding (Twilio's requests, Slack's commands).
public enum FormParameters {
    /// The name/value pairs of a form body or a query string, decoded, in order.
    public static func parse<Bytes: Sequence>(_ bytes: Bytes) -> [(String, String)] where Bytes.Element == UInt8 {
        var pairs: [(String, String)] = []
        for field in Array(bytes).split(separator: UInt8(ascii: "&"), omittingEmptySubsequences: true) {
            let pieces = field.split(separator: UInt8(ascii: "="), maxSplits: 1, omittingEmptySubsequences: false)
            pairs.append((decode(pieces[0]), pieces.count > 1 ? decode(pieces[1]) : ""))
        }
        return pairs
    }

    /// Percent-encoding of a query value: everything but unreserved characters.
    public static func encode(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                out += "%" + Hex.encode([byte]).uppercased()
            }
        }
        return out
    }

    /// Percent-decoding with `+` as space; malformed escapes are kept as they are.
    static func decode(_ bytes: ArraySlice<UInt8>) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var index = bytes.startIndex
        while index < bytes.endIndex {
            let byte = bytes[index]
            if byte == UInt8(ascii: "+") {
                out.append(0x20)
            } else if byte == UInt8(ascii: "%"), index + 2 < bytes.endIndex,
                let value = Hex.decode(String(decoding: bytes[(index + 1)...(index + 2)], as: UTF8.self))
            {
                out.append(value[0])
                index += 2
            } else {
                out.append(byte)
            }
            index += 1
        }
        return String(decoding: out, as: UTF8.self)
    }
}
