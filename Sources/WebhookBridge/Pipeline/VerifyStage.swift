import Logging
import Synchronization
import WebhookCore
import WebhookProviders

/// The first stage of a complete request: a handshake answered unsigned (Microsoft Graph's
/// `validationToken`, WooCommerce's ping), else the scheme's verification, the verified
/// request's token of the source's rate limit, and a signed handshake's answer (Slack, Zoom,
/// Discord, SNS). A request that fails spends its client's own budget and is answered 401.
struct VerifyStage: Sendable {
    enum Outcome {
        case verified(VerifiedWebhook)
        /// Answered here: a handshake, a refusal, or 503 when verification can't be done now.
        case answered(BridgeAnswer)
    }

    /// What schemes may use while verifying (the SNS certificate fetcher).
    let services: VerificationServices
    let confirmer: SubscriptionConfirmer
    let log: PipelineLog

    func run(
        _ source: ConfiguredSource, _ request: WebhookRequest, trace: RequestTrace, logger: RequestLogger
    ) async -> Outcome {
        if let handshake = source.scheme.unsignedHandshake(request) {
            source.admission.noteFailure(client: request.client)  // unsigned: the client's own bucket
            log.handshake(source: source.name, headers: request.headers, metadata: ["http.status": "\(handshake.status)"])
            trace.note(outcome: "handshake")
            return .answered(BridgeAnswer(handshake))
        }

        let verified: VerifiedWebhook
        let verifySpan = trace.child("webhook.verify")
        verifySpan?.set("webhook.scheme", .string(source.scheme.name))
        do {
            verified = try await source.scheme.verify(
                request, services: source.scheme.learnsSecrets ? services.for(source.name) : services)
            trace.noteVerification(verifySpan, result: "ok", keyIndex: verified.keyIndex)
        } catch {
            trace.noteVerification(verifySpan, result: error.code, keyIndex: nil, detail: error.detail)
            source.metrics.verifications[.init(result: error.code, keyIndex: nil)].increment()
            if error.isUnavailable {
                // Nothing wrong with the request: the provider retries it after a 503.
                log.failure(
                    "\(source.name) verify", level: .warning, "cannot verify now",
                    metadata: ["webhook.detail": "\(error.detail)"],
                    logger: logger)
                return .answered(.unavailable)
            }
            source.admission.noteFailure(client: request.client)
            log.rejection(source: source.name, headers: request.headers, reason: error.code, detail: error.detail)
            return .answered(.error(.unauthorized, error.code, headers: source.scheme.unauthorizedHeaders))
        }
        // The secret's index as a dimension: when the old secret's count stops growing, the
        // provider has switched to the new one and the old can be removed.
        source.metrics.verifications[.init(result: "ok", keyIndex: verified.keyIndex)].increment()
        if let limited = source.admission.takeVerified() {
            trace.note(outcome: "rate_limited")
            return .answered(limited)
        }
        if let handshake = verified.handshake {
            if let followUp = verified.followUp { confirmer.followUp(followUp, logger: logger) }
            trace.note(outcome: "handshake")
            return .answered(BridgeAnswer(handshake))
        }
        return .verified(verified)
    }
}

/// After an SNS subscription handshake: logs its SubscribeURL (an operator confirms it by
/// opening it), or confirms it now (`verify.autoConfirm`), in the background.
final class SubscriptionConfirmer: Sendable {
    private let fetcher: (any CertificateFetcher)?
    /// SubscribeURLs already opened (bounded): a confirmation replayed (its token lasts
    /// days) is not followed again.
    private let confirmed = Mutex<Set<String>>([])

    init(fetcher: (any CertificateFetcher)?) { self.fetcher = fetcher }

    func followUp(_ followUp: HandshakeFollowUp, logger: RequestLogger) {
        switch followUp {
        case .learnedSecret(let outcome, let location):
            // Never the secret itself.
            logger.warning(
                outcome == .learned
                    ? "learned a webhook secret in a handshake; later events are verified with it"
                    : "a handshake repeated a secret already learned",
                metadata: ["webhook.secret_store": "\(location)"])
        case .subscription(let url, let topic, let confirm, let caFile):
            logger.warning(
                "sns subscription message: open the SubscribeURL to confirm, unless autoConfirm does",
                metadata: ["sns.subscribe_url": "\(url)", "sns.topic": "\(topic)", "sns.auto_confirm": "\(confirm)"])
            guard confirm, let fetcher else { return }
            let first = confirmed.withLock { confirmed -> Bool in
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
}
