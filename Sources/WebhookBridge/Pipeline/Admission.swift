import NIOHTTP1
import Synchronization
import WebhookCore

/// Who may post to a source, and how often (SPEC section 3): the `allow` list (403) and the
/// `rateLimit` token bucket (429 with `Retry-After`), decided from the request head, before
/// any of the body is read.
///
/// The source's budget is spent only by requests that verify: a request that fails
/// verification is counted against its own client address, at the same rate, so strangers
/// sending unsigned or forged requests can't use up the provider's budget (100 unsigned
/// requests a second once left an honest provider 1 of its 10). The head only looks at the
/// budgets; a token is taken once the request is verified (or has failed).
struct Admission: Sendable {
    let allow: [CIDR]?
    let bucket: TokenBucket?
    /// Failed verifications by client address; with `rateLimit` only.
    let failures: ClientBuckets?

    init(source: SourceConfig) {
        self.allow = source.allow
        self.bucket = source.rateLimit.map { TokenBucket(perSecond: $0.perSecond, burst: $0.burst) }
        self.failures = source.rateLimit.map { ClientBuckets(perSecond: $0.perSecond, burst: $0.burst) }
    }

    /// nil when the request may go on, else the answer: 403 outside `allow`, 429 when the
    /// source's budget is spent or this client's failures have spent their own. Takes nothing.
    func check(client: String?) -> BridgeAnswer? {
        if let allow {
            guard let client, allow.contains(where: { $0.contains(client) }) else {
                return .error(.forbidden, "forbidden")
            }
        }
        if let wait = bucket?.wait() ?? failures?.wait(for: client) { return Self.rateLimited(wait) }
        return nil
    }

    /// A verified request takes a token of the source's budget: nil, or the 429 when
    /// requests verified since the head check spent the last one.
    func takeVerified() -> BridgeAnswer? {
        guard let wait = bucket?.take() else { return nil }
        return Self.rateLimited(wait)
    }

    /// A request that failed verification, or an unsigned handshake, takes a token of its
    /// client's own budget.
    func noteFailure(client: String?) { _ = failures?.take(for: client) }

    private static func rateLimited(_ wait: Int) -> BridgeAnswer {
        .error(.tooManyRequests, "rate_limited", headers: [("Retry-After", String(wait))])
    }

    /// The client's address: the peer, or, when the peer is a trusted proxy, the last address
    /// in `X-Forwarded-For` that is not one (the nearest untrusted hop, which a client can't
    /// forge by sending its own header).
    static func clientAddress(peer: String?, headers: HTTPHeaders, trustedProxies: [CIDR]) -> String? {
        guard let peer else { return nil }
        func trusted(_ address: String) -> Bool { trustedProxies.contains { $0.contains(address) } }
        guard !trustedProxies.isEmpty, trusted(peer) else { return peer }
        let hops = headers[canonicalForm: "X-Forwarded-For"].map { String($0.trimmingSpaces) }
        for hop in hops.reversed() where !trusted(hop) { return hop }
        return hops.first ?? peer
    }
}

/// A token bucket's level: `burst` requests at once, refilled at `perSecond`.
struct BucketLevel: Sendable {
    var tokens: Double
    var refilled: ContinuousClock.Instant

    /// Refills for the time since the last refill; the whole seconds until a token is there,
    /// or nil when one is (taken when `take`).
    mutating func wait(at now: ContinuousClock.Instant, perSecond: Double, burst: Double, take: Bool) -> Int? {
        let elapsed = now - refilled
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        tokens = min(burst, tokens + seconds * perSecond)
        refilled = now
        if tokens >= 1 {
            if take { tokens -= 1 }
            return nil
        }
        return max(1, Int(((1 - tokens) / perSecond).rounded(.up)))
    }
}

/// A token bucket: `burst` requests at once, refilled at `perSecond`.
final class TokenBucket: Sendable {
    private let perSecond: Double
    private let burst: Double
    private let level: Mutex<BucketLevel>

    init(perSecond: Double, burst: Int) {
        self.perSecond = perSecond
        self.burst = Double(burst)
        self.level = Mutex(BucketLevel(tokens: Double(burst), refilled: .now))
    }

    /// Takes a token; returns nil when one was there, else the whole seconds until one is.
    func take() -> Int? { level.withLock { $0.wait(at: .now, perSecond: perSecond, burst: burst, take: true) } }

    /// As ``take()``, without taking the token.
    func wait() -> Int? { level.withLock { $0.wait(at: .now, perSecond: perSecond, burst: burst, take: false) } }
}

/// A token bucket per client address, for failed verifications. At most ``maximumClients``
/// are held: past it, buckets that have refilled are dropped (a full bucket is the same as
/// none), and if every one is still in use, all are, so a flood from many addresses costs a
/// bounded table, never the source's budget.
final class ClientBuckets: Sendable {
    static let maximumClients = 4096
    private let perSecond: Double
    private let burst: Double
    private let levels = Mutex<[String: BucketLevel]>([:])

    init(perSecond: Double, burst: Int) {
        self.perSecond = perSecond
        self.burst = Double(burst)
    }

    /// nil when `client` may fail once more now, else the whole seconds until it may.
    func wait(for client: String?) -> Int? { level(of: client, take: false) }

    /// Counts one failure of `client`: as ``wait(for:)``, taking the token.
    func take(for client: String?) -> Int? { level(of: client, take: true) }

    private func level(of client: String?, take: Bool) -> Int? {
        let now = ContinuousClock.now
        let key = client ?? ""
        return levels.withLock { levels -> Int? in
            if levels[key] == nil {
                // A client without failures needs no bucket until it fails.
                guard take else { return nil }
                if levels.count >= Self.maximumClients { prune(&levels, now: now) }
                levels[key] = BucketLevel(tokens: burst, refilled: now)
            }
            return levels[key]!.wait(at: now, perSecond: perSecond, burst: burst, take: take)
        }
    }

    private func prune(_ levels: inout [String: BucketLevel], now: ContinuousClock.Instant) {
        levels = levels.filter { _, level in
            var level = level
            _ = level.wait(at: now, perSecond: perSecond, burst: burst, take: false)
            return level.tokens < burst
        }
        if levels.count >= Self.maximumClients { levels.removeAll() }
    }
}
