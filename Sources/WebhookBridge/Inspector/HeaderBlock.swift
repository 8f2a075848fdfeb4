import NIOCore
import NIOHTTP1

/// A request's headers as the inspector keeps them: names and values in one buffer of their
/// own, cut to a bound. One allocation per record, where the request's `HTTPHeaders` would
/// keep an array and a string for most values alive: a ring of a thousand records in many
/// small pieces made the allocator's work under load a measurable part of each request.
struct HeaderBlock: Sendable, Sequence {
    private let bytes: ByteBuffer
    /// The bytes of header text held (names and values).
    let textBytes: Int

    static let empty = HeaderBlock(bytes: ByteBuffer(), textBytes: 0)

    private init(bytes: ByteBuffer, textBytes: Int) {
        self.bytes = bytes
        self.textBytes = textBytes
    }

    /// A request's headers and the first `bodyLimit` bytes of its body in one allocation of
    /// their exact size: the block, and the body kept (a slice of the same storage). The
    /// request's own buffers are not kept alive.
    static func capture(_ headers: HTTPHeaders, body: ByteBuffer?, headerLimit: Int, bodyLimit: Int) -> (
        HeaderBlock, ByteBuffer
    ) {
        var total = 0
        var text = 0
        for header in headers {
            let length = header.name.utf8.count + header.value.utf8.count
            text += length
            total += length + framing
        }
        let bodyLength = Swift.min(body?.readableBytes ?? 0, bodyLimit)
        guard total <= headerLimit else {
            // Over the bound (rare): the block cut on its own, the body copied on its own.
            let block = HeaderBlock(headers, limit: headerLimit)
            return (block, body.map { ByteBuffer(bytes: $0.readableBytesView.prefix(bodyLimit)) } ?? ByteBuffer())
        }
        var buffer = ByteBufferAllocator().buffer(capacity: total + bodyLength)
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: total + bodyLength) { out in
            // One pointer moved along, no closure capturing it (a captured variable is
            // checked for exclusive access at every use).
            var cursor = out.baseAddress!
            for header in headers {
                cursor = Self.put(header.name, wide: false, at: cursor)
                cursor = Self.put(header.value, wide: true, at: cursor)
            }
            if let body, bodyLength > 0 {
                body.withUnsafeReadableBytes { bytes in
                    cursor.copyMemory(from: bytes.baseAddress!, byteCount: bodyLength)
                }
                cursor += bodyLength
            }
            return out.baseAddress!.distance(to: cursor)
        }
        let block = HeaderBlock(bytes: buffer.getSlice(at: buffer.readerIndex, length: total)!, textBytes: text)
        return (block, buffer.getSlice(at: buffer.readerIndex + total, length: bodyLength)!)
    }

    /// `headers` in at most `limit` bytes (text and 6 bytes of framing per header): a value
    /// cut short ends in `…`; headers past the bound are left out, and a last one
    /// (`X-Inspector-Omitted`) says how many.
    init(_ headers: HTTPHeaders, limit: Int) {
        var total = 0
        var text = 0
        for header in headers {
            let length = header.name.utf8.count + header.value.utf8.count
            text += length
            total += length + Self.framing
        }
        if total <= limit {
            var buffer = ByteBufferAllocator().buffer(capacity: total)
            for header in headers { Self.append(header.name, header.value, to: &buffer) }
            self.init(bytes: buffer, textBytes: text)
            return
        }
        var buffer = ByteBufferAllocator().buffer(capacity: limit)
        // Room for the line that says how many were left out.
        let room = limit - 64
        var used = 0
        text = 0
        for (index, header) in headers.enumerated() {
            let left = room - used - header.name.utf8.count - Self.framing
            if left <= 0 {
                let note = "\(headers.count - index) more headers not kept"
                Self.append("X-Inspector-Omitted", note, to: &buffer)
                text += 19 + note.utf8.count
                break
            }
            var value = header.value
            if value.utf8.count > left {
                var cut = Array(value.utf8.prefix(Swift.max(0, left - 3)))
                while let last = cut.last, last & 0xC0 == 0x80 { cut.removeLast() }  // not inside a character
                if let last = cut.last, last >= 0xC0 { cut.removeLast() }
                value = String(decoding: cut, as: UTF8.self) + "…"
            }
            Self.append(header.name, value, to: &buffer)
            used += header.name.utf8.count + value.utf8.count + Self.framing
            text += header.name.utf8.count + value.utf8.count
        }
        self.init(bytes: buffer, textBytes: text)
    }

    /// The bytes besides the text a header takes: its name's and its value's lengths.
    static let framing = 6

    /// Writes `text`'s length (2 bytes, 4 when `wide`, big-endian) and its UTF-8 at `cursor`;
    /// returns where the next write goes.
    private static func put(_ text: String, wide: Bool, at cursor: UnsafeMutableRawPointer) -> UnsafeMutableRawPointer {
        var cursor = cursor
        let count = text.utf8.count
        if wide {
            cursor.storeBytes(of: UInt32(truncatingIfNeeded: count).bigEndian, as: UInt32.self)
            cursor += 4
        } else {
            cursor.storeBytes(of: UInt16(truncatingIfNeeded: count).bigEndian, as: UInt16.self)
            cursor += 2
        }
        let copied = text.utf8.withContiguousStorageIfAvailable { utf8 in
            cursor.copyMemory(from: utf8.baseAddress!, byteCount: utf8.count)
        }
        if copied == nil {
            for (index, byte) in text.utf8.enumerated() { cursor.storeBytes(of: byte, toByteOffset: index, as: UInt8.self) }
        }
        return cursor + count
    }

    private static func append(_ name: String, _ value: String, to buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt16(truncatingIfNeeded: name.utf8.count))
        buffer.writeString(name)
        buffer.writeInteger(UInt32(truncatingIfNeeded: value.utf8.count))
        buffer.writeString(value)
    }

    struct Iterator: IteratorProtocol {
        var bytes: ByteBuffer

        mutating func next() -> (name: String, value: String)? {
            guard let nameLength = bytes.readInteger(as: UInt16.self),
                let name = bytes.readString(length: Int(nameLength)),
                let valueLength = bytes.readInteger(as: UInt32.self),
                let value = bytes.readString(length: Int(valueLength))
            else { return nil }
            return (name, value)
        }
    }

    func makeIterator() -> Iterator { Iterator(bytes: bytes) }

    /// The first value of `name`, compared without regard to ASCII case.
    func first(name: String) -> String? {
        let wanted = name.lowercased()
        return first { $0.name.lowercased() == wanted }?.value
    }

    /// The bytes the block holds in memory.
    var storageBytes: Int { bytes.storageCapacity }

    /// The block in storage of its own when it shares a record's (which holds the body's
    /// kept part too): what outlives the record keeps only the headers alive.
    func detached() -> HeaderBlock {
        bytes.storageCapacity > bytes.readableBytes
            ? HeaderBlock(bytes: ByteBuffer(bytes: bytes.readableBytesView), textBytes: textBytes) : self
    }
}
