import WebhookEncoding
import NIOHTTP1
import WebhookCore

/// WooCommerce: `X-WC-Webhook-Signature: <base64 HMAC-SHA256 of the body>` keyed with the
/// webhook's secret. Id: `X-WC-Webhook-Delivery-ID`; type: `X-WC-Webhook-Topic`.
///
/// Handshake: when a webhook is saved WooCommerce sends an unsigned POST whose form body is
/// only `webhook_id=N` (its "ping"); it is answered 200 and not forwarded. Because of it an
/// unsigned request can't be refused from its head: it is refused (401) once its body shows
/// it is not the ping.
public struct WooCommerceScheme: WebhookScheme {
    public let name = "woocommerce"
    let events: RecipeScheme

    public func unverifiedIdentity(_ request: WebhookRequest) -> (id: String?, type: String?)? {
        events.unverifiedIdentity(request)
    }

    public init(secrets: [String]) {
        let recipe = Recipe(
            "X-WC-Webhook-Signature", .hmac(.sha256, .base64), id: .header("X-WC-Webhook-Delivery-ID"),
            type: .header("X-WC-Webhook-Topic"))
        self.events = RecipeScheme(name: "woocommerce", recipe: recipe, secrets: secrets, toleranceSeconds: 0)
    }

    /// Unsigned and longer than the ping can be (or chunked): refused before its body is read.
    public func refusalFromHead(uri: String, headers: HTTPHeaders) -> VerificationFailure? {
        guard !headers.contains(name: "X-WC-Webhook-Signature") else { return nil }
        let length = headers.first(name: "Content-Length").flatMap(Int.init)
        guard length == nil || length! > 64 || headers.contains(name: "Transfer-Encoding") else { return nil }
        return .missing("X-WC-Webhook-Signature is missing")
    }

    public func unsignedHandshake(_ request: WebhookRequest) -> HandshakeAnswer? {
        guard !request.headers.contains(name: "X-WC-Webhook-Signature"), request.body.readableBytes <= 64 else { return nil }
        let fields = FormParameters.parse(request.body.readableBytesView)
        guard fields.count == 1, fields[0].0 == "webhook_id", !fields[0].1.isEmpty, fields[0].1.allSatisfy(\.isNumber) else {
            return nil
        }
        return .empty
    }

    public func verify(_ request: WebhookRequest) throws(VerificationFailure) -> VerifiedWebhook {
        try events.verify(request)
    }
}

extension Provider {
    static let woocommerce = Provider(
        name: "woocommerce", signature: "X-WC-Webhook-Signature: base64 HMAC-SHA256 of the body",
        handshake: "unsigned POST with the form body webhook_id=N: 200, not forwarded", id: "X-WC-Webhook-Delivery-ID",
        type: "X-WC-Webhook-Topic",
        make: { config in config.secrets.map { WooCommerceScheme(secrets: $0) } },
        signHeaders: { request in
            [("X-WC-Webhook-Signature", Base64.encode(request.mac())), ("X-WC-Webhook-Delivery-ID", request.id)]
                + request.typed("X-WC-Webhook-Topic")
        })
}
