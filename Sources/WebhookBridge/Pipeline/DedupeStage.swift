import Logging
import NIOHTTP1
import WebhookCore

/// Deduplication: the event's id is reserved in the idempotency store (SPEC section 6); a
/// duplicate is answered 200 `duplicate`, one being processed 409. For a provider that signs
/// a token instead of the event (Mailgun), the token is claimed beside the id, committed or
/// released with it, so a captured signature can't carry another event, across reloads and
/// replicas, while a retry of a failed delivery can still use it.
struct DedupeStage: Sendable {
    enum Outcome {
        case reserved(Reservation)
        /// Already accepted: answered `duplicate` (or counted, in a batch).
        case duplicate
        case answered(BridgeAnswer)
    }

    let store: any IdempotencyStore
    let log: PipelineLog

    func run(
        _ event: WebhookEvent, singleUseToken: String?, source: ConfiguredSource, headers: HTTPHeaders, client: String?,
        trace: RequestTrace, logger: RequestLogger
    ) async -> Outcome {
        let key = IdempotencyKey(source: event.source, id: event.id)
        let outcome: ReservationOutcome
        let span = trace.child("webhook.idempotency")
        do {
            outcome = try await store.reserve(key)
        } catch {
            span?.fail("\(error)")
            span?.end()
            log.failure(
                "idempotency", level: .error, "idempotency store failed", metadata: ["webhook.error": "\(error)"], logger: logger)
            source.metrics.idempotency["failed"].increment()
            return .answered(.unavailable)
        }
        let outcomeName: String
        switch outcome {
        case .reserved: outcomeName = "new"
        case .duplicate: outcomeName = "duplicate"
        case .inProgress: outcomeName = "in_progress"
        }
        source.metrics.idempotency[outcomeName].increment()
        span?.set("webhook.idempotency", .string(outcomeName))
        span?.end()
        switch outcome {
        case .reserved: break
        case .duplicate:
            return .duplicate
        case .inProgress:
            trace.note(outcome: "in_progress")
            return .answered(.inProgress)
        }
        guard let token = singleUseToken else { return .reserved(Reservation(store: store, key: key, tokenKey: nil)) }
        // A control character can't be in an event id (``EventID``): no id collides.
        let claim = IdempotencyKey(source: event.source, id: "\u{1F}" + token)
        let claimed: ReservationOutcome
        do {
            claimed = try await store.reserve(claim)
        } catch {
            await store.release(key)
            source.metrics.idempotency["failed"].increment()
            return .answered(.unavailable)
        }
        switch claimed {
        case .reserved:
            return .reserved(Reservation(store: store, key: key, tokenKey: claim))
        case .duplicate:
            await store.release(key)
            source.admission.noteFailure(client: client)
            log.rejection(
                source: source.name, headers: headers, reason: "signature_invalid",
                detail: "the signature's token was already used")
            trace.note(outcome: "token_reused")
            return .answered(.error(.unauthorized, "signature_invalid", headers: source.scheme.unauthorizedHeaders))
        case .inProgress:
            await store.release(key)
            trace.note(outcome: "in_progress")
            return .answered(.inProgress)
        }
    }
}

/// An event's reservation (and its single-use token's): committed once the event is
/// durable, released when it is not, so the provider's retry is accepted.
struct Reservation: Sendable {
    let store: any IdempotencyStore
    let key: IdempotencyKey
    /// Optional rather than an array of keys: no allocation for the providers without one.
    let tokenKey: IdempotencyKey?

    func commit(logger: RequestLogger) async {
        await commit(key, logger: logger)
        // Committed on its own: a failed commit of the id must not leave the token reserved.
        if let tokenKey { await commit(tokenKey, logger: logger) }
    }

    func release() async {
        await store.release(key)
        if let tokenKey { await store.release(tokenKey) }
    }

    private func commit(_ key: IdempotencyKey, logger: RequestLogger) async {
        do {
            try await store.commit(key)
        } catch {
            // The event is durable; a lost commit only means a retry may be delivered again.
            logger.warning("idempotency commit failed", metadata: ["webhook.error": "\(error)"])
        }
    }
}
