import NIOCore
import NIOHTTP1
import WebhookCore

/// The admission of a POST to a source, decided from its head alone (SPEC section 8), in
/// the order the checks cost: the method, the source's `allow` and rate limit, the bridge's
/// concurrency, the declared size, the scheme's signature header, room in the body budget.
/// A request that passes is received, its body's bytes reserved as they arrive
/// (``reserve(needed:reserved:declared:client:)``); the connection hands the complete
/// request to the ``WebhookProcessor``.
struct SourceRequests: Sendable {
    /// What the head decided.
    enum Admission {
        /// Read the body: `capacity` is the buffer to allocate (the declared length, allocated
        /// once; untouched pages cost no memory until bytes arrive). `client` is the address
        /// the request is counted against.
        case receive(capacity: Int, declared: Int?, client: String?)
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
        let client = processor.clientAddress(peer: peer, headers: head.headers)
        guard head.method == .POST else {
            return .refuse(
                processor.answerOtherMethod(source, method: head.method, uri: head.uri, client: client, headers: head.headers))
        }
        if let refusal = processor.admit(source, client: client, headers: head.headers) { return .refuse(refusal) }
        if inFlight.count >= limits.maxConcurrentRequests { return .refuse(.unavailable) }
        let declared = head.headers.first(name: "Content-Length").flatMap(Int.init)
        if let declared, declared > limits.maxBodyBytes { return .tooLarge }
        if let refusal = processor.refuseUnsigned(source, uri: head.uri, headers: head.headers, client: client) {
            return .refuse(refusal)
        }
        // A body that could not fit now is refused before it is read; one that fits is only
        // reserved as it arrives.
        guard budget.fits(max(declared ?? 0, 0), client: client) else { return .refuse(.busy) }
        return .receive(capacity: declared ?? 4096, declared: declared, client: client)
    }

    /// More of the budget for a body that has grown to `needed` bytes, `reserved` held so
    /// far: at least what is needed, in steps of up to 64 KiB within the declared length (or
    /// `maxBodyBytes` for a chunked body). The bytes taken, or nil when they don't fit.
    func reserve(needed: Int, reserved: Int, declared: Int?, client: String?) -> Int? {
        let ceiling = max(min(declared ?? limits.maxBodyBytes, limits.maxBodyBytes), needed)
        let more = min(max(needed - reserved, Self.reservationStep), ceiling - reserved)
        return budget.reserve(more, client: client) ? more : nil
    }

    /// How much a reservation takes ahead of the bytes that arrived, at most.
    static let reservationStep = 65536
}
