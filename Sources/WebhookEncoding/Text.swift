extension Substring {
    /// Without leading and trailing ASCII white space (space, tab, CR, LF); walks bytes, not
    /// grapheme clusters. The one trimming helper of every target: header values, config
    /// numbers, `/proc` fields.
    public var trimmingSpaces: Substring {
        let utf8 = self.utf8
        var start = utf8.startIndex
        var end = utf8.endIndex
        func isSpace(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x09 || byte == 0x0D || byte == 0x0A }
        while start < end, isSpace(utf8[start]) { start = utf8.index(after: start) }
        while start < end {
            let last = utf8.index(before: end)
            guard isSpace(utf8[last]) else { break }
            end = last
        }
        return self[start..<end]
    }
}

extension String {
    /// See ``Substring/trimmingSpaces``.
    public var trimmingSpaces: Substring { self[...].trimmingSpaces }
}

extension String {
    /// Whether this is an HTTP token (RFC 9110): what a header name may be. The HTTP sink's
    /// configured headers and the names `listen` passes on are checked with it.
    public var isHTTPToken: Bool {
        !isEmpty
            && utf8.allSatisfy { byte in
                switch byte {
                case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                    UInt8(ascii: "0")...UInt8(ascii: "9"):
                    return true
                default:
                    return "!#$%&'*+-.^_`|~".utf8.contains(byte)
                }
            }
    }
}
