import CHiredis
import NIOCore

/// A reply from Redis.
public enum RedisReply: Sendable, Equatable {
    case string([UInt8])
    case status(String)
    case integer(Int64)
    case error(String)
    case null
    case array([RedisReply])

    /// The reply as text, for strings and statuses.
    public var text: String? {
        switch self {
        case .string(let bytes): return String(decoding: bytes, as: UTF8.self)
        case .status(let text): return text
        default: return nil
        }
    }
}

/// hiredis's RESP reader, and nothing else of hiredis: bytes as they arrive from the socket
/// in, whole replies out. It does no I/O, so it runs on the event loop that reads the
/// socket. The only code in the Redis sink that touches hiredis; used by one channel
/// handler, on its event loop.
final class RedisReplyParser {
    /// A reply stream that can't be RESP: the connection can't be trusted any more.
    struct ProtocolError: Error, CustomStringConvertible {
        let description: String
    }

    private let reader: UnsafeMutablePointer<redisReader>

    init() {
        // Fails only when malloc does.
        guard let reader = redisReaderCreate() else { fatalError("hiredis could not allocate a reply reader") }
        self.reader = reader
    }

    deinit { redisReaderFree(reader) }

    /// Takes the bytes read from the socket (hiredis keeps its own copy until a reply is whole).
    func feed(_ bytes: ByteBuffer) throws(ProtocolError) {
        let status = bytes.withUnsafeReadableBytes { raw in
            redisReaderFeed(reader, raw.baseAddress?.assumingMemoryBound(to: CChar.self), raw.count)
        }
        guard status == REDIS_OK else { throw error() }
    }

    /// The next whole reply, or nil until more bytes arrive.
    func next() throws(ProtocolError) -> RedisReply? {
        var raw: UnsafeMutableRawPointer?
        guard redisReaderGetReply(reader, &raw) == REDIS_OK else { throw error() }
        guard let raw else { return nil }
        defer { freeReplyObject(raw) }
        return Self.convert(raw.assumingMemoryBound(to: redisReply.self))
    }

    private func error() -> ProtocolError {
        ProtocolError(
            description: withUnsafeBytes(of: reader.pointee.errstr) { bytes in
                "Redis protocol error: " + String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
            })
    }

    private static func convert(_ reply: UnsafeMutablePointer<redisReply>) -> RedisReply {
        let value = reply.pointee
        switch value.type {
        case REDIS_REPLY_STRING:
            return .string(value.str.map { Array(UnsafeRawBufferPointer(start: $0, count: Int(value.len))) } ?? [])
        case REDIS_REPLY_STATUS:
            return .status(text(value))
        case REDIS_REPLY_ERROR:
            return .error(text(value))
        case REDIS_REPLY_INTEGER:
            return .integer(Int64(value.integer))
        case REDIS_REPLY_ARRAY:
            return .array((0..<Int(value.elements)).map { convert(value.element[$0]!) })
        case REDIS_REPLY_NIL:
            return .null
        default:
            // RESP3 types of newer hiredis (double, map, …) come only after HELLO 3, never sent.
            return .error("unsupported reply type \(value.type)")
        }
    }

    private static func text(_ value: redisReply) -> String {
        value.str.map { String(decoding: UnsafeRawBufferPointer(start: $0, count: Int(value.len)), as: UTF8.self) } ?? ""
    }
}
