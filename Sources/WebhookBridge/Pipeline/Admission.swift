import NIOHTTP1
import Synchronization
import WebhookCore

/// Who may post to a source, and how often (SPEC section 3): the `allow` list (403) and the
/// `rateLimit` token bucket (429 with `Retry-After`), decided from the request head, before
/// any of the body is read.
struct Admission: Sendable {
    let allow: [CIDR]?
    let bucket: TokenBucket?

    init(source: SourceConfig) {
        self.allow = source.allow
        self.bucket = source.rateLimit.map { TokenBucket(perSecond: $0.perSecond, burst: $0.burst) }
    }

    /// nil when the request may go on, else the answer.
    func check(client: String?) -> BridgeAnswer? {
        if let allow {
            guard let client, allow.contains(where: { $0.contains(client) }) else {
                return .error(.forbidden, "forbidden")
            }
        }
        if let bucket, let wait = bucket.take() {
            return .error(.tooManyRequests, "rate_limited", headers: [("Retry-After", String(wait))])
        }
        return nil
    }

    /// The client's address: the peer, or, when the peer is a trusted proxy, the last address
    /// in `X-Forwarded-For` that is not one (the nearest untrusted hop, which a client can't
    /// forge by sending its own header).
    static func clientAddress(peer: String?, headers: HTTPHeaders, trustedProxies: [CIDR]) -> String? {
        guard let peer else { return nil }
        func trusted(_ address: String) -> Bool { trustedProxies.contains { $0.contains(address) } }
        guard !trustedProxies.isEmpty, trusted(peer) else { return peer }
        let hops = headers[canonicalForm: "X-Forwarded-For"].map { String($0).trimmingSpaces }.map(String.init)
        for hop in hops.reversed() where !trusted(hop) { return hop }
        return hops.first ?? peer
    }
}

/// A token bucket: `burst` requests at once, refilled at `perSecond`.
final class TokenBucket: Sendable {
    private let perSecond: Double
    private let burst: Double
    private let state: Mutex<(tokens: Double, refilled: ContinuousClock.Instant)>

    init(perSecond: Double, burst: Int) {
        self.perSecond = perSecond
        self.burst = Double(burst)
        self.state = Mutex((Double(burst), .now))
    }

    /// Takes a token; returns nil when one was there, else the whole seconds until one is.
    func take() -> Int? {
        let now = ContinuousClock.now
        return state.withLock { state in
            let elapsed = now - state.refilled
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            state.tokens = min(burst, state.tokens + seconds * perSecond)
            state.refilled = now
            if state.tokens >= 1 {
                state.tokens -= 1
                return nil
            }
            return max(1, Int(((1 - state.tokens) / perSecond).rounded(.up)))
        }
    }
}

extension String {
    fileprivate var trimmingSpaces: Substring {
        var slice = self[...]
        while slice.first == " " { slice.removeFirst() }
        while slice.last == " " { slice.removeLast() }
        return slice
    }
}
