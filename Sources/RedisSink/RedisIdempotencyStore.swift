import Synchronization
import WebhookCore
import WebhookEncoding

/// Makes the `redis` store (`idempotency.url`), on the Redis client its URL shares with the
/// sinks that name it.
public struct RedisIdempotencyStoreFactory: IdempotencyStoreFactory {
    public struct Settings: StoreSettings {
        public var url: String
        public var restartDescription: String { SettingFingerprint.of(url) }
    }

    public init() {}

    public var type: String { "redis" }
    public var keys: [String] { ["url"] }

    public func read(_ reader: ConfigReader) -> Settings? {
        reader.redisURL("url", required: true).map(Settings.init)
    }

    public func make(_ settings: Settings, bounds: IdempotencyBounds, context: SinkContext) throws(ConfigProblem)
        -> any IdempotencyStore
    {
        let client = try RedisClient.shared(url: settings.url, context: context)
        // A reservation outlives any delivery attempt, and expires if this replica dies.
        return RedisIdempotencyStore(
            client: client, ttlSeconds: bounds.ttlSeconds, reservationMilliseconds: max(30_000, bounds.ackTimeoutMs * 3))
    }
}

/// `idempotency.store: "redis"`: the reservation lives in Redis, so every replica sharing it
/// agrees on which events were taken.
///
/// - reserve: `SET key <token> NX PX <reservation>`; when the key exists, `GET` tells a
///   committed event (`duplicate`) from one being delivered (`inProgress`).
/// - commit: `SET key done PX <ttl>`.
/// - release: deletes the key only if it still holds this replica's token (a Lua compare
///   and delete), so a reservation that expired and was taken by another replica is safe.
///
/// A reservation expires on its own after `reservationMilliseconds`, so a replica that dies
/// mid-delivery does not block the provider's retries for the whole TTL.
public final class RedisIdempotencyStore: IdempotencyStore {
    let client: RedisClient
    private let ttlMilliseconds: Int
    private let reservationMilliseconds: Int
    private let prefix: String
    private let tokens = Mutex([IdempotencyKey: String]())

    static let releaseScript = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"

    public init(
        client: RedisClient, ttlSeconds: Int, reservationMilliseconds: Int, prefix: String = "webhook-bridge:idempotency:"
    ) {
        self.client = client
        self.ttlMilliseconds = ttlSeconds * 1000
        self.reservationMilliseconds = reservationMilliseconds
        self.prefix = prefix
    }

    public var isReady: Bool { client.isReachable }

    func redisKey(_ key: IdempotencyKey) -> String {
        "\(prefix)\(key.source.utf8.count):\(key.source):\(key.id)"
    }

    public func reserve(_ key: IdempotencyKey) async throws -> ReservationOutcome {
        let token = "pending:" + randomToken()
        let name = redisKey(key)
        for _ in 0..<3 {
            let set = try await client.execute(RedisCommand(["SET", name, token, "NX", "PX", String(reservationMilliseconds)]))
            if case .status("OK") = set {
                tokens.withLock { $0[key] = token }
                return .reserved
            }
            if case .error(let message) = set { throw RedisClient.Failure(description: message) }
            switch try await client.execute("GET", name) {
            case .string(let value) where value == Array("done".utf8): return .duplicate
            case .string: return .inProgress
            case .null: continue  // expired between SET and GET: try again
            case let other: throw RedisClient.Failure(description: "unexpected reply \(other)")
            }
        }
        return .inProgress
    }

    public func commit(_ key: IdempotencyKey) async throws {
        tokens.withLock { _ = $0.removeValue(forKey: key) }
        let reply = try await client.execute("SET", redisKey(key), "done", "PX", String(ttlMilliseconds))
        if case .error(let message) = reply { throw RedisClient.Failure(description: message) }
    }

    public func release(_ key: IdempotencyKey) async {
        guard let token = tokens.withLock({ $0.removeValue(forKey: key) }) else { return }
        // If Redis is unreachable the reservation simply expires.
        _ = try? await client.execute("EVAL", Self.releaseScript, "1", redisKey(key), token)
    }

    private func randomToken() -> String {
        var generator = SystemRandomNumberGenerator()
        return Hex.encode((0..<12).map { _ in UInt8.random(in: 0...255, using: &generator) })
    }
}

extension RedisIdempotencyStore {
    /// Learned secrets live beside the keys, in the same Redis: every replica sees them.
    public var learnedSecrets: (any LearnedSecretStore)? { RedisLearnedSecretStore(client: client) }
}

/// Learned secrets in Redis: one list per source, `webhook-bridge:learned-secrets:<n>:<source>`
/// (n the name's length, as for idempotency keys), oldest first, never expiring. A Lua
/// script checks and adds in one step.
struct RedisLearnedSecretStore: LearnedSecretStore {
    let client: RedisClient

    /// 0: held already; 1: added; 2: `limit` held (ARGV[2]; -1 for no limit, 0 adds nothing).
    static let learnScript = """
        local held = redis.call('lrange', KEYS[1], 0, -1)
        for _, value in ipairs(held) do if value == ARGV[1] then return 0 end end
        local limit = tonumber(ARGV[2])
        if limit >= 0 and #held >= limit then return 2 end
        redis.call('rpush', KEYS[1], ARGV[1])
        return 1
        """

    var location: String { "redis" }

    func key(_ source: String) -> String { "webhook-bridge:learned-secrets:\(source.utf8.count):\(source)" }

    func secrets(for source: String) async throws -> [String] {
        switch try await client.execute("LRANGE", key(source), "0", "-1") {
        case .array(let items):
            return items.compactMap { if case .string(let bytes) = $0 { String(decoding: bytes, as: UTF8.self) } else { nil } }
        case .error(let message): throw RedisClient.Failure(description: message)
        case let other: throw RedisClient.Failure(description: "unexpected reply \(other)")
        }
    }

    func learn(_ secret: String, for source: String, limit: Int?) async throws -> LearnOutcome {
        switch try await client.execute("EVAL", Self.learnScript, "1", key(source), secret, String(limit ?? -1)) {
        case .integer(0): return .known
        case .integer(1): return .learned
        case .integer(2): return .full
        case .error(let message): throw RedisClient.Failure(description: message)
        case let other: throw RedisClient.Failure(description: "unexpected reply \(other)")
        }
    }
}
