import WebhookCore
import CHiredis

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

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

/// One blocking hiredis connection. Used by one thread at a time (its pool's worker); the
/// only code in the Redis sink that touches hiredis, hence `@unchecked Sendable`.
final class RedisConnection: @unchecked Sendable {
    private var context: UnsafeMutablePointer<redisContext>?

    /// Why a connection or a command failed at the transport level.
    struct Failure: Error, Sendable, CustomStringConvertible {
        let description: String
    }

    deinit { close() }

    var isConnected: Bool { context != nil }

    /// Connects, authenticates and selects the database of `endpoint`.
    func connect(_ endpoint: RedisEndpoint, timeoutMilliseconds: Int) throws(Failure) {
        close()
        let timeout = timeval(tv_sec: timeoutMilliseconds / 1000, tv_usec: Int(timeoutMilliseconds % 1000) * 1000)
        let connected: UnsafeMutablePointer<redisContext>?
        switch endpoint.address {
        case .tcp(let host, let port): connected = redisConnectWithTimeout(host, Int32(port), timeout)
        case .unix(let path): connected = redisConnectUnixWithTimeout(path, timeout)
        }
        guard let connected else { throw Failure(description: "cannot allocate a Redis connection") }
        if connected.pointee.err != 0 {
            let reason = Self.errorText(connected)
            redisFree(connected)
            throw Failure(description: "connect to \(endpoint.display): \(reason)")
        }
        redisSetTimeout(connected, timeout)
        _ = redisEnableKeepAlive(connected)
        context = connected
        var setup: [[String]] = []
        if let password = endpoint.password {
            setup.append(endpoint.username.map { ["AUTH", $0, password] } ?? ["AUTH", password])
        }
        if endpoint.database != 0 { setup.append(["SELECT", String(endpoint.database)]) }
        guard !setup.isEmpty else { return }
        for result in pipeline(setup.map { $0.map { Array($0.utf8) } }) {
            switch result {
            case .failure(let failure):
                throw failure
            case .success(.error(let text)):
                close()
                throw Failure(description: "\(endpoint.display): \(text)")
            case .success:
                continue
            }
        }
    }

    func close() {
        if let context { redisFree(context) }
        context = nil
    }

    /// Sends every command, then reads every reply: one round trip for the batch. Redis error
    /// replies are returned as `.error`. A transport failure closes the connection; the
    /// replies read before it are kept (those commands did run) and the rest fail.
    func pipeline(_ commands: [[[UInt8]]]) -> [Result<RedisReply, Failure>] {
        guard let context else { return commands.map { _ in .failure(Failure(description: "not connected")) } }
        for command in commands {
            let status = Self.withArgv(command) { argc, argv, lengths in redisAppendCommandArgv(context, argc, argv, lengths) }
            guard status == REDIS_OK else {
                let failure = Failure(description: Self.errorText(context))
                close()
                return commands.map { _ in .failure(failure) }
            }
        }
        var replies: [Result<RedisReply, Failure>] = []
        replies.reserveCapacity(commands.count)
        for _ in commands {
            var raw: UnsafeMutableRawPointer?
            guard redisGetReply(context, &raw) == REDIS_OK, let raw else {
                let reason = Self.errorText(context)
                close()
                let failure = Failure(description: reason.isEmpty ? "connection lost" : reason)
                replies += Array(repeating: .failure(failure), count: commands.count - replies.count)
                return replies
            }
            let reply = raw.assumingMemoryBound(to: redisReply.self)
            replies.append(.success(Self.convert(reply)))
            freeReplyObject(raw)
        }
        return replies
    }

    private static func withArgv<R>(
        _ command: [[UInt8]], _ body: (Int32, UnsafeMutablePointer<UnsafePointer<CChar>?>, UnsafePointer<Int>) -> R
    ) -> R {
        // Copy each argument into one contiguous buffer so the pointers stay valid.
        var storage: [UInt8] = []
        var offsets: [Int] = []
        for argument in command {
            offsets.append(storage.count)
            storage.append(contentsOf: argument)
            storage.append(0)
        }
        let lengths = command.map(\.count)
        return storage.withUnsafeBufferPointer { buffer in
            let base = UnsafeRawPointer(buffer.baseAddress!).assumingMemoryBound(to: CChar.self)
            var argv: [UnsafePointer<CChar>?] = offsets.map { base + $0 }
            return argv.withUnsafeMutableBufferPointer { argvBuffer in
                lengths.withUnsafeBufferPointer { body(Int32(command.count), argvBuffer.baseAddress!, $0.baseAddress!) }
            }
        }
    }

    private static func convert(_ reply: UnsafeMutablePointer<redisReply>) -> RedisReply {
        let value = reply.pointee
        switch value.type {
        case REDIS_REPLY_STRING:
            return .string(value.str.map { Array(UnsafeRawBufferPointer(start: $0, count: value.len)) } ?? [])
        case REDIS_REPLY_STATUS:
            return .status(
                value.str.map { String(decoding: UnsafeRawBufferPointer(start: $0, count: value.len), as: UTF8.self) } ?? "")
        case REDIS_REPLY_ERROR:
            return .error(
                value.str.map { String(decoding: UnsafeRawBufferPointer(start: $0, count: value.len), as: UTF8.self) } ?? "")
        case REDIS_REPLY_INTEGER:
            return .integer(Int64(value.integer))
        case REDIS_REPLY_ARRAY:
            return .array((0..<value.elements).map { convert(value.element[$0]!) })
        case REDIS_REPLY_NIL:
            return .null
        default:
            // RESP3 types of newer hiredis (double, map, …) are not requested by this client.
            return .error("unsupported reply type \(value.type)")
        }
    }

    private static func errorText(_ context: UnsafeMutablePointer<redisContext>) -> String {
        withUnsafeBytes(of: context.pointee.errstr) { bytes in
            String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
        }
    }
}
