/// Finds where a run of JSON string bytes needs attention, sixteen bytes at a time: a quote,
/// a backslash or a control character ends the plain part. A webhook's long strings (padding,
/// HTML, base64 blobs) are mostly plain, so the scanner, the parser and the writer skip them
/// a vector at a time (then a word, then a byte) instead of a byte at a time.
enum StringBytes {
    private static let ones: UInt64 = 0x0101_0101_0101_0101
    private static let highs: UInt64 = 0x8080_8080_8080_8080

    /// The index of the first byte at or after `start` that is `"`, `\` or below 0x20 (or
    /// `bytes.count`), and whether a byte of 0x80 or more came before it.
    static func plainRun(_ bytes: UnsafeBufferPointer<UInt8>, from start: Int) -> (end: Int, nonASCII: Bool) {
        var index = start
        var high: UInt64 = 0
        if let base = bytes.baseAddress {
            let raw = UnsafeRawPointer(base)
            // Sixteen bytes per compare (SSE2 on x86-64, NEON on arm64). The constants are
            // locals and the test reads the mask as two words: static vectors and `any(_:)`
            // compiled to a lazy global and a generic call per chunk, slower than the words.
            var highVector = SIMD16<UInt8>()
            let quotes = SIMD16<UInt8>(repeating: 0x22)
            let backslashes = SIMD16<UInt8>(repeating: 0x5C)
            let controls = SIMD16<UInt8>(repeating: 0x1F)
            let highBits = SIMD16<UInt8>(repeating: 0x80)
            while index + 16 <= bytes.count {
                let chunk = raw.loadUnaligned(fromByteOffset: index, as: SIMD16<UInt8>.self)
                let special = (chunk .== quotes) .| (chunk .== backslashes) .| (chunk .<= controls)
                let lanes = unsafeBitCast(special, to: SIMD2<UInt64>.self)
                if lanes[0] | lanes[1] != 0 { break }
                highVector |= chunk & highBits
                index += 16
            }
            if highVector != SIMD16() { high = highs }
            while index + 8 <= bytes.count {
                let word = raw.loadUnaligned(fromByteOffset: index, as: UInt64.self)
                if isSpecial(word) { break }
                high |= word & highs
                index += 8
            }
        }
        var nonASCII = high != 0
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") || byte < 0x20 { break }
            if byte >= 0x80 { nonASCII = true }
            index += 1
        }
        return (index, nonASCII)
    }

    /// True when one of the word's bytes is `"`, `\` or below 0x20 (bytes of 0x80 and more
    /// never count: the "less than" test only sees bytes below 0x80).
    @inline(__always)
    private static func isSpecial(_ word: UInt64) -> Bool {
        let quote = word ^ (ones &* 0x22)
        let backslash = word ^ (ones &* 0x5C)
        let zeroInQuote = (quote &- ones) & ~quote & highs
        let zeroInBackslash = (backslash &- ones) & ~backslash & highs
        let control = (word &- ones &* 0x20) & ~word & highs
        return (zeroInQuote | zeroInBackslash | control) != 0
    }
}
