import NIOCore
import NIOHTTP1
import WebhookCore

/// The admission of a POST to a source, decided from its head alone (SPEC section 8), in
/// the order the checks cost: the method, the source's `allow` and rate limit, the bridge's
/// concurrency, the declared size, the scheme's signature header, the body budget. A
/// request that passes has its declared body reserved and is received; the connection
/// hands the complete request to the ``WebhookProcessor``.
struct SourceRequests: Sendable {
    /// What the head decided.
    enum Admission {
        /// Read the body: `reserved` bytes of the budget are held for it, and `capacity` is
        /// the buffer to allocate (the declared length, allocated once).
        case receive(reserved: Int, capacity: Int)
        /// Refused; when a body is on its way, answered now and the connection closed.
        case refuse(BridgeAnswer)
        /// The declared body is over `maxBodyBytes`: 413 now, and close.
        case tooLarge
    }

    let processor: WebhookProcessor
    let limits: BridgeConfig.Limits
    let inFlight: InFlightRequests
    let budget: BodyBudget

    func admit(_ head: HTTPRequestHead, to source: WebhookProcessor.Source, peer: String?) -> Admission {
        guard head.method == .POST else {
            return .refuse(
                processor.answerOtherMethod(source, method: head.method, uri: head.uri, peer: peer, headers: head.headers))
        }
        if let refusal = processor.admit(source, peer: peer, headers: head.headers) { return .refuse(refusal) }
        if inFlight.count >= limits.maxConcurrentRequests { return .refuse(.unavailable) }
        let declared = head.headers.first(name: "Content-Length").flatMap(Int.init)
        if let declared, declared > limits.maxBodyBytes { return .tooLarge }
        if let refusal = processor.refuseUnsigned(source, uri: head.uri, headers: head.headers) {
            return .refuse(refusal)
        }
        // The declared body is reserved whole (and allocated once: growing a buffer by
        // doubling briefly holds twice the bytes); a chunked one reserves as it arrives.
        let reserved = max(declared ?? 0, 0)
        guard budget.reserve(reserved) else { return .refuse(.busy) }
        return .receive(reserved: reserved, capacity: declared ?? 4096)
    }

    /// More of the budget for a body longer than declared (or chunked), in steps of 64 KiB:
    /// the bytes taken, or nil when they don't fit.
    func reserveMore(needed: Int, reserved: Int) -> Int? {
        let more = min(max(needed - reserved, 65536), limits.maxBodyBytes - reserved)
        return budget.reserve(more) ? more : nil
    }
}
