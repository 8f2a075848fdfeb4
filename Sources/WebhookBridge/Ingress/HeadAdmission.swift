import NIOCore
import NIOHTTP1
import WebhookCore
import WebhookProviders

/// Everything decided from a request's head alone (SPEC section 8), in the order the checks
/// cost: the source its path names, the method (a scheme's GET/HEAD/OPTIONS handshake, else
/// 405), the source's `allow` and rate limit, the bridge's concurrency, the declared size,
/// the scheme's signature header, room in the body budget. The connection talks to this
/// alone until the body is complete, then hands the request to the ``WebhookProcessor``.
/// A request that passes is received, its body's bytes reserved as they arrive
/// (``reserve(needed:reserved:declared:client:)``).
struct HeadAdmission: Sendable {
    /// What the head decided.
    enum Decision {
        /// Not a source's path: the built-in endpoints answer.
        case endpoint
        /// Read the body: `capacity` is the buffer to allocate (the declared length, allocated
        /// once; untouched pages cost no memory until bytes arrive). `client` is the address
        /// the request is counted against.
        case receive(ConfiguredSource, capacity: Int, declared: Int?, client: String?)
        /// Refused; when a body is on its way, answered now and the connection closed.
        case refuse(BridgeAnswer)
        /// The declared body is over `maxBodyBytes`: 413 now, and close.
        case tooLarge
    }

    let sources: SourceTable
    let trustedProxies: [CIDR]
    let limits: BridgeConfig.Limits
    let inFlight: InFlightRequests
    let budget: BodyBudget
    let tracing: RequestTracing
    let log: PipelineLog

    init(processor: WebhookProcessor, limits: BridgeConfig.Limits, inFlight: InFlightRequests, budget: BodyBudget) {
        self.sources = processor.sources
        self.trustedProxies = processor.trustedProxies
        self.tracing = processor.tracing
        self.log = processor.log
        self.limits = limits
        self.inFlight = inFlight
        self.budget = budget
    }

    func decide(_ head: HTTPRequestHead, path: Substring, peer: String?) -> Decision {
        guard let source = sources.source(atPath: String(path)) else { return .endpoint }
        let client = Admission.clientAddress(peer: peer, headers: head.headers, trustedProxies: trustedProxies)
        guard head.method == .POST else {
            return .refuse(answerOtherMethod(source, method: head.method, uri: head.uri, client: client, headers: head.headers))
        }
        if let refusal = admit(source, uri: head.uri, client: client, headers: head.headers) { return .refuse(refusal) }
        if inFlight.count >= limits.maxConcurrentRequests { return .refuse(.unavailable) }
        let declared = head.headers.first(name: "Content-Length").flatMap(Int.init)
        if let declared, declared > limits.maxBodyBytes {
            tracing.record(
                method: .POST, path: source.config.path, source: source.name, headers: head.headers, uri: head.uri,
                client: client, answer: .tooLarge, outcome: "too_large",
                cause: ("too_large", "Content-Length \(declared) is over limits.maxBodyBytes (\(limits.maxBodyBytes))"))
            return .tooLarge
        }
        if let refusal = refuseUnsigned(source, uri: head.uri, headers: head.headers, client: client) {
            return .refuse(refusal)
        }
        // A body that could not fit now is refused before it is read; one that fits is only
        // reserved as it arrives.
        guard budget.fits(max(declared ?? 0, 0), client: client) else { return .refuse(.busy) }
        return .receive(source, capacity: declared ?? 4096, declared: declared, client: client)
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

    /// The answer refusing a request to `source` from `client` (403 not allowed, 429 rate
    /// limited), or nil to go on.
    private func admit(
        _ source: ConfiguredSource, method: HTTPMethod = .POST, uri: String, client: String?, headers: HTTPHeaders
    ) -> BridgeAnswer? {
        guard let refusal = source.admission.check(client: client) else { return nil }
        source.metrics.requests[refusal.status.code].increment()
        let forbidden = refusal.status == .forbidden
        let detail = forbidden ? "client \(client ?? "unknown") is not in allow" : "over the source's rateLimit"
        tracing.record(
            method: method, path: source.config.path, source: source.name, headers: headers, uri: uri, client: client,
            answer: refusal, outcome: forbidden ? "forbidden" : "rate_limited",
            cause: (forbidden ? "forbidden" : "rate_limited", detail))
        if forbidden { log.rejection(source: source.name, headers: headers, reason: "forbidden", detail: detail) }
        return refusal
    }

    /// 401 `signature_missing` when the request carries none of its scheme's signature
    /// headers, else nil, so an unsigned body is never buffered.
    private func refuseUnsigned(_ source: ConfiguredSource, uri: String, headers: HTTPHeaders, client: String?) -> BridgeAnswer? {
        guard let missing = source.scheme.refusalFromHead(uri: uri, headers: headers) else { return nil }
        source.admission.noteFailure(client: client)
        log.rejection(source: source.name, headers: headers, reason: missing.code, detail: missing.detail)
        source.metrics.verifications[.init(result: missing.code, keyIndex: nil)].increment()
        source.metrics.requests[HTTPResponseStatus.unauthorized.code].increment()
        let answer = BridgeAnswer.error(.unauthorized, missing.code, headers: source.scheme.unauthorizedHeaders)
        tracing.record(
            method: .POST, path: source.config.path, source: source.name, headers: headers, uri: uri, client: client,
            answer: answer, outcome: missing.code, cause: (missing.code, missing.detail))
        return answer
    }

    /// The answer to another method than POST on a source path: its scheme's handshake (GET,
    /// HEAD, OPTIONS) after the source's `allow` and `rateLimit`, else 405 with an `Allow` of
    /// POST and the methods the scheme answers.
    private func answerOtherMethod(
        _ source: ConfiguredSource, method: HTTPMethod, uri: String, client: String?, headers: HTTPHeaders
    ) -> BridgeAnswer {
        if let refusal = admit(source, method: method, uri: uri, client: client, headers: headers) { return refusal }
        let scheme = source.scheme
        let answer: BridgeAnswer
        if scheme.handshakeMethods.contains(method) {
            answer = BridgeAnswer(scheme.answerHandshake(HandshakeRequest(method: method, uri: uri, headers: headers)))
            // Handshakes prove nothing of their sender (Dropbox's GET ?challenge= is open to
            // anyone): they spend the client's own bucket, never the source's.
            source.admission.noteFailure(client: client)
            if answer.status == .unauthorized || answer.status == .forbidden {
                log.rejection(
                    source: source.name, headers: headers,
                    reason: answer.status == .forbidden ? "forbidden" : "signature_invalid",
                    detail: "the \(method.rawValue) handshake's token or credentials do not match the source's")
            } else {
                log.handshake(
                    source: source.name, headers: headers,
                    metadata: ["http.method": "\(method.rawValue)", "http.status": "\(answer.status.code)"])
            }
        } else {
            let allowed = (["POST"] + scheme.handshakeMethods.map(\.rawValue)).joined(separator: ", ")
            answer = BridgeAnswer(
                status: .methodNotAllowed, headers: [("Allow", allowed)], body: [], code: "method_not_allowed")
        }
        source.metrics.requests[answer.status.code].increment()
        tracing.record(
            method: method, path: source.config.path, source: source.name, headers: headers, uri: uri, client: client,
            answer: answer,
            outcome: answer.status == .methodNotAllowed
                ? "method_not_allowed"
                : answer.status == .forbidden ? "forbidden" : answer.status == .unauthorized ? "signature_invalid" : "handshake")
        return answer
    }
}
