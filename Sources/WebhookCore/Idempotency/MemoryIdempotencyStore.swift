import Synchronization

/// The in-process store (`idempotency.store: "memory"`): bounded, with a TTL.
///
/// Accepted keys expire `ttl` after their commit. When `maximumKeys` is reached, expired keys
/// go first and then the oldest accepted ones, so memory stays bounded under any load; a
/// reservation in progress is never evicted.
public final class MemoryIdempotencyStore: IdempotencyStore {
    private enum Entry {
        case reserved
        case accepted(expiresAt: Int64)
    }

    private struct State {
        var entries: [IdempotencyKey: Entry] = [:]
        /// Accepted keys in commit order, which is also expiry order (one TTL for all).
        var acceptedOrder: [(key: IdempotencyKey, expiresAt: Int64)] = []
        var orderHead = 0
    }

    private let state = Mutex(State())
    private let ttlMilliseconds: Int64
    private let maximumKeys: Int
    private let clock: @Sendable () -> Timestamp

    /// - Parameters:
    ///   - ttlSeconds: how long an accepted key answers `duplicate`.
    ///   - maximumKeys: the bound on remembered keys.
    ///   - clock: the time source; tests pass their own.
    public init(ttlSeconds: Int, maximumKeys: Int = 1_000_000, clock: @escaping @Sendable () -> Timestamp = Timestamp.now) {
        self.ttlMilliseconds = Int64(ttlSeconds) * 1000
        self.maximumKeys = max(1, maximumKeys)
        self.clock = clock
    }

    public func reserve(_ key: IdempotencyKey) async -> ReservationOutcome {
        let now = clock().millisecondsSince1970
        return state.withLock { state in
            Self.evictExpired(&state, now: now)
            switch state.entries[key] {
            case .reserved: return .inProgress
            case .accepted(let expiresAt) where expiresAt > now: return .duplicate
            default: break
            }
            if state.entries.count >= maximumKeys { Self.evictOldest(&state, keeping: maximumKeys - 1) }
            state.entries[key] = .reserved
            return .reserved
        }
    }

    public func commit(_ key: IdempotencyKey) async {
        let expiresAt = clock().millisecondsSince1970 + ttlMilliseconds
        state.withLock { state in
            state.entries[key] = .accepted(expiresAt: expiresAt)
            state.acceptedOrder.append((key, expiresAt))
        }
    }

    public func release(_ key: IdempotencyKey) async {
        state.withLock { state in
            if case .reserved = state.entries[key] { state.entries[key] = nil }
        }
    }

    /// Keys currently remembered (accepted or reserved).
    public var count: Int { state.withLock { $0.entries.count } }

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
        if case .accepted(let current) = state.entries[key], current == expiresAt { state.entries[key] = nil }
    }

    private static func compact(_ state: inout State) {
        if state.orderHead > 1024, state.orderHead * 2 > state.acceptedOrder.count {
            state.acceptedOrder.removeFirst(state.orderHead)
            state.orderHead = 0
        }
    }
}
