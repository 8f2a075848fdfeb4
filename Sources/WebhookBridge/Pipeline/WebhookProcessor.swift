import Logging
import NIOCore
import NIOHTTP1
import Spool
import WebhookCore
import WebhookEncoding
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

    /// Whether the idempotency store can be reached (`/readyz`).
    public var idempotencyStoreReady: Bool { dedupe.store.isReady }

    /// The required sinks that are not ready, by name, with why (`circuit open`), for
    /// `/readyz`'s answer.
    public var unreadySinks: [(name: String, reason: String)] {
        deliver.sinks.values.filter { deliver.requiredSinks.contains($0.name) }.compactMap { sink in
            sink.unreadyReason.map { (sink.name, $0) }
        }.sorted { $0.name < $1.name }
    }

    /// Handles a POST to `source` from `client` (the address ``HeadAdmission`` counted it against).
    func handle(
        _ source: ConfiguredSource, uri: String, headers: HTTPHeaders, body: ByteBuffer, client: String?,
        on executor: EventLoopTaskExecutor
    ) async -> BridgeAnswer {
        let trace = tracing.start(
            method: .POST, path: source.config.path, source: source.name, headers: headers, uri: uri, client: client,
            body: body)
        let answer = await process(source, uri: uri, headers: headers, body: body, client: client, on: executor, trace: trace)
        source.metrics.requests[answer.status.code].increment()
        trace.finish(answer: answer)
        return answer
    }

    private func process(
        _ source: ConfiguredSource, uri: String, headers: HTTPHeaders, body: ByteBuffer, client: String?,
        on executor: EventLoopTaskExecutor, trace: RequestTrace
    ) async -> BridgeAnswer {
        let request = WebhookRequest(
            headers: headers, body: body, uri: uri, receivedAt: Timestamp.now(), client: client, parsesBody: source.needsBodyJSON)
        var logger = log.request(source: source.name, headers: headers)

        let verified: VerifiedWebhook
        switch await verify.run(source, request, trace: trace, logger: logger) {
        case .answered(let answer): return answer
        case .verified(let result): verified = result
        }

        switch ShapeStage.events(verified, request, source: source) {
        case .batch(let events):
            return await takeBatch(events, request, source: source, on: executor, trace: trace, logger: logger)
        case .single(var event):
            trace.stamp(&event)
            logger.eventID = event.id
            trace.note(event: event)
            let outcome = await take(
                event, request, singleUseToken: verified.singleUseToken, source: source, on: executor, trace: trace,
                logger: logger)
            if case .answered(let answer) = outcome { return answer }
            trace.note(outcome: outcome.name)
            return answer(outcome, id: event.id, source: source)
        }
    }

    /// What became of one event.
    enum EventOutcome {
        case accepted, queued, duplicate, filtered
        /// Not taken: the answer says why (in progress, unavailable, a reused token).
        case answered(BridgeAnswer)

        var name: String {
            switch self {
            case .accepted: return "accepted"
            case .queued: return "queued"
            case .duplicate: return "duplicate"
            case .filtered: return "filtered"
            case .answered: return "refused"
            }
        }
    }

    /// Dedupe, route and deliver one event (SPEC sections 6 and 10): its id is reserved, the
    /// first route that takes it is found (none: filtered, the id committed), and it goes to
    /// that route's sinks.
    private func take(
        _ event: WebhookEvent, _ request: WebhookRequest, singleUseToken: String?, source: ConfiguredSource,
        on executor: EventLoopTaskExecutor, trace: RequestTrace, logger: RequestLogger
    ) async -> EventOutcome {
        let reservation: Reservation
        switch await dedupe.run(
            event, singleUseToken: singleUseToken, source: source, headers: request.headers, client: request.client,
            trace: trace, logger: logger)
        {
        case .answered(let answer): return .answered(answer)
        case .duplicate: return .duplicate
        case .reserved(let result): reservation = result
        }

        guard let (index, routed) = ShapeStage.route(event, request, source: source) else {
            source.metrics.filtered.increment()
            // Debug: a source may filter most of what it is sent (a batch of a thousand, too).
            logger.log(level: .debug, "filtered: no route takes the event", metadata: ["webhook.type": "\(event.type)"])
            await reservation.commit(logger: logger)
            return .filtered
        }
        let sinks = source.config.routes.routes[index].sinks
        switch await deliver.run(routed, to: sinks, on: executor, trace: trace, logger: logger) {
        case .delivered:
            await reservation.commit(logger: logger)
            trace.noteTaken(event)
            return .accepted
        case .queued:
            await reservation.commit(logger: logger)
            trace.noteTaken(event)
            return .queued
        case .unavailable:
            await reservation.release()
            return .answered(.unavailable)
        }
    }

    /// How many elements of a batch are taken at once.
    static let batchConcurrency = 32

    /// A split batch: its elements taken 32 at a time; 2xx only when each one that is not a
    /// duplicate or filtered is durable, with the counts. An element that could not be kept
    /// decides the answer (503, else 409), and the provider's retry finds the others
    /// duplicates.
    private func takeBatch(
        _ events: [WebhookEvent], _ request: WebhookRequest, source: ConfiguredSource, on executor: EventLoopTaskExecutor,
        trace: RequestTrace, logger: RequestLogger
    ) async -> BridgeAnswer {
        trace.inspection?.noteBatch(size: events.count)
        var seen = Set<String>()
        var repeated = 0
        let outcomes = await withTaskGroup(of: EventOutcome.self) { group in
            var outcomes: [EventOutcome] = []
            var running = 0
            for var event in events {
                // The same element twice in one batch: the second is a duplicate of the first,
                // not a second reservation that would find the first in progress (409).
                guard seen.insert(event.id).inserted else {
                    repeated += 1
                    continue
                }
                trace.stamp(&event)
                var logger = logger
                logger.eventID = event.id
                // At most `batchConcurrency` elements in flight: a batch of thousands must not
                // become thousands of reservations, produces and spool writes at once.
                if running == Self.batchConcurrency, let outcome = await group.next() {
                    outcomes.append(outcome)
                    running -= 1
                }
                running += 1
                group.addTask(executorPreference: executor) {
                    await self.take(
                        event, request, singleUseToken: nil, source: source, on: executor, trace: trace, logger: logger)
                }
            }
            for await outcome in group { outcomes.append(outcome) }
            return outcomes
        }
        var refusals: [BridgeAnswer] = []
        var counts = (accepted: 0, queued: 0, duplicates: repeated, filtered: 0)
        for outcome in outcomes {
            switch outcome {
            case .accepted: counts.accepted += 1
            case .queued: counts.queued += 1
            case .duplicate: counts.duplicates += 1
            case .filtered: counts.filtered += 1
            case .answered(let answer): refusals.append(answer)
            }
        }
        if let refusal = refusals.first(where: { $0.status == .serviceUnavailable }) ?? refusals.first {
            trace.note(outcome: "batch_refused")
            return refusal
        }
        let status = counts.queued > 0 ? "queued" : "accepted"
        trace.note(outcome: status)
        if let custom = source.config.respond?.answer(outcome: status, id: "", defaultStatus: counts.queued > 0 ? 202 : 200) {
            return BridgeAnswer(status: HTTPResponseStatus(statusCode: custom.status), headers: custom.headers, body: custom.body)
        }
        var body: [UInt8] = []
        JSONWriter.append(
            .object([
                ("status", .string(status)), ("events", .number(String(events.count))),
                ("accepted", .number(String(counts.accepted + counts.queued))),
                ("duplicates", .number(String(counts.duplicates))), ("filtered", .number(String(counts.filtered))),
            ]), to: &body)
        return BridgeAnswer(status: counts.queued > 0 ? .accepted : .ok, body: body)
    }

    /// The answer to a taken event: the source's `respond` when it has one for the outcome,
    /// else `{"id": ID, "status": OUTCOME}` (SPEC sections 5 and 10).
    private func answer(_ outcome: EventOutcome, id: String, source: ConfiguredSource) -> BridgeAnswer {
        let status: HTTPResponseStatus = if case .queued = outcome { .accepted } else { .ok }
        if let custom = source.config.respond?.answer(outcome: outcome.name, id: id, defaultStatus: Int(status.code)) {
            return BridgeAnswer(status: HTTPResponseStatus(statusCode: custom.status), headers: custom.headers, body: custom.body)
        }
        return .event(status, id: id, outcome.name)
    }

    /// The event a verified request becomes (SPEC section 7): the provider's id (else the
    /// body's hash), its type (else `webhook`), the body as it came, and of the request only
    /// what the sinks' templates read.
    static func event(
        _ verified: VerifiedWebhook, _ request: WebhookRequest, source: ConfiguredSource, id: String? = nil
    ) -> WebhookEvent {
        // Parsed at most once: by the scheme for its id or type, or here for the templates;
        // a scheme's scan also tells whether the body is JSON (the file sink asks).
        let bodyJSON = source.needsBodyJSON ? request.bodyJSON : request.json.valueIfParsed
        let headers = request.headers
        let templateHeaders = source.templateHeaders.compactMap { name in headers.first(name: name).map { (name, $0) } }
        return WebhookEvent(
            id: id ?? EventID.usable(verified.id) ?? bodyHashID(request.body), source: source.name,
            type: verified.type ?? "webhook",
            time: request.receivedAt, dataContentType: headers.first(name: "Content-Type"), scheme: source.scheme.name,
            keyIndex: verified.keyIndex, data: request.body, requestHeaders: TemplateHeaders(templateHeaders),
            bodyJSON: bodyJSON, bodyIsJSON: request.json.isJSON)
    }
}
