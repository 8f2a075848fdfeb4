import WebhookEncoding
import WebhookCrypto

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
    /// the literal parts are taken as configured. A name made from request values never
    /// comes out as one the sink refuses (SPEC section 8): see
    /// ``TemplateSanitizer/validName(_:)``. When a name must be cut, the values are, never
    /// the literal parts: `out/{type}.jsonl` keeps its `.jsonl`.
    public func render(_ event: WebhookEvent, sanitizer: TemplateSanitizer) -> String {
        if parts.count == 1, case .literal(let text) = parts[0] { return text }
        var out = ""
        for part in parts { out += Self.text(of: part, event, sanitizer) }
        guard sanitizer.needsChange(out) else { return out }
        // Rare: the name must be cut. Only then are the pieces told apart (values from
        // literals), so the common path builds one string and no array.
        return sanitizer.validName(
            parts.map { part in
                if case .literal = part { return .init(text: Self.text(of: part, event, sanitizer), isValue: false) }
                return .init(text: Self.text(of: part, event, sanitizer), isValue: true)
            })
    }

    /// A part's text for `event`: a literal as configured, a value cleaned by `sanitizer`.
    private static func text(of part: Part, _ event: WebhookEvent, _ sanitizer: TemplateSanitizer) -> String {
        switch part {
        case .literal(let text): return text
        case .source: return sanitizer.clean(event.source)
        case .type: return sanitizer.clean(event.type)
        case .id: return sanitizer.clean(event.id)
        case .header(let name): return sanitizer.clean(event.requestHeaders.first(name: name) ?? "")
        case .json(let pointer): return sanitizer.clean(event.bodyJSON?.value(atPointer: pointer)?.scalarText ?? "")
        }
    }

    public static func == (lhs: Template, rhs: Template) -> Bool { lhs.description == rhs.description }
}

/// Why a template can't be parsed.
public struct TemplateError: Error, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
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
    /// A URL's path segment or query value: every byte but RFC 3986's unreserved
    /// characters (`[A-Za-z0-9._~-]`) percent-encoded, so a value never adds a segment, a
    /// query parameter or a fragment.
    case urlComponent

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
        case .urlComponent:
            if value.utf8.allSatisfy(Self.isUnreserved) { return value }
            var out: [UInt8] = []
            out.reserveCapacity(value.utf8.count * 3)
            let hex = Array("0123456789ABCDEF".utf8)
            for byte in value.utf8 {
                if Self.isUnreserved(byte) {
                    out.append(byte)
                } else {
                    out += [UInt8(ascii: "%"), hex[Int(byte >> 4)], hex[Int(byte & 0xF)]]
                }
            }
            return String(decoding: out, as: UTF8.self)
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

// MARK: - Names the sink accepts

extension TemplateSanitizer {
    /// Kafka's longest topic name.
    static let kafkaTopicLimit = 249
    /// The longest file name (one path component) of Linux file systems, in bytes.
    static let fileNameLimit = 255

    /// A rendered template piece: literal text from the config, or a value from the request.
    public struct Piece: Sendable {
        var text: String
        let isValue: Bool
    }

    /// False for nearly every name: it is already one the sink accepts.
    func needsChange(_ name: String) -> Bool {
        switch self {
        case .verbatim, .redisKey, .urlComponent: return false
        case .kafkaTopic: return name.isEmpty || name == "." || name == ".." || name.utf8.count > Self.kafkaTopicLimit
        case .pathComponent: return name.isEmpty || name.hasSuffix("/") || name.utf8.count > Self.fileNameLimit
        }
    }

    /// `name` made into one the sink accepts: an empty Kafka topic or file name becomes `_`,
    /// and a topic over 249 characters or a file name (any one path component) over 255
    /// bytes is cut, with `-` and 16 hex digits of the SHA-256 of the whole value at its end,
    /// so two long values that share their beginning still name two different places.
    /// Names that need no change (nearly all of them) are returned as they are.
    public func validName(_ name: String) -> String {
        needsChange(name) ? validName([Piece(text: name, isValue: true)]) : name
    }

    /// The name `pieces` make, made valid by cutting values (the longest first), never the
    /// literal parts; only when the literal text alone is too long is the whole name cut.
    func validName(_ pieces: [Piece]) -> String {
        switch self {
        case .verbatim, .redisKey, .urlComponent:
            return pieces.map(\.text).joined()
        case .kafkaTopic:
            let name = Self.fitted(pieces, limit: Self.kafkaTopicLimit)
            return name.isEmpty || name == "." || name == ".." ? "_" : name
        case .pathComponent:
            // Components as pieces: a literal may hold `/`, a cleaned value never does.
            var components: [[Piece]] = [[]]
            for piece in pieces {
                guard !piece.isValue, piece.text.contains("/") else {
                    components[components.count - 1].append(piece)
                    continue
                }
                let parts = piece.text.split(separator: "/", omittingEmptySubsequences: false)
                for (index, part) in parts.enumerated() {
                    if index > 0 { components.append([]) }
                    if !part.isEmpty { components[components.count - 1].append(Piece(text: String(part), isValue: false)) }
                }
            }
            var names = components.map { Self.fitted($0, limit: Self.fileNameLimit) }
            if names[names.count - 1].isEmpty { names[names.count - 1] = "_" }
            return names.joined(separator: "/")
        }
    }

    /// The pieces joined within `limit` bytes: each value over its share is cut with a hash
    /// (``shortened(_:limit:)``), the longest first, until the whole fits.
    private static func fitted(_ pieces: [Piece], limit: Int) -> String {
        var pieces = pieces
        var total = pieces.reduce(0) { $0 + $1.text.utf8.count }
        // A cut value keeps at least one byte before its `-` and 16 hex digits.
        let shortest = 18
        while total > limit {
            guard
                let longest = pieces.indices.filter({ pieces[$0].isValue && pieces[$0].text.utf8.count > shortest })
                    .max(by: { pieces[$0].text.utf8.count < pieces[$1].text.utf8.count })
            else {
                return shortened(pieces.map(\.text).joined(), limit: limit)
            }
            let length = pieces[longest].text.utf8.count
            pieces[longest].text = shortened(pieces[longest].text, limit: max(shortest, length - (total - limit)))
            total += pieces[longest].text.utf8.count - length
        }
        return pieces.map(\.text).joined()
    }

    private static func shortened(_ value: String, limit: Int) -> String {
        guard value.utf8.count > limit else { return value }
        let bytes = Array(value.utf8)
        let digest = Hex.encode(Array(HashAlgorithm.sha256.hash(bytes).prefix(8)))
        var cut = limit - 1 - digest.count
        while cut > 0 && bytes[cut] & 0xC0 == 0x80 { cut -= 1 }  // not inside a UTF-8 character
        return String(decoding: bytes[..<cut], as: UTF8.self) + "-" + digest
    }

    /// RFC 3986's unreserved characters, `[A-Za-z0-9._~-]`, as bytes.
    fileprivate static func isUnreserved(_ byte: UInt8) -> Bool { isNameByte(byte) || byte == UInt8(ascii: "~") }

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
