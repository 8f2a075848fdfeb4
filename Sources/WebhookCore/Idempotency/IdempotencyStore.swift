import WebhookCrypto

/// An event's identity for deduplication: ids are scoped per source (SPEC section 4).
public struct IdempotencyKey: Hashable, Sendable, CustomStringConvertible {
    public let source: String
    public let id: String
    /// 128 bits of the SHA-256 of the source, a zero byte and the id: how the memory store
    /// remembers the key. Made once with the key, so a reservation and its commit hash it
    /// once between them (they hashed it each).
    public let digest: Digest

    public struct Digest: Hashable, Sendable {
        public let high: UInt64
        public let low: UInt64
    }

    public init(source: String, id: String) {
        self.source = source
        self.id = id
        var context = HashContext(.sha256)
        context.update(source)
        withUnsafeBytes(of: UInt8(0)) { context.update($0) }
        context.update(id)
        // Into bytes on the stack: no array per key.
        digest = withUnsafeTemporaryAllocation(byteCount: 32, alignment: 8) { buffer in
            context.finalize(into: buffer)
            return Digest(
                high: buffer.loadUnaligned(fromByteOffset: 0, as: UInt64.self),
                low: buffer.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
        }
    }

    // Equal keys have equal digests: the digest is derived, so it is neither compared nor hashed.
    public static func == (lhs: IdempotencyKey, rhs: IdempotencyKey) -> Bool {
        lhs.source == rhs.source && lhs.id == rhs.id
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(source)
        hasher.combine(id)
    }

    public var description: String { "\(source)/\(id)" }
}

/// What a reservation found.
public enum ReservationOutcome: Sendable, Equatable {
    /// The caller holds the key until it commits or releases it.
    case reserved
    /// The event was already accepted within the TTL.
    case duplicate
    /// Another request is delivering this event right now.
    case inProgress
}

/// Remembers which events were accepted, so a provider's retry of a delivered event is
/// answered `duplicate` and never delivered twice (SPEC sections 5 and 6).
///
/// The protocol is reservation-based: `reserve` before delivering, then `commit` once the
/// event is durable or `release` when it is not, so the provider's retry is accepted.
public protocol IdempotencyStore: Sendable {
    func reserve(_ key: IdempotencyKey) async throws -> ReservationOutcome
    /// Marks the key accepted for the store's TTL.
    func commit(_ key: IdempotencyKey) async throws
    /// Frees a reservation that did not end in a durable event.
    func release(_ key: IdempotencyKey) async
    /// False while the store can't be reached (`/readyz`).
    var isReady: Bool { get }
    /// Where this store keeps learned secrets when they can live beside its keys (the
    /// `redis` store, shared by replicas); nil: not here (the memory store).
    var learnedSecrets: (any LearnedSecretStore)? { get }
}

extension IdempotencyStore {
    public var isReady: Bool { true }
    public var learnedSecrets: (any LearnedSecretStore)? { nil }
}
