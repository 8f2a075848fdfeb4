#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

extension JSONParser {
    /// For each of `names`, what `parse(bytes)[name]?.scalarText` gives, when ``parse`` would
    /// accept `bytes`; nil when it would not. Only the wanted members' texts are made: the
    /// document is checked as strictly as ``parse`` checks it, without building it.
    ///
    /// A scheme reading an event's `type` or `id` needs no more. Objects whose member names
    /// are plain ASCII (no escapes) and at most 32 a level are checked for duplicate names
    /// byte by byte; anything else (rare in webhooks) is left to ``parse``, so both always
    /// agree.
    public static func topLevelTexts<Bytes: Collection>(_ bytes: Bytes, _ names: [String]) -> [String?]?
    where Bytes.Element == UInt8 {
        if let result = bytes.withContiguousStorageIfAvailable({ topLevelTexts(buffer: $0, names) }) { return result }
        return Array(bytes).withUnsafeBufferPointer { topLevelTexts(buffer: $0, names) }
    }

    static func topLevelTexts(buffer: UnsafeBufferPointer<UInt8>, _ names: [String]) -> [String?]? {
        // The member names' stack lives on this call's stack: no allocation for the scan.
        // Offsets as UInt32 keep it at 1 KiB, the most `withUnsafeTemporaryAllocation` puts
        // on the stack (as `Range<Int>` it was 2 KiB: a heap allocation per request).
        guard buffer.count <= Int(UInt32.max) else {
            guard let value = try? parse(buffer: buffer) else { return nil }
            return names.map { value[$0]?.scalarText }
        }
        let scanned = withUnsafeTemporaryAllocation(of: Range<UInt32>.self, capacity: Scanner.nameCapacity) {
            storage -> Result<[String?], ScanStop> in
            var scanner = Scanner(cursor: Cursor(bytes: buffer), names: storage)
            do throws(ScanStop) {
                return .success(try scanner.document(wanted: names))
            } catch {
                return .failure(error)
            }
        }
        switch scanned {
        case .success(let texts):
            return texts
        case .failure(.invalid):
            return nil
        case .failure(.undecided):
            guard let value = try? parse(buffer: buffer) else { return nil }
            return names.map { value[$0]?.scalarText }
        }
    }

    /// Why a scan stopped: the document is not JSON, or the scan can't tell cheaply.
    enum ScanStop: Error {
        case invalid
        case undecided
    }

    /// Moves a ``Cursor`` over a document, checking it the way the parser does.
    struct Scanner {
        var cursor: Cursor
        /// Member names of the objects being scanned, outermost first: `names[..<nameCount]`
        /// of a buffer the caller owns.
        private let names: UnsafeMutableBufferPointer<Range<UInt32>>
        private var nameCount = 0
        static let maximumNamesChecked = 32
        /// Names held at once, over every open object; a document needing more is left to
        /// the parser (`undecided`).
        static let nameCapacity = 128

        init(cursor: Cursor, names: UnsafeMutableBufferPointer<Range<UInt32>>) {
            self.cursor = cursor
            self.names = names
        }

        private var bytes: UnsafeBufferPointer<UInt8> { cursor.bytes }

        mutating func document(wanted: [String]) throws(ScanStop) -> [String?] {
            var texts = [String?](repeating: nil, count: wanted.count)
            guard wanted.allSatisfy({ $0.utf8.allSatisfy { $0 < 0x80 } }) else { throw .undecided }
            cursor.skipWhitespace()
            if cursor.current == UInt8(ascii: "{") {
                try object(depth: 0) { scanner, name throws(ScanStop) in
                    let text = UnsafeBufferPointer(rebasing: scanner.bytes[name])
                    var value: String??
                    for slot in wanted.indices where wanted[slot].utf8.elementsEqual(text) {
                        if value == nil { value = .some(try scanner.text(depth: 1)) }
                        texts[slot] = value!
                    }
                    return value != nil
                }
            } else {
                try value(depth: 0)
            }
            cursor.skipWhitespace()
            guard cursor.index == bytes.count else { throw .invalid }
            return texts
        }

        /// A wanted member's value as ``JSONValue/scalarText`` gives it.
        private mutating func text(depth: Int) throws(ScanStop) -> String? {
            guard let byte = cursor.current else { throw .invalid }
            switch byte {
            case UInt8(ascii: "\""):
                return try step { cursor throws(SyntaxError) in try cursor.parseString() }
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                let range = try step { cursor throws(SyntaxError) in try cursor.scanNumber() }
                return String(decoding: UnsafeBufferPointer(rebasing: bytes[range]), as: UTF8.self)
            case UInt8(ascii: "t"):
                try literal("true")
                return "true"
            case UInt8(ascii: "f"):
                try literal("false")
                return "false"
            default:
                try value(depth: depth)
                return nil
            }
        }

        private mutating func value(depth: Int) throws(ScanStop) {
            guard depth < JSONParser.maximumDepth, let byte = cursor.current else { throw .invalid }
            switch byte {
            case UInt8(ascii: "{"): try object(depth: depth) { _, _ in false }
            case UInt8(ascii: "["): try array(depth: depth)
            case UInt8(ascii: "\""): try string()
            case UInt8(ascii: "t"): try literal("true")
            case UInt8(ascii: "f"): try literal("false")
            case UInt8(ascii: "n"): try literal("null")
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                _ = try step { cursor throws(SyntaxError) in try cursor.scanNumber() }
            default: throw .invalid
            }
        }

        private mutating func literal(_ text: StaticString) throws(ScanStop) {
            _ = try step { cursor throws(SyntaxError) in try cursor.expect(text, value: .null) }
        }

        /// One of the cursor's own steps; its syntax error makes the document invalid.
        private mutating func step<T>(_ body: (inout Cursor) throws(SyntaxError) -> T) throws(ScanStop) -> T {
            do { return try body(&cursor) } catch { throw .invalid }
        }

        /// An object at the cursor. `member` sees each name first and returns true when it
        /// consumed the value itself.
        private mutating func object(
            depth: Int, member: (inout Scanner, Range<Int>) throws(ScanStop) -> Bool
        ) throws(ScanStop) {
            cursor.index += 1
            let first = nameCount
            defer { nameCount = first }
            cursor.skipWhitespace()
            if cursor.current == UInt8(ascii: "}") {
                cursor.index += 1
                return
            }
            while true {
                cursor.skipWhitespace()
                let name = try memberName(objectStart: first)
                cursor.skipWhitespace()
                guard cursor.current == UInt8(ascii: ":") else { throw .invalid }
                cursor.index += 1
                cursor.skipWhitespace()
                if try !member(&self, name) { try value(depth: depth + 1) }
                cursor.skipWhitespace()
                switch cursor.current {
                case UInt8(ascii: ","): cursor.index += 1
                case UInt8(ascii: "}"):
                    cursor.index += 1
                    return
                default: throw .invalid
                }
            }
        }

        /// A member name: plain ASCII, checked against the object's earlier names.
        private mutating func memberName(objectStart first: Int) throws(ScanStop) -> Range<Int> {
            let bytes = self.bytes
            guard cursor.current == UInt8(ascii: "\"") else { throw .invalid }
            let start = cursor.index + 1
            var index = start
            while true {
                guard index < bytes.count else { throw .invalid }
                let byte = bytes[index]
                if byte == UInt8(ascii: "\"") { break }
                // Escapes and non-ASCII names can be equal in different spellings.
                if byte == UInt8(ascii: "\\") || byte >= 0x80 { throw .undecided }
                if byte < 0x20 { throw .invalid }
                index += 1
            }
            let name = start..<index
            cursor.index = index + 1
            guard nameCount - first < Self.maximumNamesChecked, nameCount < names.count else { throw .undecided }
            for earlier in names[first..<nameCount] where earlier.count == name.count {
                if memcmp(bytes.baseAddress! + Int(earlier.lowerBound), bytes.baseAddress! + name.lowerBound, name.count) == 0 {
                    throw .invalid
                }
            }
            // Within UInt32: the caller checked the document's size.
            names.initializeElement(at: nameCount, to: UInt32(truncatingIfNeeded: start)..<UInt32(truncatingIfNeeded: index))
            nameCount += 1
            return name
        }

        private mutating func array(depth: Int) throws(ScanStop) {
            cursor.index += 1
            cursor.skipWhitespace()
            if cursor.current == UInt8(ascii: "]") {
                cursor.index += 1
                return
            }
            while true {
                cursor.skipWhitespace()
                try value(depth: depth + 1)
                cursor.skipWhitespace()
                switch cursor.current {
                case UInt8(ascii: ","): cursor.index += 1
                case UInt8(ascii: "]"):
                    cursor.index += 1
                    return
                default: throw .invalid
                }
            }
        }

        /// A string, checked as ``Cursor/parseString()`` checks it but not decoded: escapes
        /// produce whole characters, so checking the raw runs between them as UTF-8 is the
        /// same as checking the decoded text.
        private mutating func string() throws(ScanStop) {
            var index = cursor.index + 1
            while true {
                // Eight bytes at a time to the next quote, backslash or control character
                // (``StringBytes``, as the parser and the writer do).
                let run = index
                let plain = StringBytes.plainRun(bytes, from: index)
                index = plain.end
                guard index < bytes.count, bytes[index] >= 0x20 else { throw .invalid }
                guard !plain.nonASCII || isUTF8(run..<index) else { throw .invalid }
                cursor.index = index + 1
                if bytes[index] == UInt8(ascii: "\"") { return }
                _ = try step { cursor throws(SyntaxError) in try cursor.parseEscape() }
                index = cursor.index
            }
        }

        private func isUTF8(_ range: Range<Int>) -> Bool {
            var iterator = UnsafeBufferPointer(rebasing: bytes[range]).makeIterator()
            var decoder = UTF8()
            while true {
                switch decoder.decode(&iterator) {
                case .scalarValue: continue
                case .emptyInput: return true
                case .error: return false
                }
            }
        }
    }
}
