import NIOCore

/// One Redis command as a value, written in RESP as its arguments are appended, into one
/// buffer that is what the connection sends. A `ByteBuffer` argument (an event's body) is
/// copied once, from the event into these bytes; nothing copies it again before the socket.
///
/// RESP is written here rather than by `redisFormatCommandArgv`: hiredis would copy every
/// argument into a `malloc`ed string that is then copied again into a buffer for the channel.
public struct RedisCommand: Sendable {
    /// Room kept before the arguments for the `*<count>\r\n` header (at most 13 bytes), which
    /// can only be written once the count is known.
    private static let headerRoom = 16
    private var buffer: ByteBuffer
    /// Arguments so far, the name included.
    public private(set) var count = 0

    /// A command named `name`; `capacity` is a guess of its arguments' encoded size.
    public init(_ name: String, capacity: Int = 64) {
        buffer = ByteBufferAllocator().buffer(capacity: Self.headerRoom + capacity)
        buffer.writeRepeatingByte(0, count: Self.headerRoom)
        buffer.moveReaderIndex(forwardBy: Self.headerRoom)
        append(name)
    }

    /// A command whose every argument is text (`RedisCommand(["GET", key])`).
    public init(_ arguments: [String]) {
        self.init(arguments.first ?? "", capacity: arguments.dropFirst().reduce(0) { $0 + $1.utf8.count + 16 })
        for argument in arguments.dropFirst() { append(argument) }
    }

    /// A command whose every argument is bytes.
    public init(_ arguments: [[UInt8]]) {
        self.init(String(decoding: arguments.first ?? [], as: UTF8.self), capacity: arguments.reduce(0) { $0 + $1.count + 16 })
        for argument in arguments.dropFirst() { append(argument) }
    }

    public mutating func append(_ argument: String) {
        writeLength(argument.utf8.count)
        buffer.writeString(argument)
        buffer.writeStaticString("\r\n")
        count += 1
    }

    public mutating func append(_ argument: [UInt8]) {
        writeLength(argument.count)
        buffer.writeBytes(argument)
        buffer.writeStaticString("\r\n")
        count += 1
    }

    /// Writes the readable bytes of `argument` (the one copy of an event's body).
    public mutating func append(_ argument: ByteBuffer) {
        writeLength(argument.readableBytes)
        buffer.writeImmutableBuffer(argument)
        buffer.writeStaticString("\r\n")
        count += 1
    }

    public mutating func append(_ argument: Int) {
        append(String(argument))
    }

    /// The bytes to send: the header written into the room kept for it, in place (the
    /// command is consumed, so its buffer is not shared and nothing is copied).
    consuming func encoded() -> ByteBuffer {
        let count = self.count
        withUnsafeTemporaryAllocation(byteCount: Self.headerRoom, alignment: 1) { header in
            let length = Self.render(count, prefix: UInt8(ascii: "*"), into: header)
            buffer.setBytes(UnsafeRawBufferPointer(rebasing: header[..<length]), at: buffer.readerIndex - length)
            buffer.moveReaderIndex(to: buffer.readerIndex - length)
        }
        return buffer
    }

    /// `$<length>\r\n`, written in one go (per-byte writes showed in profiles).
    private mutating func writeLength(_ length: Int) {
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: Self.headerRoom) { out in
            Self.render(length, prefix: UInt8(ascii: "$"), into: out)
        }
    }

    /// Writes `<prefix><value>\r\n` (a value of 0 or more) at the start of `out`, which
    /// has room for it; returns its size.
    private static func render(_ value: Int, prefix: UInt8, into out: UnsafeMutableRawBufferPointer) -> Int {
        var digits = 1
        var rest = value / 10
        while rest > 0 {
            digits += 1
            rest /= 10
        }
        out[0] = prefix
        rest = value
        var index = digits
        repeat {
            out[index] = UInt8(ascii: "0") + UInt8(rest % 10)
            rest /= 10
            index -= 1
        } while rest > 0
        out[digits + 1] = UInt8(ascii: "\r")
        out[digits + 2] = UInt8(ascii: "\n")
        return digits + 3
    }
}
