import Logging
import NIOCore
import ServiceLifecycle
import WebhookCore

/// Writes each event as one `XADD` entry (SPEC section 7): the CloudEvents attributes as
/// fields, plus `data` holding the raw body; the stream is the rendered `stream` template,
/// trimmed with `MAXLEN ~ maxLength` when set. `deliver` returns with the entry id Redis
/// answered.
public final class RedisStreamSink: EventSink {
    public let name: String
    private let stream: Template
    private let maxLength: Int?
    private let client: RedisClient

    public init(name: String, client: RedisClient, stream: Template, maxLength: Int?) {
        self.name = name
        self.client = client
        self.stream = stream
        self.maxLength = maxLength
    }

    public var isReady: Bool { client.isReachable }

    public func deliver(_ event: WebhookEvent) async throws -> DeliveryReceipt {
        let key = stream.render(event, sanitizer: .redisKey)
        // The body goes straight from the event into the command's bytes: its one copy.
        var command = RedisCommand("XADD", capacity: event.data.readableBytes + key.utf8.count + 384)
        command.append(key)
        if let maxLength {
            command.append("MAXLEN")
            command.append("~")
            command.append(maxLength)
        }
        command.append("*")
        event.forEachAttribute { name, value in
            command.append(name)
            command.append(value)
        }
        command.append("data")
        command.append(event.data)
        let reply: RedisReply
        do {
            reply = try await client.execute(command)
        } catch {
            throw SinkError.unavailable(sink: name, reason: "\(error)")
        }
        switch reply {
        case .string, .status:
            return DeliveryReceipt(sink: name, place: key, offset: .entry(reply.text ?? ""))
        case .error(let message) where Self.isPermanent(message):
            throw SinkError.rejected(sink: name, reason: "\(key): \(message)")
        case .error(let message):
            throw SinkError.unavailable(sink: name, reason: "\(key): \(message)")
        default:
            throw SinkError.unavailable(sink: name, reason: "\(key): unexpected reply \(reply)")
        }
    }

    /// Error replies that no retry can fix: the key holds another type (WRONGTYPE) or the
    /// command itself is refused (ERR). A server that is loading, read-only during a
    /// failover, out of memory, refusing writes after a failed save, or full of clients
    /// answers with an error too, but only for a while: those are retried from the spool,
    /// not dead-lettered.
    static func isPermanent(_ message: String) -> Bool {
        let code = message.prefix { $0 != " " }
        if code == "WRONGTYPE" { return true }
        return code == "ERR" && !message.hasPrefix("ERR max number of clients")
    }

    /// The client is its own service; the sink has nothing to run.
    public func run() async throws {
        try? await gracefulShutdown()
    }
}

/// Makes `redis` sinks, on the Redis client their URL shares with the other sinks and the
/// idempotency store that name it.
public struct RedisStreamSinkFactory: EventSinkFactory {
    public init() {}

    public var type: String { "redis" }
    public var keys: [String] { ["url", "stream", "maxLength"] }

    public func read(_ reader: ConfigReader) -> RedisStreamSinkSettings? {
        let url = reader.redisURL("url", required: true)
        let stream = reader.template("stream", required: true)
        let maxLength = reader.integer("maxLength", in: 1...Int.max)
        guard let url, let stream else { return nil }
        return RedisStreamSinkSettings(url: url, stream: stream, maxLength: maxLength)
    }

    public func make(name: String, settings: RedisStreamSinkSettings, context: SinkContext) throws(ConfigProblem)
        -> any EventSink
    {
        let client = try RedisClient.shared(url: settings.url, context: context)
        return RedisStreamSink(name: name, client: client, stream: settings.stream, maxLength: settings.maxLength)
    }
}

/// A `redis` sink's settings: the server's `url`, the `stream` template and `maxLength`
/// (approximate trimming, `MAXLEN ~`).
public struct RedisStreamSinkSettings: SinkSettings {
    public var url: String
    public var stream: Template
    public var maxLength: Int?

    public var templates: [Template] { [stream] }
    public var restartDescription: String {
        "url=\(SettingFingerprint.of(url)) stream=\(stream) maxLength=\(maxLength.map(String.init) ?? "-")"
    }
}

extension RedisClient {
    /// The one client for `url` among `context`'s shared clients; a problem's path is `url`.
    public static func shared(url: String, context: SinkContext) throws(ConfigProblem) -> RedisClient {
        try context.shared.client("redis \(url)") { () throws(ConfigProblem) -> RedisClient in
            do {
                return try RedisClient(
                    endpoint: try RedisEndpoint(url: url), timeoutMilliseconds: context.ackTimeoutMs, logger: context.logger)
            } catch {
                throw ConfigProblem(path: "url", message: "\(error)")
            }
        }
    }
}
