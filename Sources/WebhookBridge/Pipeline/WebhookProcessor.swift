import Logging
import NIOCore
import NIOHTTP1
import Spool
import WebhookCore
import WebhookProviders

/// The pipeline behind every source path, for a request the ingress has admitted from its
/// head (``HeadAdmission``) and received whole: verify -> event -> dedupe -> route and
/// deliver -> answer (SPEC sections 4 to 6), each stage its own type. It knows nothing of
/// sockets.
public final class WebhookProcessor: Sendable {
    /// Swapped whole by ``reload(_:)`` (SIGHUP); the ingress reads it once per request.
    let sources: SourceTable
    let trustedProxies: [CIDR]
    /// Request spans and the trace context events carry.
    let tracing: RequestTracing
    let log: PipelineLog
    private let verify: VerifyStage
    private let dedupe: DedupeStage
    private let deliver: DeliverStage

    public init(
        config: BridgeConfig, sinks: [String: any EventSink], store: any IdempotencyStore, spool: Spool? = nil,
        services: VerificationServices = VerificationServices(certificates: HTTPSCertificateFetcher()),
        tracing: RequestTracing = .passThrough, logger: Logger
    ) {
        let log = PipelineLog(logger: logger)
        self.sources = SourceTable(config)
        self.trustedProxies = config.trustedProxies
        self.tracing = tracing
        self.log = log
        self.verify = VerifyStage(services: services, confirmer: SubscriptionConfirmer(fetcher: services.certificates), log: log)
        self.dedupe = DedupeStage(store: store, log: log)
        self.deliver = DeliverStage(
            sinks: sinks, requiredSinks: Set(config.sinks.values.filter(\.required).map(\.name)), spool: spool,
            ackTimeoutMs: config.limits.ackTimeoutMs, log: log)
    }

    /// Takes the sources, secrets and routes of `config` (SIGHUP). Sinks are built at start:
    /// a config that routes to a sink this process does not run is refused, and changed sink
    /// settings wait for a restart.
    public func reload(_ config: BridgeConfig) throws(BridgeSetupError) {
        for source in config.sortedSources {
            for name in source.routes.allSinks.sorted() where deliver.sinks[name] == nil {
                throw BridgeSetupError("sources.\(source.name): sink \"\(name)\" is new; sinks change only with a restart")
            }
        }
        sources.reload(config)
    }

    /// True while every sink that can decide an answer is ready (`/readyz`).
    public var requiredSinksReady: Bool {
        dedupe.store.isReady && deliver.sinks.values.allSatisfy { !deliver.requiredSinks.contains($0.name) || $0.isReady }
    }

    /// Handles a POST to `source` from `client` (the address ``HeadAdmission`` counted it against).
    func handle(
        _ source: ConfiguredSource, uri: String, headers: HTTPHeaders, body: ByteBuffer, client: String?,
        on executor: EventLoopTaskExecutor
    ) async -> BridgeAnswer {
        let trace = tracing.start(method: .POST, path: source.config.path, source: source.name, headers: headers)
        let answer = await process(source, uri: uri, headers: headers, body: body, client: client, on: executor, trace: trace)
        source.metrics.requests[answer.status.code].increment()
        trace.finish(answer: answer)
        return answer
    }

    private func process(
        _ source: ConfiguredSource, uri: String, headers: HTTPHeaders, body: ByteBuffer, client: String?,
        on executor: EventLoopTaskExecutor, trace: RequestTrace
    ) async -> BridgeAnswer {
        let request = WebhookRequest(headers: headers, body: body, uri: uri, receivedAt: Timestamp.now(), client: client)
        var logger = log.request(source: source.name, headers: headers)

        let verified: VerifiedWebhook
        switch await verify.run(source, request, trace: trace, logger: logger) {
        case .answered(let answer): return answer
        case .verified(let result): verified = result
        }

        var event = Self.event(verified, request, source: source)
        trace.stamp(&event)
        logger.eventID = event.id
        if let span = trace.span {
            span.attributes["webhook.id"] = event.id
            span.attributes["webhook.type"] = event.type
        }

        let reservation: Reservation
        switch await dedupe.run(
            event, singleUseToken: verified.singleUseToken, source: source, headers: headers, client: client, trace: trace,
            logger: logger)
        {
        case .answered(let answer): return answer
        case .reserved(let result): reservation = result
        }

        switch await deliver.run(event, routes: source.config.routes, on: executor, trace: trace, logger: logger) {
        case .delivered:
            await reservation.commit(logger: logger)
            trace.span?.attributes["webhook.outcome"] = "accepted"
            return .event(.ok, id: event.id, "accepted")
        case .queued:
            await reservation.commit(logger: logger)
            trace.span?.attributes["webhook.outcome"] = "queued"
            return .event(.accepted, id: event.id, "queued")
        case .unavailable:
            await reservation.release()
            return .unavailable
        }
    }

    /// The event a verified request becomes (SPEC section 7): the provider's id (else the
    /// body's hash), its type (else `webhook`), the body as it came, and of the request only
    /// what the sinks' templates read.
    static func event(_ verified: VerifiedWebhook, _ request: WebhookRequest, source: ConfiguredSource) -> WebhookEvent {
        // Parsed at most once: by the scheme for its id or type, or here for the templates;
        // a scheme's scan also tells whether the body is JSON (the file sink asks).
        let bodyJSON = source.templatesNeedJSON ? request.bodyJSON : request.json.valueIfParsed
        let headers = request.headers
        let templateHeaders = source.templateHeaders.compactMap { name in headers.first(name: name).map { (name, $0) } }
        return WebhookEvent(
            id: EventID.usable(verified.id) ?? bodyHashID(request.body), source: source.name, type: verified.type ?? "webhook",
            time: request.receivedAt, dataContentType: headers.first(name: "Content-Type"), scheme: source.scheme.name,
            keyIndex: verified.keyIndex, data: request.body, requestHeaders: TemplateHeaders(templateHeaders),
            bodyJSON: bodyJSON, bodyIsJSON: request.json.isJSON)
    }
}
