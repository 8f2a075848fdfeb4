import WebhookEncoding
import WebhookCore

/// Slack: `X-Slack-Signature: v0=<hex HMAC-SHA256 of "v0:<ts>:<body>">` with
/// `X-Slack-Request-Timestamp`, refused more than the tolerance away in either direction (as
/// Slack's SDK does). Id: body `event_id`, else the body hash; type: `event.type`, else `type`.
/// A `url_verification` request is answered with its `challenge` and not forwarded.
public struct SlackScheme: WebhookScheme {
    public let name = "slack"
    let events: RecipeScheme

    public func unverifiedIdentity(_ request: WebhookRequest) -> (id: String?, type: String?)? {
        events.unverifiedIdentity(request)
    }

    static let recipe = Recipe(
        "X-Slack-Signature", prefix: "v0=", timestampHeader: "X-Slack-Request-Timestamp", signing: .v0,
        id: .pointer("/event_id"), type: FieldSource([.pointer("/event/type"), .pointer("/type")]))

    public init(secrets: [String], toleranceSeconds: Int) {
        self.events = RecipeScheme(name: "slack", recipe: Self.recipe, secrets: secrets, toleranceSeconds: toleranceSeconds)
    }

    public var signatureHeaders: [String] { events.signatureHeaders }

    public func verify(_ request: WebhookRequest) throws(VerificationFailure) -> VerifiedWebhook {
        let verified = try events.verify(request)
        guard request.bodyJSON?["type"]?.scalarText == "url_verification" else { return verified }
        // Without a challenge there is nothing to echo: answered 400, never forwarded.
        guard let challenge = request.bodyJSON?["challenge"]?.scalarText else {
            return VerifiedWebhook(
                id: nil, type: "url_verification", keyIndex: verified.keyIndex, handshake: .invalid("challenge"))
        }
        return VerifiedWebhook(
            id: nil, type: "url_verification", keyIndex: verified.keyIndex,
            handshake: HandshakeAnswer(body: JSONWriter.object(["challenge": challenge])))
    }
}

extension Provider {
    static let slack = Provider(
        name: "slack", signature: SlackScheme.recipe.signatureSummary,
        handshake: "signed POST url_verification: 200 {\"challenge\": …}", id: "body event_id, else hash",
        type: "body event.type, else type",
        make: { config in config.secrets.map { SlackScheme(secrets: $0, toleranceSeconds: config.tolerance) } },
        signHeaders: { request in SlackScheme.recipe.sign(request) })
}
