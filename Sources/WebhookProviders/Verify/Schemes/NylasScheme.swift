import NIOHTTP1
import WebhookCore

/// Nylas (API v3): `X-Nylas-Signature: <hex HMAC-SHA256 of the body>` keyed with the
/// destination's `webhook_secret`. Id body `id`, type `type` (`message.created`).
///
/// Handshake: creating the destination makes Nylas `GET ?challenge=C`, answered 200
/// `text/plain` with C (Nylas docs: respond within 10 s with the exact challenge).
public struct NylasScheme: WebhookScheme {
    public let name = "nylas"
    let events: RecipeScheme

    init(events: RecipeScheme) { self.events = events }

    public func unverifiedIdentity(_ request: WebhookRequest) -> (id: String?, type: String?)? {
        events.unverifiedIdentity(request)
    }

    public var signatureHeaders: [String] { events.signatureHeaders }
    public var handshakeMethods: [HTTPMethod] { [.GET] }

    public func answerHandshake(_ request: HandshakeRequest) -> HandshakeAnswer { .echoingChallenge(request) }

    public func verify(_ request: WebhookRequest) throws(VerificationFailure) -> VerifiedWebhook {
        try events.verify(request)
    }
}

extension Provider {
    static let nylas: Provider = {
        let events = Recipe("X-Nylas-Signature", id: .pointer("/id"), type: .pointer("/type"))
        var provider = recipe("nylas", events)
        let make = provider.make
        provider = Provider(
            name: provider.name, signature: provider.signature,
            handshake: "GET ?challenge=C: 200 text/plain C, X-Content-Type-Options: nosniff", id: provider.id,
            type: provider.type, keys: provider.keys,
            make: { config in (make(config) as? RecipeScheme).map(NylasScheme.init(events:)) },
            sign: provider.signer)
        provider.recipe = events
        return provider.rehearsing(DropboxScheme.rehearsal)
    }()
}
