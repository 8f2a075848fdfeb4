/// A strict RFC 8259 JSON parser over raw bytes.
///
/// Strict means: UTF-8 only, no trailing commas, no comments, no raw control characters in
/// strings, no duplicate member names, nothing but whitespace after the value. The file sink
/// relies on that strictness: a body this parser accepts can be embedded in a JSON line as it
/// is, with its CR and LF bytes (which valid JSON holds only as whitespace) dropped.
public struct JSONParser {
    /// Why a document is not JSON, with the byte offset where the parser gave up.
    public struct SyntaxError: Error, Sendable, CustomStringConvertible {
        public let offset: Int
        public let reason: String
        public var description: String { "invalid JSON at byte \(offset): \(reason)" }
    }

    /// Nesting deeper than this is refused, so hostile input can't exhaust the stack.
    public static let maximumDepth = 512

    /// Parses a whole document.
    public static func parse<Bytes: Collection>(_ bytes: Bytes) throws(SyntaxError) -> JSONValue
    where Bytes.Element == UInt8 {
        let result: Result<JSONValue, SyntaxError>? = bytes.withContiguousStorageIfAvailable { buffer in
            Result { () throws(SyntaxError) -> JSONValue in try parse(buffer: buffer) }
        }
        if let result { return try result.get() }
        let copy = Array(bytes)
        return try copy.withUnsafeBufferPointer { buffer throws(SyntaxError) in try parse(buffer: buffer) }
    }

    /// True when `bytes` is one complete, valid JSON document (one ``parse`` would accept);
    /// checked without building the document.
    public static func isValid<Bytes: Collection>(_ bytes: Bytes) -> Bool where Bytes.Element == UInt8 {
        topLevelTexts(bytes, []) != nil
    }

    static func parse(buffer: UnsafeBufferPointer<UInt8>) throws(SyntaxError) -> JSONValue {
        var parser = Cursor(bytes: buffer)
        parser.skipWhitespace()
        let value = try parser.parseValue(depth: 0)
        parser.skipWhitespace()
        guard parser.index == buffer.count else { throw parser.error("unexpected data after the value") }
        return value
    }

    // MARK: - Cursor

    struct Cursor {
        let bytes: UnsafeBufferPointer<UInt8>
        var index = 0

        init(bytes: UnsafeBufferPointer<UInt8>) { self.bytes = bytes }

        func error(_ reason: String) -> SyntaxError { SyntaxError(offset: index, reason: reason) }

        var current: UInt8? { index < bytes.count ? bytes[index] : nil }

        mutating func skipWhitespace() {
            while index < bytes.count {
                switch bytes[index] {
                case 0x20, 0x09, 0x0A, 0x0D: index += 1
                default: return
                }
            }
        }

        mutating func expect(_ literal: StaticString, value: JSONValue) throws(SyntaxError) -> JSONValue {
            let count = literal.utf8CodeUnitCount
            guard index + count <= bytes.count else { throw error("unexpected end of input") }
            let start = literal.utf8Start
            for offset in 0..<count where bytes[index + offset] != start[offset] {
                throw error("unexpected character")
            }
            index += count
            return value
        }

        mutating func parseValue(depth: Int) throws(SyntaxError) -> JSONValue {
            guard depth < JSONParser.maximumDepth else { throw error("nesting deeper than \(JSONParser.maximumDepth)") }
            guard let byte = current else { throw error("unexpected end of input") }
            switch byte {
            case UInt8(ascii: "{"): return try parseObject(depth: depth)
            case UInt8(ascii: "["): return try parseArray(depth: depth)
            case UInt8(ascii: "\""): return .string(try parseString())
            case UInt8(ascii: "t"): return try expect("true", value: .bool(true))
            case UInt8(ascii: "f"): return try expect("false", value: .bool(false))
            case UInt8(ascii: "n"): return try expect("null", value: .null)
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try parseNumber()
            default: throw error("unexpected character")
            }
        }

        mutating func parseObject(depth: Int) throws(SyntaxError) -> JSONValue {
            index += 1
            var members: [(String, JSONValue)] = []
            // Room for a webhook's usual object up front: growing 1, 2, 4, 8 reallocated and
            // moved the members three times, half of a body's parse.
            members.reserveCapacity(8)
            // Duplicate names are found by comparing with the earlier members while there are
            // few (a webhook's objects: a set per object was a tenth of a body's parse), by a
            // set past 16.
            var names: Set<String>?
            skipWhitespace()
            if current == UInt8(ascii: "}") {
                index += 1
                return .object(members)
            }
            while true {
                skipWhitespace()
                guard current == UInt8(ascii: "\"") else { throw error("expected a member name") }
                let nameOffset = index
                let name = try parseString()
                let duplicate: Bool
                if var seen = names {
                    names = nil  // the set is changed in place, not copied
                    duplicate = !seen.insert(name).inserted
                    names = seen
                } else if members.count < 16 {
                    duplicate = members.contains { $0.0 == name }
                } else {
                    var seen = Set(members.map(\.0))
                    duplicate = !seen.insert(name).inserted
                    names = seen
                }
                guard !duplicate else {
                    throw SyntaxError(offset: nameOffset, reason: "duplicate member \"\(name)\"")
                }
                skipWhitespace()
                guard current == UInt8(ascii: ":") else { throw error("expected ':'") }
                index += 1
                skipWhitespace()
                members.append((name, try parseValue(depth: depth + 1)))
                skipWhitespace()
                switch current {
                case UInt8(ascii: ","): index += 1
                case UInt8(ascii: "}"):
                    index += 1
                    return .object(members)
                default: throw error("expected ',' or '}'")
                }
            }
        }

        mutating func parseArray(depth: Int) throws(SyntaxError) -> JSONValue {
            index += 1
            var items: [JSONValue] = []
            skipWhitespace()
            if current == UInt8(ascii: "]") {
                index += 1
                return .array(items)
            }
            while true {
                skipWhitespace()
                items.append(try parseValue(depth: depth + 1))
                skipWhitespace()
                switch current {
                case UInt8(ascii: ","): index += 1
                case UInt8(ascii: "]"):
                    index += 1
                    return .array(items)
                default: throw error("expected ',' or ']'")
                }
            }
        }

        mutating func parseNumber() throws(SyntaxError) -> JSONValue {
            let range = try scanNumber()
            return .number(String(decoding: UnsafeBufferPointer(rebasing: bytes[range]), as: UTF8.self))
        }

        /// Moves past a number and returns where its text is.
        mutating func scanNumber() throws(SyntaxError) -> Range<Int> {
            let start = index
            if current == UInt8(ascii: "-") { index += 1 }
            guard let first = current, first >= 0x30, first <= 0x39 else { throw error("expected a digit") }
            if first == 0x30 {
                index += 1
            } else {
                skipDigits()
            }
            if current == UInt8(ascii: ".") {
                index += 1
                guard let d = current, d >= 0x30, d <= 0x39 else { throw error("expected a digit") }
                skipDigits()
            }
            if current == UInt8(ascii: "e") || current == UInt8(ascii: "E") {
                index += 1
                if current == UInt8(ascii: "+") || current == UInt8(ascii: "-") { index += 1 }
                guard let d = current, d >= 0x30, d <= 0x39 else { throw error("expected a digit") }
                skipDigits()
            }
            return start..<index
        }

        mutating func skipDigits() {
            while let d = current, d >= 0x30, d <= 0x39 { index += 1 }
        }

        mutating func parseString() throws(SyntaxError) -> String {
            index += 1
            let start = index
            // Fast path: no escapes. ASCII (the usual case) is valid UTF-8 as it is, which
            // spares the generic validation.
            // Eight bytes at a time to the first quote, backslash or control character.
            let run = StringBytes.plainRun(bytes, from: index)
            index = run.end
            if let byte = current {
                if byte == UInt8(ascii: "\"") {
                    let raw = UnsafeBufferPointer(rebasing: bytes[start..<index])
                    index += 1
                    if !run.nonASCII { return String(decoding: raw, as: UTF8.self) }
                    guard let text = String(validating: raw, as: UTF8.self) else {
                        throw SyntaxError(offset: start, reason: "string is not valid UTF-8")
                    }
                    return text
                }
                if byte < 0x20 { throw error("control character in string") }
            }
            var scalars = Array(UnsafeBufferPointer(rebasing: bytes[start..<index]))
            while true {
                guard let byte = current else { throw error("unterminated string") }
                switch byte {
                case UInt8(ascii: "\""):
                    index += 1
                    guard let text = String(validating: scalars, as: UTF8.self) else {
                        throw SyntaxError(offset: start, reason: "string is not valid UTF-8")
                    }
                    return text
                case UInt8(ascii: "\\"):
                    index += 1
                    let scalar = try parseEscape()
                    UTF8.encode(scalar) { scalars.append($0) }
                default:
                    if byte < 0x20 { throw error("control character in string") }
                    scalars.append(byte)
                    index += 1
                }
            }
        }

        /// The character a backslash escape stands for; the cursor is just past the backslash.
        mutating func parseEscape() throws(SyntaxError) -> Unicode.Scalar {
            guard let escape = current else { throw error("unterminated string") }
            index += 1
            switch escape {
            case UInt8(ascii: "\""): return "\""
            case UInt8(ascii: "\\"): return "\\"
            case UInt8(ascii: "/"): return "/"
            case UInt8(ascii: "b"): return "\u{08}"
            case UInt8(ascii: "f"): return "\u{0C}"
            case UInt8(ascii: "n"): return "\n"
            case UInt8(ascii: "r"): return "\r"
            case UInt8(ascii: "t"): return "\t"
            case UInt8(ascii: "u"):
                var code = try parseHex4()
                if (0xD800...0xDBFF).contains(code) {
                    guard current == UInt8(ascii: "\\") else { throw error("unpaired surrogate") }
                    index += 1
                    guard current == UInt8(ascii: "u") else { throw error("unpaired surrogate") }
                    index += 1
                    let low = try parseHex4()
                    guard (0xDC00...0xDFFF).contains(low) else { throw error("unpaired surrogate") }
                    code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                } else if (0xDC00...0xDFFF).contains(code) {
                    throw error("unpaired surrogate")
                }
                guard let scalar = Unicode.Scalar(code) else { throw error("invalid escape") }
                return scalar
            default:
                throw error("invalid escape")
            }
        }

        mutating func parseHex4() throws(SyntaxError) -> UInt32 {
            guard index + 4 <= bytes.count else { throw error("unterminated escape") }
            var value: UInt32 = 0
            for _ in 0..<4 {
                let byte = bytes[index]
                let digit: UInt32
                switch byte {
                case 0x30...0x39: digit = UInt32(byte - 0x30)
                case 0x41...0x46: digit = UInt32(byte - 0x41 + 10)
                case 0x61...0x66: digit = UInt32(byte - 0x61 + 10)
                default: throw error("invalid \\u escape")
                }
                value = value << 4 | digit
                index += 1
            }
            return value
        }
    }
}
