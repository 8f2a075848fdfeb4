import WebhookEncoding
import WebhookCore

/// Xero: `x-xero-signature: <base64 HMAC-SHA256 of the body>` keyed with the webhook key.
/// Id: the body hash (a batch of events is one event); type: `xero.events`.
///
/// Handshake: "intent to receive" (Xero's webhooks docs): Xero sends correctly and wrongly
/// signed requests whose `events` is empty; a correct one is answered 200 with no body and
/// not forwarded, a wrong one 401 as always.
public struct XeroScheme: WebhookScheme {
    public let name = "xero"
    let events: RecipeScheme

    public func unverifiedIdentity(_ request: WebhookRequest) -> (id: String?, type: String?)? {
        events.unverifiedIdentity(request)
    }

    public init(secrets: [String]) {
        self.events = RecipeScheme(
            name: "xero", recipe: Recipe("x-xero-signature", .hmac(.sha256, .base64)), secrets: secrets, toleranceSeconds: 0)
    }

    public var signatureHeaders: [String] { events.signatureHeaders }

    public func verify(_ request: WebhookRequest) throws(VerificationFailure) -> VerifiedWebhook {
        var verified = try events.verify(request)
        verified.type = "xero.events"
        if case .array(let items)? = request.bodyJSON?["events"], items.isEmpty {
            verified.handshake = .empty
        }
        return verified
    }
}

extension Provider {
    static let xero = Provider(
        name: "xero", signature: "x-xero-signature: base64 HMAC-SHA256 of the body",
        handshake: "intent to receive: a signed POST whose events is empty: 200, not forwarded", id: "hash",
        type: "xero.events",
        make: { config in config.secrets.map { XeroScheme(secrets: $0) } },
        signHeaders: { request in [("x-xero-signature", Base64.encode(request.mac()))] })
}
