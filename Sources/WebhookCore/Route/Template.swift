import NIOHTTP1

/// A name template for topics, keys, streams and file paths (SPEC section 3):
/// `webhooks.{source}`, `{id}`, `{header:X-GitHub-Event}`, `{json:/repository/name}`.
public struct Template: Sendable, Equatable, CustomStringConvertible {
    enum Part: Sendable, Equatable {
        case literal(String)
        case source
        case type
        case id
        case header(String)
        case json(String)
    }

    let parts: [Part]
    public let description: String

    /// Parses `text`; throws a message suitable for a config problem.
    public init(parsing text: String) throws(TemplateError) {
        var parts: [Part] = []
        var literal = ""
        var rest = text[...]
        while let open = rest.firstIndex(where: { $0 == "{" || $0 == "}" }) {
            literal += rest[..<open]
            guard rest[open] == "{" else { throw TemplateError("unmatched '}'; placeholders look like {source}") }
            guard let close = rest[open...].firstIndex(of: "}") else {
                throw TemplateError("unmatched '{'; placeholders look like {source}")
            }
            let name = String(rest[rest.index(after: open)..<close])
            let part: Part
            switch name {
            case "source": part = .source
            case "type": part = .type
            case "id": part = .id
            default:
                if name.hasPrefix("header:"), name.count > 7 {
                    part = .header(String(name.dropFirst(7)))
                } else if name.hasPrefix("json:/") || name == "json:" {
                    part = .json(String(name.dropFirst(5)))
                } else {
                    throw TemplateError(
                        "unknown placeholder {\(name)}; use {source}, {type}, {id}, {header:Name} or {json:/pointer}")
                }
            }
            if !literal.isEmpty {
                parts.append(.literal(literal))
                literal = ""
            }
            parts.append(part)
            rest = rest[rest.index(after: close)...]
        }
        literal += rest
        if !literal.isEmpty { parts.append(.literal(literal)) }
        self.parts = parts
        self.description = text
    }

    /// The request headers the template reads (`{header:Name}`).
    public var headerNames: [String] {
        parts.compactMap { if case .header(let name) = $0 { return name } else { return nil } }
    }

    /// True when rendering needs the body parsed as JSON.
    public var usesBodyJSON: Bool {
        parts.contains { if case .json = $0 { return true } else { return false } }
    }

    /// Renders the template for `event`; placeholder values are passed through `sanitizer`,
    /// the literal parts are taken as configured.
    public func render(_ event: WebhookEvent, sanitizer: TemplateSanitizer) -> String {
        var out = ""
        for part in parts {
            switch part {
            case .literal(let text): out += text
            case .source: out += sanitizer.clean(event.source)
            case .type: out += sanitizer.clean(event.type)
            case .id: out += sanitizer.clean(event.id)
            case .header(let name): out += sanitizer.clean(event.requestHeaders.first(name: name) ?? "")
            case .json(let pointer): out += sanitizer.clean(event.bodyJSON?.value(atPointer: pointer)?.scalarText ?? "")
            }
        }
        return out
    }

    public static func == (lhs: Template, rhs: Template) -> Bool { lhs.description == rhs.description }
}

/// Why a template can't be parsed.
public struct TemplateError: Error, Sendable {
    public let message: String
    init(_ message: String) { self.message = message }
}

/// What a rendered placeholder may contain where the name ends up (SPEC section 3: characters
/// a Kafka topic or Redis key can't hold become `_`).
public enum TemplateSanitizer: Sendable, Equatable {
    /// Kafka topic names: `[A-Za-z0-9._-]`.
    case kafkaTopic
    /// Kafka message keys: any bytes, kept as they are.
    case verbatim
    /// Redis keys: printable, no whitespace or control characters.
    case redisKey
    /// A file path component: `[A-Za-z0-9._-]`, never `.` or `..`, so a value can't climb
    /// out of the configured directory.
    case pathComponent

    public func clean(_ value: String) -> String {
        switch self {
        case .verbatim:
            return value
        case .kafkaTopic, .pathComponent:
            // The usual value (a source name, a dotted event type) needs no change: checking
            // its bytes is much cheaper than rebuilding it scalar by scalar.
            if value.utf8.allSatisfy(Self.isNameByte), !(self == .pathComponent && value.utf8.allSatisfy { $0 == 0x2E }) {
                return value
            }
            var out = String(
                String.UnicodeScalarView(
                    value.unicodeScalars.map { scalar in
                        switch scalar {
                        case "a"..."z", "A"..."Z", "0"..."9", ".", "_", "-": return scalar
                        default: return "_"
                        }
                    }))
            if case .pathComponent = self, out.allSatisfy({ $0 == "." }) {
                out = String(repeating: "_", count: max(out.count, 1))
            }
            return out
        case .redisKey:
            if value.utf8.allSatisfy({ (0x21...0x7E).contains($0) }) { return value }  // printable ASCII
            return String(
                String.UnicodeScalarView(
                    value.unicodeScalars.map { scalar in
                        scalar.properties.isWhitespace || scalar.value < 0x20 || scalar.value == 0x7F ? "_" : scalar
                    }))
        }
    }
}

extension TemplateSanitizer {
    /// `[A-Za-z0-9._-]`, as bytes.
    fileprivate static func isNameByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
            UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "-"):
            return true
        default:
            return false
        }
    }
}
