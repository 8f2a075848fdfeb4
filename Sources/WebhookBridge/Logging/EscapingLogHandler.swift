import Logging
import WebhookCore
import WebhookEncoding

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The bridge's log lines on standard error, in swift-log's `StreamLogHandler` layout
/// (`TIME LEVEL LABEL: key=value … [SOURCE] MESSAGE`), with every control character in the
/// message and in metadata escaped (SPEC section 8): ids, types, headers and paths come from
/// requests, and a value holding a newline or a terminal escape must never start a line of
/// its own (a forged `critical`) or drive the operator's terminal.
public struct EscapingLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    public var logLevel: Logger.Level = .info
    private let label: String
    private let write: @Sendable (String) -> Void

    /// Writes to standard error through ``StandardErrorLog/shared``: off the caller's thread,
    /// whole lines in order.
    public static func standardError(label: String) -> EscapingLogHandler {
        EscapingLogHandler(label: label) { StandardErrorLog.shared.write($0) }
    }

    /// Hands each formatted line (newline included) to `write`.
    public init(label: String, write: @escaping @Sendable (String) -> Void) {
        self.label = label
        self.write = write
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    /// `LOG_FORMAT`: `text` (this layout) or `json` (one JSON object a line).
    public enum Format: Sendable { case text, json }
    public var format: Format = .text

    public func log(event: LogEvent) {
        var all = metadata
        if let provided = metadataProvider?.get() { all.merge(provided) { $1 } }
        if let explicit = event.metadata { all.merge(explicit) { $1 } }
        if let error = event.error { all["error.message"] = "\(error)" }
        if format == .json {
            write(Self.jsonLine(event: event, label: label, metadata: all))
            return
        }
        var line = Self.timestamp() + " \(event.level)" + (label.isEmpty ? "" : " ") + label + ":"
        for (key, value) in all.sorted(by: { $0.key < $1.key }) {
            line += " " + Self.escaped(key) + "=" + Self.escaped("\(value)")
        }
        line += " [" + event.source + "] " + Self.escaped("\(event.message)") + "\n"
        write(line)
    }

    /// `{"time": …, "level": …, "message": …, "logger": …, <metadata keys>…}` and a newline:
    /// JSON escapes every control character, so a value from a request stays in its field.
    static func jsonLine(event: LogEvent, label: String, metadata: Logger.Metadata) -> String {
        var members: [(String, JSONValue)] = [
            ("time", .string(Timestamp.now().rfc3339)), ("level", .string(event.level.rawValue)),
            ("message", .string("\(event.message)")), ("logger", .string(label)),
        ]
        let reserved: Set<String> = ["time", "level", "message", "logger"]
        for (key, value) in metadata.sorted(by: { $0.key < $1.key }) {
            members.append((reserved.contains(key) ? "metadata." + key : key, json(value)))
        }
        var bytes: [UInt8] = []
        JSONWriter.append(.object(members), to: &bytes)
        bytes.append(0x0A)
        return String(decoding: bytes, as: UTF8.self)
    }

    private static func json(_ value: Logger.MetadataValue) -> JSONValue {
        switch value {
        case .string(let text): return .string(text)
        case .stringConvertible(let convertible): return .string(convertible.description)
        case .array(let items): return .array(items.map(json))
        case .dictionary(let members): return .object(members.sorted { $0.key < $1.key }.map { ($0.key, json($0.value)) })
        }
    }

    /// `text` with control characters (C0, DEL, C1) written as `\n`, `\r`, `\t` or `\u{XX}`.
    /// Text without any (nearly all of it) is returned as it is.
    public static func escaped(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: isControl) else { return text }
        var out = ""
        out.reserveCapacity(text.utf8.count + 8)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where isControl(scalar): out += "\\u{" + String(scalar.value, radix: 16) + "}"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    private static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value)
    }

    private static func timestamp() -> String {
        var buffer = [CChar](repeating: 0, count: 255)
        var now = time(nil)
        var local = tm()
        localtime_r(&now, &local)
        let count = strftime(&buffer, buffer.count, "%Y-%m-%dT%H:%M:%S%z", &local)
        return String(decoding: buffer.prefix(count).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
