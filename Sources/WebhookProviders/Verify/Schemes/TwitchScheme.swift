import WebhookEncoding
import WebhookCore

/// Twitch EventSub: `Twitch-Eventsub-Message-Signature: sha256=<hex HMAC-SHA256 of
/// Message-Id + Message-Timestamp + body>` with the `Twitch-Eventsub-` headers; the timestamp
/// (RFC 3339) within the tolerance (default 600 s, as Twitch's docs advise). Id:
/// `Twitch-Eventsub-Message-Id`; type: `Twitch-Eventsub-Subscription-Type`, or `revocation`
/// for a revocation message.
///
/// Handshake: a signed POST with `Twitch-Eventsub-Message-Type: webhook_callback_verification`
/// is answered 200 `text/plain` with the body's `challenge` (Twitch docs, "Handling webhook
/// events": responding to a challenge request).
public struct TwitchScheme: WebhookScheme {
    public let name = "twitch"
    static let signatureHeader = "Twitch-Eventsub-Message-Signature"
    let keyring: HMACKeyring
    let tolerance: Int

    public init(secrets: [String], toleranceSeconds: Int) {
        self.keyring = HMACKeyring(secrets: secrets)
        self.tolerance = toleranceSeconds
    }

    public var signatureHeaders: [String] { [Self.signatureHeader] }

    public func verify(_ request: WebhookRequest) throws(VerificationFailure) -> VerifiedWebhook {
        let headers = request.headers
        guard let header = headers.first(name: Self.signatureHeader) else { throw .missing("\(Self.signatureHeader) is missing") }
        guard let id = headers.first(name: "Twitch-Eventsub-Message-Id") else {
            throw .missing("Twitch-Eventsub-Message-Id is missing")
        }
        guard let timestamp = headers.first(name: "Twitch-Eventsub-Message-Timestamp") else {
            throw .missing("Twitch-Eventsub-Message-Timestamp is missing")
        }
        guard header.hasPrefix("sha256="), let signature = Hex.decode(header.dropFirst(7)) else {
            throw .invalid("\(Self.signatureHeader) is not sha256=<hex>")
        }
        guard let index = keyring.firstMatch(.sha256, [.text(id + timestamp), .bytes(request.body)], candidates: [signature])
        else { throw .invalid("\(Self.signatureHeader) matches none of \(keyring.keys.count) secrets") }
        guard let sent = Timestamp(rfc3339: timestamp) else {
            throw .invalid("Twitch-Eventsub-Message-Timestamp is not an RFC 3339 time")
        }
        try checkAge(
            of: sent.secondsSince1970, field: "Twitch-Eventsub-Message-Timestamp", tolerance: tolerance, now: request.receivedAt)

        switch headers.first(name: "Twitch-Eventsub-Message-Type") {
        case "webhook_callback_verification":
            guard let challenge = request.bodyJSON?["challenge"]?.scalarText else {
                return VerifiedWebhook(
                    id: id, type: "webhook_callback_verification", keyIndex: index, handshake: .invalid("challenge"))
            }
            return VerifiedWebhook(id: id, type: "webhook_callback_verification", keyIndex: index, handshake: .text(challenge))
        case "revocation":
            return VerifiedWebhook(id: id, type: "revocation", keyIndex: index)
        default:
            return VerifiedWebhook(id: id, type: headers.first(name: "Twitch-Eventsub-Subscription-Type"), keyIndex: index)
        }
    }
}

extension Provider {
    static let twitch = Provider(
        name: "twitch",
        signature:
            "Twitch-Eventsub-Message-Signature: sha256= hex HMAC-SHA256 of Message-Id + Message-Timestamp + body; timestamp (RFC 3339) within tolerance (default 600 s)",
        handshake: "signed POST with Message-Type webhook_callback_verification: 200 text/plain challenge",
        id: "Twitch-Eventsub-Message-Id", type: "Twitch-Eventsub-Subscription-Type (revocation: revocation)",
        defaultTolerance: 600,
        make: { config in config.secrets.map { TwitchScheme(secrets: $0, toleranceSeconds: config.tolerance) } },
        signHeaders: { request in
            let timestamp = Timestamp(millisecondsSince1970: request.input.timestamp * 1000).rfc3339
            return [
                ("Twitch-Eventsub-Message-Id", request.id), ("Twitch-Eventsub-Message-Timestamp", timestamp),
                ("Twitch-Eventsub-Message-Type", "notification"),
                ("Twitch-Eventsub-Message-Signature", "sha256=" + Hex.encode(request.mac(prefix: request.id + timestamp))),
                // Sent with every message (Twitch's EventSub docs); not read by the bridge.
                ("Twitch-Eventsub-Message-Retry", "0"), ("Twitch-Eventsub-Subscription-Version", "1"),
            ] + request.typed("Twitch-Eventsub-Subscription-Type")
        })
}
