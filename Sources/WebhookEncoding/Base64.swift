/// Standard base64 (RFC 4648 section 4, padded), for signatures and `data_base64`.
public enum Base64 {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
    private static let reverse: [UInt8] = {
        var table = [UInt8](repeating: 0xFF, count: 256)
        for (index, byte) in alphabet.enumerated() { table[Int(byte)] = UInt8(index) }
        table[Int(UInt8(ascii: "-"))] = 62  // URL-safe alphabet accepted when decoding
        table[Int(UInt8(ascii: "_"))] = 63
        return table
    }()

    public static func encode<Bytes: Collection>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count + 2) / 3 * 4)
        var iterator = bytes.makeIterator()
        while let b0 = iterator.next() {
            let b1 = iterator.next()
            let b2 = iterator.next()
            out.append(alphabet[Int(b0 >> 2)])
            out.append(alphabet[Int((b0 & 0x03) << 4 | (b1 ?? 0) >> 4)])
            out.append(b1.map { alphabet[Int(($0 & 0x0F) << 2 | (b2 ?? 0) >> 6)] } ?? UInt8(ascii: "="))
            out.append(b2.map { alphabet[Int($0 & 0x3F)] } ?? UInt8(ascii: "="))
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Decodes padded or unpadded base64 (standard or URL-safe alphabet); nil when malformed.
    public static func decode<S: StringProtocol>(_ text: S) -> [UInt8]? {
        var ok = true
        let out = [UInt8](unsafeUninitializedCapacity: text.utf8.count * 3 / 4 + 2) { buffer, count in
            if let written = decode(text, into: UnsafeMutableRawBufferPointer(buffer)) {
                count = written
            } else {
                ok = false
                count = 0
            }
        }
        return ok ? out : nil
    }

    /// Decodes `text` into `output`; the bytes written, or nil when `text` is not base64 or
    /// decodes to more than `output` holds (a signature checked without an array).
    public static func decode<S: StringProtocol>(_ text: S, into output: UnsafeMutableRawBufferPointer) -> Int? {
        // On the text's own bytes: walking a generic string's UTF-8 view byte by byte from
        // another module costs a call per byte (a twentieth of a request, measured).
        if let decoded = text.utf8.withContiguousStorageIfAvailable({ decode(bytes: $0, into: output) }) { return decoded }
        return Array(text.utf8).withUnsafeBufferPointer { decode(bytes: $0, into: output) }
    }

    private static func decode(bytes text: UnsafeBufferPointer<UInt8>, into output: UnsafeMutableRawBufferPointer) -> Int? {
        var count = 0
        var accumulator: UInt32 = 0
        var bits = 0
        var padding = 0
        for byte in text {
            if byte == UInt8(ascii: "=") {
                padding += 1
                continue
            }
            guard padding == 0 else { return nil }
            let value = reverse[Int(byte)]
            guard value != 0xFF else { return nil }
            accumulator = accumulator << 6 | UInt32(value)
            bits += 6
            if bits >= 8 {
                bits -= 8
                guard count < output.count else { return nil }
                output[count] = UInt8(truncatingIfNeeded: accumulator >> UInt32(bits))
                count += 1
            }
        }
        guard padding <= 2, bits < 6 else { return nil }
        return count
    }
}

/// Lower-case hexadecimal, for signatures and `sha256:` ids.
public enum Hex {
    private static let digits = Array("0123456789abcdef".utf8)

    public static func encode<Bytes: Sequence>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
        var out: [UInt8] = []
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Decodes hex of either case; nil when malformed.
    public static func decode<S: StringProtocol>(_ text: S) -> [UInt8]? {
        // On the text's own bytes, as Base64's: no copy, no call per byte.
        if let decoded = text.utf8.withContiguousStorageIfAvailable({ decode(bytes: $0) }) { return decoded }
        return Array(text.utf8).withUnsafeBufferPointer { decode(bytes: $0) }
    }

    private static func decode(bytes utf8: UnsafeBufferPointer<UInt8>) -> [UInt8]? {
        guard utf8.count % 2 == 0 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(utf8.count / 2)
        var index = 0
        while index < utf8.count {
            guard let high = nibble(utf8[index]), let low = nibble(utf8[index + 1]) else { return nil }
            out.append(high << 4 | low)
            index += 2
        }
        return out
    }

    private static func nibble(_ byte: UInt8) -> UInt8? {
        switch byte {
        case 0x30...0x39: return byte - 0x30
        case 0x41...0x46: return byte - 0x41 + 10
        case 0x61...0x66: return byte - 0x61 + 10
        default: return nil
        }
    }
}
