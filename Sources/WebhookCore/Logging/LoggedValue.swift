import Logging

/// Values from requests as log lines hold them: at most a few hundred bytes each. A request
/// chooses its ids, types, paths and headers; taken whole, one 78 KB `X-Request-Id` made
/// every rejection line 78 KB (155 MB of log in 4 s).
public enum LoggedValue {
    /// The longest value a request line holds, in bytes.
    public static let maximumBytes = 256

    /// `text` when it fits in `bytes`, else its start (whole characters) and how long it was.
    public static func bounded(_ text: String, bytes: Int = maximumBytes) -> String {
        guard text.utf8.count > bytes else { return text }
        let utf8 = text.utf8
        var cut = utf8.index(utf8.startIndex, offsetBy: bytes)
        while cut > utf8.startIndex, utf8[cut] & 0xC0 == 0x80 { cut = utf8.index(before: cut) }  // not inside a character
        return String(decoding: utf8[..<cut], as: UTF8.self) + "… (\(utf8.count) bytes)"
    }

    /// A metadata value with every string in it bounded.
    public static func bounded(_ value: Logger.MetadataValue) -> Logger.MetadataValue {
        switch value {
        case .string(let text): return text.utf8.count > maximumBytes ? .string(bounded(text)) : value
        case .stringConvertible(let convertible):
            let text = convertible.description
            return text.utf8.count > maximumBytes ? .string(bounded(text)) : value
        case .array(let values): return .array(values.map { bounded($0) })
        case .dictionary(let values): return .dictionary(values.mapValues { bounded($0) })
        }
    }
}
