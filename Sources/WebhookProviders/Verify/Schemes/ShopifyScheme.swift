import WebhookEncoding
import WebhookCore

/// Shopify: `X-Shopify-Hmac-Sha256: <base64 HMAC-SHA256 of the body>`; id from
/// `X-Shopify-Webhook-Id`, type from `X-Shopify-Topic`.
public struct ShopifyScheme: WebhookScheme {
    public let name = "shopify"
    public var signatureHeaders: [String] { ["X-Shopify-Hmac-Sha256"] }
    let keyring: HMACKeyring

    public init(secrets: [String]) { self.keyring = HMACKeyring(secrets: secrets) }

    public func verify(_ request: WebhookRequest) throws(VerificationFailure) -> VerifiedWebhook {
        guard let header = request.headers.first(name: "X-Shopify-Hmac-Sha256") else {
            throw .missing("X-Shopify-Hmac-Sha256 is missing")
        }
        guard let signature = Base64.decode(header) else { throw .invalid("X-Shopify-Hmac-Sha256 is not base64") }
        guard let index = keyring.firstMatch(.sha256, [.bytes(request.body)], candidates: [signature]) else {
            throw .invalid("X-Shopify-Hmac-Sha256 does not match \(keyring.tried)")
        }
        return VerifiedWebhook(
            id: request.headers.first(name: "X-Shopify-Webhook-Id"), type: request.headers.first(name: "X-Shopify-Topic"),
            keyIndex: index)
    }
}

extension Provider {
    static let shopify = Provider(
        name: "shopify", signature: "X-Shopify-Hmac-Sha256: base64 HMAC-SHA256 of the body", id: "X-Shopify-Webhook-Id",
        type: "X-Shopify-Topic",
        make: { config in config.secrets.map { ShopifyScheme(secrets: $0) } },
        signHeaders: { request in
            [("X-Shopify-Hmac-Sha256", Base64.encode(request.mac())), ("X-Shopify-Webhook-Id", request.id)]
                + request.typed("X-Shopify-Topic")
        })
}
