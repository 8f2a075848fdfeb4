import Logging
import Metrics
import NIOCore
import NIOHTTP1
import Spool
import Synchronization
import Tracing
import WebhookCore
import WebhookProviders

/// The pipeline behind every source path: verify -> idempotency -> route -> sinks -> answer
/// (SPEC sections 4 to 6). It knows nothing of sockets; the ingress hands it a complete request.
public final class WebhookProcessor: Sendable {
    /// A source with what the pipeline precomputes for it. The ingress resolves it once from
    /// a request's head (``source(atPath:)``) and keeps it to the answer, so a reload between
    /// the head and the body does not change what the request is checked against.
    struct Source: Sendable {
        let config: SourceConfig
        /// A sink template reads the body (`{json:/pointer}`), so parse it for the event.
        let templatesNeedJSON: Bool
        /// The request headers the routed sinks' templates read (`{header:Name}`): all an
        /// event keeps of the request's headers.
        let templateHeaders: [String]
        let admission: Admission
        let metrics: SourceMetrics
    }

    /// The counters of one source's requests, by the dimension that varies.
    struct SourceMetrics: Sendable {
        struct Verification: Hashable, Sendable {
            let result: String
            let keyIndex: Int?
        }

        /// `webhook.requests` by HTTP status.
        let requests: MetricCache<UInt, Counter>
        /// `webhook.verifications` by result and, when it verified, the secret's index.
        let verifications: MetricCache<Verification, Counter>
        /// `webhook.idempotency` by outcome.
        let idempotency: MetricCache<String, Counter>

        init(source: String) {
            requests = MetricCache { status in
                Counter(label: "webhook.requests.total", dimensions: [("webhook.source", source), ("http.status", String(status))])
            }
            verifications = MetricCache { key in
                var dimensions = [("webhook.source", source), ("webhook.result", key.result)]
                if let index = key.keyIndex { dimensions.append(("webhook.key", String(index))) }
                return Counter(label: "webhook.verifications.total", dimensions: dimensions)
            }
            idempotency = MetricCache { outcome in
                Counter(label: "webhook.idempotency.total", dimensions: [("webhook.source", source), ("webhook.outcome", outcome)])
            }
        }
    }

    /// Swapped whole by ``reload(_:)`` (SIGHUP); requests read it once each.
    private let sourcesByPath: Mutex<[String: Source]>
    private let sinks: [String: any EventSink]
    private let store: any IdempotencyStore
    private let spool: Spool?
    /// Sinks whose failure decides the answer (`required` is not false).
    private let requiredSinks: Set<String>
    private let ackTimeoutMs: Int
    private let sinkMetrics = MetricCache<String, SinkMetrics> { SinkMetrics(sink: $0) }
    private let trustedProxies: [CIDR]
    private let logger: Logger
    /// SNS SubscribeURLs already opened (bounded).
    private let confirmedSubscriptions = Mutex<Set<String>>([])
    /// Delivery and spool failures: during an outage every request fails the same way.
    private let failureLog = LogThrottle()
    /// Rejections (401, 403) and handshakes, per source and cause: anyone can send them, as
    /// fast as they like (2,000 unsigned requests in 4 s were 2,000 lines).
    private let rejectionLog = LogThrottle()

    /// What schemes may use while verifying (the SNS certificate fetcher).
    private let services: VerificationServices
    /// Request spans and the trace context events carry.
    private let tracing: RequestTracing

    public init(
        config: BridgeConfig, sinks: [String: any EventSink], store: any IdempotencyStore, spool: Spool? = nil,
        services: VerificationServices = VerificationServices(certificates: HTTPSCertificateFetcher()),
        tracing: RequestTracing = .passThrough, logger: Logger
    ) {
        self.services = services
        self.tracing = tracing
        self.sourcesByPath = Mutex(Self.sources(of: config))
        self.sinks = sinks
        self.requiredSinks = Set(config.sinks.values.filter(\.required).map(\.name))
        self.store = store
        self.spool = spool
        self.ackTimeoutMs = config.limits.ackTimeoutMs
        self.trustedProxies = config.trustedProxies
        self.logger = logger
    }

    private static func sources(of config: BridgeConfig) -> [String: Source] {
        var byPath: [String: Source] = [:]
        for source in config.sources.values {
            let routed = source.routes.allSinks.sorted().compactMap { config.sinks[$0] }
            var templateHeaders: [String] = []
            for name in routed.flatMap(\.headerNames) where !templateHeaders.contains(name) { templateHeaders.append(name) }
            byPath[source.path] = Source(
                config: source, templatesNeedJSON: routed.contains(where: \.usesBodyJSON), templateHeaders: templateHeaders,
                admission: Admission(source: source),
                metrics: SourceMetrics(source: source.name))
        }
        return byPath
    }

    /// Takes the sources, secrets and routes of `config` (SIGHUP). Sinks are built at start:
    /// a config that routes to a sink this process does not run is refused, and changed sink
    /// settings wait for a restart.
    public func reload(_ config: BridgeConfig) throws(BridgeSetupError) {
        for source in config.sortedSources {
            for name in source.routes.allSinks.sorted() where sinks[name] == nil {
                throw BridgeSetupError("sources.\(source.name): sink \"\(name)\" is new; sinks change only with a restart")
            }
        }
        let sources = Self.sources(of: config)
        sourcesByPath.withLock { $0 = sources }
    }

    /// The source serving `path`, as configured now.
    func source(atPath path: String) -> Source? { sourcesByPath.withLock { $0[path] } }

    /// The client's address: the peer, or the nearest untrusted hop behind `trustedProxies`.
    func clientAddress(peer: String?, headers: HTTPHeaders) -> String? {
        Admission.clientAddress(peer: peer, headers: headers, trustedProxies: trustedProxies)
    }

    /// The answer refusing a request to `source` from `client` (403 not allowed, 429 rate
    /// limited), or nil to go on; decided from the head alone.
    func admit(_ source: Source, method: HTTPMethod = .POST, client: String?, headers: HTTPHeaders) -> BridgeAnswer? {
        let path = source.config.path
        guard let refusal = source.admission.check(client: client) else { return nil }
        source.metrics.requests[refusal.status.code].increment()
        tracing.record(
            method: method, path: path, source: source.config.name, headers: headers, answer: refusal,
            outcome: refusal.status == .forbidden ? "forbidden" : "rate_limited")
        if refusal.status == .forbidden {
            logRejection(source, headers: headers, reason: "forbidden", detail: "client \(client ?? "unknown") is not in allow")
        }
        return refusal
    }

    /// 401 `signature_missing` when the request carries none of its scheme's signature
    /// headers, else nil; decided from the head, so an unsigned body is never buffered
    /// (SPEC section 8).
    func refuseUnsigned(_ source: Source, uri: String, headers: HTTPHeaders, client: String?) -> BridgeAnswer? {
        guard let missing = source.config.scheme.refusalFromHead(uri: uri, headers: headers) else { return nil }
        source.admission.noteFailure(client: client)
        let path = source.config.path
        logRejection(source, headers: headers, reason: missing.code, detail: missing.detail)
        source.metrics.verifications[.init(result: missing.code, keyIndex: nil)].increment()
        source.metrics.requests[HTTPResponseStatus.unauthorized.code].increment()
        let answer = BridgeAnswer.error(.unauthorized, missing.code, headers: source.config.scheme.unauthorizedHeaders)
        tracing.record(
            method: .POST, path: path, source: source.config.name, headers: headers, answer: answer, outcome: missing.code)
        return answer
    }

    /// The answer to a request with another method than POST on a source path: its scheme's
    /// handshake (GET, HEAD, OPTIONS) after the source's `allow` and `rateLimit`, else 405
    /// with an `Allow` of POST and the methods the scheme answers.
    func answerOtherMethod(
        _ source: Source, method: HTTPMethod, uri: String, client: String?, headers: HTTPHeaders
    ) -> BridgeAnswer {
        let path = source.config.path
        if let refusal = admit(source, method: method, client: client, headers: headers) { return refusal }
        let scheme = source.config.scheme
        let answer: BridgeAnswer
        if scheme.handshakeMethods.contains(method) {
            answer = BridgeAnswer(scheme.answerHandshake(HandshakeRequest(method: method, uri: uri, headers: headers)))
            if answer.status == .unauthorized || answer.status == .forbidden {
                source.admission.noteFailure(client: client)
                logRejection(
                    source, headers: headers, reason: answer.status == .forbidden ? "forbidden" : "signature_invalid",
                    detail: "the \(method.rawValue) handshake's token or credentials do not match the source's")
            } else {
                // Handshakes prove nothing of their sender (Dropbox's GET ?challenge= is open
                // to anyone): they spend the client's own bucket, never the source's.
                source.admission.noteFailure(client: client)
                logHandshake(source, headers: headers, metadata: ["http.method": "\(method.rawValue)", "http.status": "\(answer.status.code)"])
            }
        } else {
            let allowed = (["POST"] + scheme.handshakeMethods.map(\.rawValue)).joined(separator: ", ")
            answer = BridgeAnswer(status: .methodNotAllowed, headers: [("Allow", allowed)], body: [])
        }
        source.metrics.requests[answer.status.code].increment()
        tracing.record(
            method: method, path: path, source: source.config.name, headers: headers, answer: answer,
            outcome: answer.status == .methodNotAllowed ? "method_not_allowed" : "handshake")
        return answer
    }

    /// True while every sink that can decide an answer is ready (`/readyz`).
    public var requiredSinksReady: Bool {
        store.isReady && sinks.values.allSatisfy { !requiredSinks.contains($0.name) || $0.isReady }
    }

    /// Handles a POST to `source` from `client` (see ``clientAddress(peer:headers:)``).
    func handle(
        _ source: Source, uri: String, headers: HTTPHeaders, body: ByteBuffer, client: String?,
        on executor: EventLoopTaskExecutor
    ) async -> BridgeAnswer {
        let trace = tracing.start(method: .POST, path: source.config.path, source: source.config.name, headers: headers)
        let answer = await process(source, uri: uri, headers: headers, body: body, client: client, on: executor, trace: trace)
        source.metrics.requests[answer.status.code].increment()
        trace.finish(answer: answer)
        return answer
    }

    private func process(
        _ source: Source, uri: String, headers: HTTPHeaders, body: ByteBuffer, client: String?,
        on executor: EventLoopTaskExecutor, trace: RequestTrace
    ) async -> BridgeAnswer {
        let receivedAt = Timestamp.now()
        let request = WebhookRequest(headers: headers, body: body, uri: uri, receivedAt: receivedAt, client: client)
        var logger = RequestLogger(
            logger: self.logger, source: source.config.name, headers: headers, number: Self.nextRequestNumber())
        // An unsigned handshake (Microsoft Graph's validationToken, WooCommerce's ping).
        if let handshake = source.config.scheme.unsignedHandshake(request) {
            source.admission.noteFailure(client: client)  // unsigned: the client's own bucket
            logHandshake(source, headers: headers, metadata: ["http.status": "\(handshake.status)"])
            trace.span?.attributes["webhook.outcome"] = "handshake"
            return BridgeAnswer(handshake)
        }

        // Verify.
        let verified: VerifiedWebhook
        let verifySpan = trace.child("webhook.verify")
        verifySpan?.attributes["webhook.scheme"] = source.config.scheme.name
        do {
            verified = try await source.config.scheme.verify(request, services: services)
            trace.noteVerification(verifySpan, result: "ok", keyIndex: verified.keyIndex)
        } catch {
            trace.noteVerification(verifySpan, result: error.code, keyIndex: nil)
            source.metrics.verifications[.init(result: error.code, keyIndex: nil)].increment()
            if error.isUnavailable {
                // Nothing wrong with the request: the provider retries it after a 503.
                if let suppressed = failureLog.admit("\(source.config.name) verify") {
                    var metadata: Logger.Metadata = ["webhook.detail": "\(error.detail)"]
                    if suppressed > 0 { metadata["log.suppressed"] = "\(suppressed)" }
                    logger.warning("cannot verify now", metadata: metadata)
                }
                return .unavailable
            }
            source.admission.noteFailure(client: client)
            logRejection(source, headers: headers, reason: error.code, detail: error.detail)
            return .error(.unauthorized, error.code, headers: source.config.scheme.unauthorizedHeaders)
        }
        // The secret's index as a dimension: when the old secret's count stops growing, the
        // provider has switched to the new one and the old can be removed.
        source.metrics.verifications[.init(result: "ok", keyIndex: verified.keyIndex)].increment()
        if let limited = source.admission.takeVerified() {
            trace.span?.attributes["webhook.outcome"] = "rate_limited"
            return limited
        }
        if let handshake = verified.handshake {
            if let followUp = verified.followUp { self.followUp(followUp, logger: logger) }
            trace.span?.attributes["webhook.outcome"] = "handshake"
            return BridgeAnswer(handshake)
        }

        // Parsed at most once: by the scheme for its id or type, or here for the templates;
        // a scheme's scan also tells whether the body is JSON (the file sink asks).
        let bodyJSON = source.templatesNeedJSON ? request.bodyJSON : request.json.valueIfParsed
        let templateHeaders = source.templateHeaders.compactMap { name in headers.first(name: name).map { (name, $0) } }
        var event = WebhookEvent(
            id: EventID.usable(verified.id) ?? bodyHashID(body), source: source.config.name, type: verified.type ?? "webhook",
            time: receivedAt, dataContentType: headers.first(name: "Content-Type"), scheme: source.config.scheme.name,
            keyIndex: verified.keyIndex, data: body, requestHeaders: TemplateHeaders(templateHeaders), bodyJSON: bodyJSON,
            bodyIsJSON: request.json.isJSON)
        trace.stamp(&event)
        logger.eventID = event.id
        if let span = trace.span {
            span.attributes["webhook.id"] = event.id
            span.attributes["webhook.type"] = event.type
        }

        // Deduplicate.
        let key = IdempotencyKey(source: event.source, id: event.id)
        let outcome: ReservationOutcome
        let idempotencySpan = trace.child("webhook.idempotency")
        do {
            outcome = try await store.reserve(key)
        } catch {
            idempotencySpan?.recordError(error)
            idempotencySpan?.setStatus(SpanStatus(code: .error))
            idempotencySpan?.end()
            if let suppressed = failureLog.admit("idempotency") {
                var metadata: Logger.Metadata = ["webhook.error": "\(error)"]
                if suppressed > 0 { metadata["log.suppressed"] = "\(suppressed)" }
                logger.error("idempotency store failed", metadata: metadata)
            }
            source.metrics.idempotency["failed"].increment()
            return .unavailable
        }
        let outcomeName: String
        switch outcome {
        case .reserved: outcomeName = "new"
        case .duplicate: outcomeName = "duplicate"
        case .inProgress: outcomeName = "in_progress"
        }
        source.metrics.idempotency[outcomeName].increment()
        idempotencySpan?.attributes["webhook.idempotency"] = outcomeName
        idempotencySpan?.end()
        switch outcome {
        case .reserved: break
        case .duplicate:
            trace.span?.attributes["webhook.outcome"] = "duplicate"
            return .event(.ok, id: event.id, "duplicate")
        case .inProgress:
            trace.span?.attributes["webhook.outcome"] = "in_progress"
            return .inProgress
        }
        // A provider that signs a token instead of the event (Mailgun): the token is claimed
        // beside the id, committed or released with it, so a captured signature can't carry
        // another event, across reloads and replicas, while a retry of a failed delivery
        // can still use it.
        // Optional rather than an array of keys: no allocation for the other providers.
        var tokenKey: IdempotencyKey?
        if let token = verified.singleUseToken {
            // A control character can't be in an event id (``EventID``): no id collides.
            let claim = IdempotencyKey(source: event.source, id: "\u{1F}" + token)
            let claimed: ReservationOutcome
            do {
                claimed = try await store.reserve(claim)
            } catch {
                await store.release(key)
                source.metrics.idempotency["failed"].increment()
                return .unavailable
            }
            switch claimed {
            case .reserved:
                tokenKey = claim
            case .duplicate:
                await store.release(key)
                source.admission.noteFailure(client: client)
                logRejection(source, headers: headers, reason: "signature_invalid", detail: "the signature's token was already used")
                trace.span?.attributes["webhook.outcome"] = "token_reused"
                return .error(.unauthorized, "signature_invalid", headers: source.config.scheme.unauthorizedHeaders)
            case .inProgress:
                await store.release(key)
                trace.span?.attributes["webhook.outcome"] = "in_progress"
                return .inProgress
            }
        }

        // Route and deliver. A required sink with a spool backlog gets the event through the
        // spool too, so its events stay in order.
        let targets = source.config.routes.sinks(forType: event.type).compactMap { sinks[$0] }
        if targets.isEmpty {
            logger.info("no route matches the event type; nothing to deliver", metadata: ["webhook.type": "\(event.type)"])
        }
        let behindBacklog = targets.filter { isRequired($0) && (spool?.hasBacklog(for: $0.name) ?? false) }
        let direct = targets.filter { sink in !behindBacklog.contains { $0.name == sink.name } }
        let failures = await deliver(event, to: direct, on: executor, logger: logger, trace: trace)
        if failures.isEmpty && behindBacklog.isEmpty {
            await commit(key, tokenKey, logger: logger)
            trace.span?.attributes["webhook.outcome"] = "accepted"
            return .event(.ok, id: event.id, "accepted")
        }
        guard let spool else {
            await release(key, tokenKey)
            return .unavailable
        }
        do {
            for sink in behindBacklog { try await spool.append(event, for: sink.name) }
            for failure in failures {
                if failure.isPermanent {
                    try await spool.deadLetter(event, sink: failure.sink, reason: failure.reason)
                } else {
                    try await spool.append(event, for: failure.sink)
                }
            }
        } catch {
            if let suppressed = failureLog.admit("spool") {
                var metadata: Logger.Metadata = ["spool.error": "\(error)"]
                if suppressed > 0 { metadata["log.suppressed"] = "\(suppressed)" }
                logger.error("cannot spool the event", metadata: metadata)
            }
            await release(key, tokenKey)
            return .unavailable
        }
        await commit(key, tokenKey, logger: logger)
        trace.span?.attributes["webhook.outcome"] = "queued"
        return BridgeAnswer.event(.accepted, id: event.id, "queued")
    }

    /// After an SNS subscription handshake: log its SubscribeURL (an operator confirms it by
    /// opening it), or confirm it now (`verify.autoConfirm`), in the background.
    private func followUp(_ followUp: HandshakeFollowUp, logger: RequestLogger) {
        switch followUp {
        case .subscription(let url, let topic, let confirm, let caFile):
            logger.warning(
                "sns subscription message: open the SubscribeURL to confirm, unless autoConfirm does",
                metadata: ["sns.subscribe_url": "\(url)", "sns.topic": "\(topic)", "sns.auto_confirm": "\(confirm)"])
            guard confirm, let fetcher = services.certificates else { return }
            // A confirmation replayed (its token lasts days) is not followed again.
            let first = confirmedSubscriptions.withLock { confirmed -> Bool in
                if confirmed.count >= 1024 { confirmed.removeAll() }
                return confirmed.insert(url).inserted
            }
            guard first else { return }
            Task {
                do {
                    let status = try await fetcher.get(url, caFile: caFile)
                    logger.log(
                        level: (200..<300).contains(status) ? .info : .error, "sns subscription confirmed",
                        metadata: ["sns.topic": "\(topic)", "http.status": "\(status)"])
                } catch {
                    logger.error("sns subscription not confirmed", metadata: ["sns.topic": "\(topic)", "sns.error": "\(error)"])
                }
            }
        }
    }

    /// "webhook rejected" at info, one line per source and cause per interval with the count
    /// left out since (`log.suppressed`): the reason is the same for all of a flood.
    private func logRejection(_ source: Source, headers: HTTPHeaders, reason: String, detail: String) {
        guard let suppressed = rejectionLog.admit("\(source.config.name) \(reason)") else { return }
        var metadata: Logger.Metadata = ["webhook.reason": "\(reason)", "webhook.detail": "\(detail)"]
        if suppressed > 0 { metadata["log.suppressed"] = "\(suppressed)" }
        RequestLogger(logger: logger, source: source.config.name, headers: headers, number: Self.nextRequestNumber())
            .info("webhook rejected", metadata: metadata)
    }

    /// "handshake answered", throttled as rejections are: some handshakes are unsigned.
    private func logHandshake(_ source: Source, headers: HTTPHeaders, metadata: Logger.Metadata) {
        guard let suppressed = rejectionLog.admit("\(source.config.name) handshake") else { return }
        var metadata = metadata
        if suppressed > 0 { metadata["log.suppressed"] = "\(suppressed)" }
        RequestLogger(logger: logger, source: source.config.name, headers: headers, number: Self.nextRequestNumber())
            .info("handshake answered", metadata: metadata)
    }

    private static let requestCounter = Atomic<UInt64>(0)

    private static func nextRequestNumber() -> UInt64 { requestCounter.add(1, ordering: .relaxed).oldValue }

    /// Frees the event's reservation, and its single-use token's (Mailgun), so the provider's
    /// retry is accepted.
    private func release(_ key: IdempotencyKey, _ tokenKey: IdempotencyKey?) async {
        await store.release(key)
        if let tokenKey { await store.release(tokenKey) }
    }

    private func commit(_ key: IdempotencyKey, _ tokenKey: IdempotencyKey?, logger: RequestLogger) async {
        await commit(key, logger: logger)
        // Committed on its own: a failed commit of the id must not leave the token reserved.
        if let tokenKey { await commit(tokenKey, logger: logger) }
    }

    private func commit(_ key: IdempotencyKey, logger: RequestLogger) async {
        do {
            try await store.commit(key)
        } catch {
            // The event is durable; a lost commit only means a retry may be delivered again.
            logger.warning("idempotency commit failed", metadata: ["webhook.error": "\(error)"])
        }
    }

    /// Delivers to every target at once and returns the failures of required sinks. Sinks with
    /// `required: false` are not waited for: their failures are logged, never answered.
    private func deliver(
        _ event: WebhookEvent, to targets: [any EventSink], on executor: EventLoopTaskExecutor, logger: RequestLogger,
        trace: RequestTrace
    ) async -> [SinkError] {
        let ackTimeoutMs = self.ackTimeoutMs
        for sink in targets where !isRequired(sink) {
            let metrics = sinkMetrics[sink.name]
            let span = trace.deliverySpan(sink: sink.name, required: false)
            Task(executorPreference: executor) {
                let result = await deliverWithDeadline(event, to: sink, milliseconds: ackTimeoutMs, metrics: metrics, on: executor)
                RequestTrace.end(span, result)
                if case .failure(let error) = result { self.log(error, required: false, logger: logger) }
            }
        }
        let required = targets.filter(isRequired)
        if required.isEmpty { return [] }
        if required.count == 1 {
            // The usual case: one required sink, awaited without a task group.
            let sink = required[0]
            let span = trace.deliverySpan(sink: sink.name, required: true)
            let result = await deliverWithDeadline(
                event, to: sink, milliseconds: ackTimeoutMs, metrics: sinkMetrics[sink.name], on: executor)
            RequestTrace.end(span, result)
            guard case .failure(let error) = result else { return [] }
            log(error, required: true, logger: logger)
            return [error]
        }
        return await withTaskGroup(of: SinkError?.self) { group in
            for sink in required {
                let metrics = sinkMetrics[sink.name]
                let span = trace.deliverySpan(sink: sink.name, required: true)
                group.addTask(executorPreference: executor) {
                    let result = await deliverWithDeadline(
                        event, to: sink, milliseconds: ackTimeoutMs, metrics: metrics, on: executor)
                    RequestTrace.end(span, result)
                    if case .failure(let error) = result { return error }
                    return nil
                }
            }
            var failures: [SinkError] = []
            for await case let error? in group {
                log(error, required: true, logger: logger)
                failures.append(error)
            }
            return failures
        }
    }

    /// One line per sink and kind of failure per interval, with the count left out since.
    private func log(_ error: SinkError, required: Bool, logger: RequestLogger) {
        guard let suppressed = failureLog.admit("\(error.sink) \(error.kind)") else { return }
        var metadata: Logger.Metadata = [
            "sink.name": "\(error.sink)", "sink.error": "\(error.reason)", "sink.required": "\(required)",
        ]
        if suppressed > 0 { metadata["log.suppressed"] = "\(suppressed)" }
        logger.log(level: required ? .error : .warning, "delivery failed", metadata: metadata)
    }

    private func isRequired(_ sink: any EventSink) -> Bool { requiredSinks.contains(sink.name) }
}

/// A request's log context. It becomes metadata only when a line is logged: setting
/// `Logger` metadata for every request cost 4% of the CPU under load, for lines that are
/// rarely written.
struct RequestLogger: Sendable {
    let logger: Logger
    let source: String
    let headers: HTTPHeaders
    /// Numbers the request within the process, for its id.
    let number: UInt64
    var eventID: String?

    /// A random prefix per process, so request ids of two processes don't collide.
    private static let processPrefix = String(UInt32.random(in: 0...UInt32.max), radix: 36)

    /// The provider's request id when it sends one, so a log line can be matched with the
    /// provider's delivery log (its first 128 bytes); else one of ours.
    var requestID: String {
        headers.first(name: "X-Request-Id").map { LoggedValue.bounded($0, bytes: 128) } ?? "\(Self.processPrefix)-\(number)"
    }

    func log(
        level: Logger.Level, _ message: @autoclosure () -> Logger.Message, metadata: Logger.Metadata = [:],
        file: String = #fileID, function: String = #function, line: UInt = #line
    ) {
        logger.log(level: level, message(), metadata: withContext(metadata), file: file, function: function, line: line)
    }

    /// The line's metadata with the request's context; every value bounded (see
    /// ``LoggedValue``), since most of them hold something a request chose.
    private func withContext(_ metadata: Logger.Metadata) -> Logger.Metadata {
        var all = metadata.mapValues { LoggedValue.bounded($0) }
        all["webhook.source"] = "\(source)"
        all["http.request_id"] = "\(requestID)"
        if let eventID { all["webhook.id"] = "\(eventID)" }
        return all
    }

    func info(
        _ message: @autoclosure () -> Logger.Message, metadata: Logger.Metadata = [:],
        file: String = #fileID, function: String = #function, line: UInt = #line
    ) {
        log(level: .info, message(), metadata: metadata, file: file, function: function, line: line)
    }

    func warning(
        _ message: @autoclosure () -> Logger.Message, metadata: Logger.Metadata = [:],
        file: String = #fileID, function: String = #function, line: UInt = #line
    ) {
        log(level: .warning, message(), metadata: metadata, file: file, function: function, line: line)
    }

    func error(
        _ message: @autoclosure () -> Logger.Message, metadata: Logger.Metadata = [:],
        file: String = #fileID, function: String = #function, line: UInt = #line
    ) {
        log(level: .error, message(), metadata: metadata, file: file, function: function, line: line)
    }
}
