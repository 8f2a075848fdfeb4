import WebhookCrypto
import Synchronization

/// The in-process store (`idempotency.store: "memory"`): bounded, with a TTL.
///
/// Accepted keys expire `ttl` after their commit. When `maximumKeys` is reached, expired keys
/// go first and then the oldest accepted ones, so memory stays bounded under any load; a
/// reservation in progress is never evicted. A large store (from 16,384 keys) is split into
/// shards, each with its share of the bound, and evicts when a shard's share is reached:
/// the oldest keys of the new key's shard go first. Keys fall in shards by a hash seeded
/// per process, so over many keys that is the oldest of all to within about 1% of the
/// bound, and no sender can aim its ids at one shard to push out other sources' keys.
///
/// A key is remembered as 128 bits of the SHA-256 of its source and id, not as the strings:
/// about 70 bytes a key instead of 150, so the default million keys fit in ~70 MB. Two keys
/// would have to share those 128 bits to be mistaken for each other (a chance around 1e-27
/// among a million keys), and a request must pass signature verification to get here.
public final class MemoryIdempotencyStore: IdempotencyStore {
    /// The digest a key is remembered by (``IdempotencyKey/digest``).
    private typealias Digest = IdempotencyKey.Digest

    /// `reserved`, or the expiry (milliseconds since 1970) of an accepted key.
    private typealias Entry = Int64
    private static let reserved: Entry = -1

    private struct State {
        var entries: [Digest: Entry] = [:]
        /// Accepted keys in commit order, which is also expiry order (one TTL for all).
        var acceptedOrder: [(key: Digest, expiresAt: Int64)] = []
        var orderHead = 0
    }

    /// One part of the keys (by their seeded hash), with its own lock and its share of the bound.
    private final class Shard: Sendable {
        let state = Mutex(State())
        let maximumKeys: Int
        init(maximumKeys: Int) { self.maximumKeys = maximumKeys }
    }

    /// The keys in as many shards (a power of two, at most 64) as leave each a share of the
    /// bound of at least ``keysPerShard`` keys. A dictionary grows by rehashing every key it
    /// holds, under its lock: one table of the default million keys stalled every request,
    /// on every event loop, for 84 ms when it grew past 393,216 keys and for 182 to 187 ms
    /// past 786,432 (bench/store-bench on the 2-core development VM). With 64 shards the
    /// longest growth was 1.5 ms, and it holds up only the requests whose keys fall in that
    /// shard; the event loops also rarely want the same lock.
    private let shards: [Shard]
    /// A key's shard is the top bits of its seeded hash (the dictionaries index by the low
    /// ones): 64 minus log2 of the shard count.
    private let shardShift: UInt
    private let ttlMilliseconds: Int64
    private let clock: @Sendable () -> Timestamp

    static let keysPerShard = 8192
    static let maximumShards = 64

    /// - Parameters:
    ///   - ttlSeconds: how long an accepted key answers `duplicate`.
    ///   - maximumKeys: the bound on remembered keys. Each shard holds its share of it, so at
    ///     the bound the oldest keys of the shard a new key falls in make room for it.
    ///   - clock: the time source; tests pass their own.
    public init(ttlSeconds: Int, maximumKeys: Int = 1_000_000, clock: @escaping @Sendable () -> Timestamp = Timestamp.now) {
        self.ttlMilliseconds = Int64(ttlSeconds) * 1000
        self.clock = clock
        let maximumKeys = max(1, maximumKeys)
        var (count, bits) = (1, 0)
        while count < Self.maximumShards, maximumKeys / (count * 2) >= Self.keysPerShard {
            (count, bits) = (count * 2, bits + 1)
        }
        // The bound divided exactly: the first `maximumKeys % count` shards take one more.
        self.shards = (0..<count).map { index in
            Shard(maximumKeys: maximumKeys / count + (index < maximumKeys % count ? 1 : 0))
        }
        self.shardShift = UInt(64 - bits)
    }

    private func shard(_ digest: Digest) -> Shard {
        // The digest is public (a SHA-256 of the source and id): its own bits would let a
        // sender pick the shard. A shift by 64 leaves 0, the one shard.
        shards[Int(truncatingIfNeeded: UInt(bitPattern: digest.hashValue) >> shardShift)]
    }

    public func reserve(_ key: IdempotencyKey) async -> ReservationOutcome {
        let now = clock().millisecondsSince1970
        let digest = key.digest
        let shard = shard(digest)
        return shard.state.withLock { state in
            Self.evictExpired(&state, now: now)
            if state.entries.count >= shard.maximumKeys, state.entries[digest] == nil {
                Self.evictOldest(&state, keeping: shard.maximumKeys - 1)
            }
            // Below the bound, one probe of the table: the entry is read and, when new,
            // written through the same access.
            return Self.reserve(&state.entries[digest], now: now)
        }
    }

    private static func reserve(_ entry: inout Entry?, now: Int64) -> ReservationOutcome {
        switch entry {
        case Self.reserved?: return .inProgress
        case let expiresAt? where expiresAt > now: return .duplicate
        default:
            entry = Self.reserved
            return .reserved
        }
    }

    public func commit(_ key: IdempotencyKey) async {
        let expiresAt = clock().millisecondsSince1970 + ttlMilliseconds
        let digest = key.digest
        shard(digest).state.withLock { state in
            state.entries[digest] = expiresAt
            state.acceptedOrder.append((digest, expiresAt))
        }
    }

    public func release(_ key: IdempotencyKey) async {
        let digest = key.digest
        shard(digest).state.withLock { state in
            if state.entries[digest] == Self.reserved { state.entries[digest] = nil }
        }
    }

    /// Keys currently remembered (accepted or reserved).
    public var count: Int { shards.reduce(0) { total, shard in total + shard.state.withLock { $0.entries.count } } }

    /// Shards the keys are spread over.
    public var shardCount: Int { shards.count }

    private static func evictExpired(_ state: inout State, now: Int64) {
        while state.orderHead < state.acceptedOrder.count, state.acceptedOrder[state.orderHead].expiresAt <= now {
            dropHead(&state)
        }
        compact(&state)
    }

    private static func evictOldest(_ state: inout State, keeping limit: Int) {
        while state.entries.count > limit, state.orderHead < state.acceptedOrder.count {
            dropHead(&state)
        }
        compact(&state)
    }

    private static func dropHead(_ state: inout State) {
        let (key, expiresAt) = state.acceptedOrder[state.orderHead]
        state.orderHead += 1
        // Only drop the entry if this order record is its latest commit.
        if state.entries[key] == expiresAt { state.entries[key] = nil }
    }

    private static func compact(_ state: inout State) {
        if state.orderHead > 1024, state.orderHead * 2 > state.acceptedOrder.count {
            state.acceptedOrder.removeFirst(state.orderHead)
            state.orderHead = 0
        }
    }
}
