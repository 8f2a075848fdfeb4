import Synchronization
import WebhookEncoding
import WebhookCore

/// Asana: the secret is not configured but learned. Creating a webhook makes Asana POST to
/// the target with `X-Hook-Secret: <secret>`; the receiver answers 200 with the same header
/// and from then on checks `X-Hook-Signature: <hex HMAC-SHA256 of the body>` with that secret
/// (Asana's API docs, "Webhooks": the handshake and security).
///
/// The learned secret is kept for good in the bridge's ``LearnedSecretStore`` (the `redis`
/// idempotency store when configured, shared by replicas; else a file beside the spool)
/// before the handshake is answered, so a restart or another replica verifies the events.
/// A handshake is accepted only while the source allows it: until
/// `verify.acceptHandshakeUntil` (RFC 3339) and while fewer than `verify.acceptHandshakes`
/// secrets are held (default 1 when neither is set: the first handshake only; 16 with
/// `acceptHandshakeUntil` alone); a secret
/// already held is echoed again whenever (Asana retries a handshake it did not see
/// answered). `secrets` (optional) are tried before the learned ones.
///
/// Asana's heartbeat (a signed POST whose `events` is empty) is answered 200 and not
/// forwarded. Id: the body hash (a batch of events is one event); type:
/// `events[0].resource.resource_type` + `.` + `events[0].action` (`task.changed`).
public final class AsanaScheme: WebhookScheme {
    public let name = "asana"
    static let signatureHeader = "X-Hook-Signature"
    static let secretHeader = "X-Hook-Secret"
    let configured: [String]
    /// `configured` prepared, for ``verify(_:)`` without the bridge's store.
    let configuredKeyring: HMACKeyring
    let acceptUntil: Timestamp?
    let acceptCount: Int
    /// How many secrets `acceptHandshakeUntil` alone lets in: each is one more HMAC for
    /// every request that matches none.
    static let untilLimit = 16
    /// The learned secrets and their keyring (nil until first read from the store).
    private let keys = Mutex<(learned: [String], keyring: HMACKeyring)?>(nil)

    public init(secrets: [String], acceptUntil: Timestamp?, acceptCount: Int?) {
        self.configured = secrets
        self.configuredKeyring = HMACKeyring(secrets: secrets)
        self.acceptUntil = acceptUntil
        self.acceptCount = acceptCount ?? (acceptUntil == nil ? 1 : Self.untilLimit)
    }

    public var signatureHeaders: [String] { [Self.signatureHeader, Self.secretHeader] }
    public var learnsSecrets: Bool { true }

    /// Without the bridge's store: the configured `secrets` only (a handshake can't be kept).
    public func verify(_ request: WebhookRequest) throws(VerificationFailure) -> VerifiedWebhook {
        guard !request.headers.contains(name: Self.secretHeader) else {
            throw .unavailable("an asana handshake needs the bridge's store of learned secrets")
        }
        let signature = try Self.signature(request)
        guard let index = configuredKeyring.firstMatch(.sha256, [.bytes(request.body)], candidates: [signature]) else {
            throw .invalid("\(Self.signatureHeader) matches none of \(configured.count) configured secrets")
        }
        return Self.event(request, keyIndex: index)
    }

    static func signature(_ request: WebhookRequest) throws(VerificationFailure) -> [UInt8] {
        guard let header = request.headers.first(name: signatureHeader), !header.isEmpty else {
            throw .missing("\(signatureHeader) is missing")
        }
        guard let signature = Hex.decode(header.trimmingSpaces) else { throw .invalid("\(signatureHeader) is not hex") }
        return signature
    }

    /// A verified request's event: a heartbeat (no events) is answered and not forwarded.
    static func event(_ request: WebhookRequest, keyIndex index: Int) -> VerifiedWebhook {
        guard case .array(let events)? = request.bodyJSON?["events"] else {
            return VerifiedWebhook(id: nil, type: "asana", keyIndex: index)
        }
        guard let first = events.first else {
            return VerifiedWebhook(id: nil, type: "heartbeat", keyIndex: index, handshake: .empty)
        }
        let resource = first["resource"]?["resource_type"]?.scalarText
        let action = first["action"]?.scalarText
        let type = [resource, action].compactMap { $0 }.joined(separator: ".")
        return VerifiedWebhook(id: nil, type: type.isEmpty ? "asana" : type, keyIndex: index)
    }

    public func verify(_ request: WebhookRequest, services: VerificationServices) async throws(VerificationFailure)
        -> VerifiedWebhook
    {
        // Without a store (`webhook-bridge verify` on a capture): the configured secrets only.
        guard let store = services.learnedSecrets else { return try verify(request) }
        if let offered = request.headers.first(name: Self.secretHeader) {
            return try await handshake(offered, at: request.receivedAt, store: store, source: services.source)
        }
        let signature = try Self.signature(request)
        let parts: [SignedPart] = [.bytes(request.body)]
        // The configured secrets first: they need no store, so an event signed with one is
        // taken even while the store can't be read.
        if let index = configuredKeyring.firstMatch(.sha256, parts, candidates: [signature]) {
            return Self.event(request, keyIndex: index)
        }
        var learned = try await learnedKeyring(store: store, source: services.source, reload: false)
        var index = learned.keyring.firstMatch(.sha256, parts, candidates: [signature])
        if index == nil {
            // Learned by another replica since this one read the store? Matched again only
            // when the store holds something other than the secrets just tried: a forged
            // signature costs one read, not a second HMAC per secret. Compared with what this
            // request tried, not with what is cached: another request's reload may have
            // cached the new secret while this one waited for its read.
            let tried = learned.secrets
            learned = try await learnedKeyring(store: store, source: services.source, reload: true)
            if learned.secrets != tried { index = learned.keyring.firstMatch(.sha256, parts, candidates: [signature]) }
        }
        guard let index else {
            throw .invalid(
                "\(Self.signatureHeader) matches none of \(configured.count + learned.keyring.keys.count) secrets (configured and learned)"
            )
        }
        return Self.event(request, keyIndex: configured.count + index)
    }

    /// Echoes `offered` once it is kept; refused outside the source's window unless held.
    private func handshake(_ offered: String, at now: Timestamp, store: any LearnedSecretStore, source: String)
        async throws(VerificationFailure) -> VerifiedWebhook
    {
        let secret = String(offered.trimmingSpaces)
        guard (1...512).contains(secret.utf8.count), secret.utf8.allSatisfy({ (0x21...0x7E).contains($0) }) else {
            throw .invalid("\(Self.secretHeader) is not 1 to 512 visible ASCII characters")
        }
        let open = acceptUntil.map { now.secondsSince1970 <= $0.secondsSince1970 } ?? true
        let outcome: LearnOutcome
        do {
            outcome = try await store.learn(secret, for: source, limit: open ? acceptCount : 0)
        } catch {
            throw .unavailable("cannot keep the learned secret (\(store.location)): \(error)")
        }
        guard outcome != .full else {
            let why =
                open
                ? "\(acceptCount) secret(s) are held (verify.acceptHandshakes)" : "verify.acceptHandshakeUntil has passed"
            throw .invalid("a handshake (\(Self.secretHeader)) outside the source's window: \(why)")
        }
        if outcome == .learned { _ = try? await learnedKeyring(store: store, source: source, reload: true) }
        var verified = VerifiedWebhook(
            id: nil, type: "handshake", keyIndex: 0,
            handshake: HandshakeAnswer(body: [], contentType: nil, headers: [(Self.secretHeader, secret)]))
        verified.followUp = .learnedSecret(outcome: outcome, location: store.location)
        return verified
    }

    /// The learned secrets and their keyring (whose indexes follow the configured secrets'),
    /// read from the store the first time and with `reload`.
    private func learnedKeyring(store: any LearnedSecretStore, source: String, reload: Bool)
        async throws(VerificationFailure) -> (secrets: [String], keyring: HMACKeyring)
    {
        if !reload, let held = keys.withLock({ $0 }) { return (held.learned, held.keyring) }
        let learned: [String]
        do {
            learned = try await store.secrets(for: source)
        } catch {
            throw .unavailable("cannot read the learned secrets (\(store.location)): \(error)")
        }
        // The keys are only prepared again when what the store holds changed.
        return keys.withLock { held in
            if let held, held.learned == learned { return (learned, held.keyring) }
            let keyring = HMACKeyring(secrets: learned)
            held = (learned, keyring)
            return (learned, keyring)
        }
    }
}

extension Provider {
    static let asana = Provider(
        name: "asana",
        signature:
            "X-Hook-Signature: hex HMAC-SHA256 of the body, keyed with the secret learned in the handshake (kept in the redis idempotency store, else beside the spool) or one of secrets",
        handshake:
            "POST with X-Hook-Secret, while verify.acceptHandshakeUntil / verify.acceptHandshakes (default: the first only) allow: the secret kept, then 200 echoing X-Hook-Secret; heartbeat (events empty): 200, not forwarded",
        id: "hash", type: "events[0] resource.resource_type + . + action",
        keys: ["acceptHandshakeUntil", "acceptHandshakes"],
        make: { config in
            var ok = true
            var until: Timestamp?
            if let text = config.reader.string("acceptHandshakeUntil") {
                until = Timestamp(rfc3339: text)
                if until == nil {
                    config.log.add(
                        config.reader.childPath("acceptHandshakeUntil"), "is not an RFC 3339 time (2026-12-31T00:00:00Z)")
                    ok = false
                }
            }
            let count = config.reader.integer("acceptHandshakes", in: 0...100)
            if config.reader.has("acceptHandshakes"), count == nil { ok = false }
            guard ok, let secrets = config.secrets else { return nil }
            return AsanaScheme(secrets: secrets, acceptUntil: until, acceptCount: count)
        },
        signHeaders: { request in [(AsanaScheme.signatureHeader, Hex.encode(request.mac()))] }
    )
    .withOptionalSecrets()
}
