import WebhookEncoding
import WebhookCore

/// Stripe: `Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>…]`, each `v1` an HMAC-SHA256 of
/// `"<t>.<body>"` keyed with the whole `whsec_…` string. A timestamp outside the tolerance
/// is refused either way (SPEC section 4; Stripe's SDKs check only staleness). Id and type
/// come from the body.
public struct StripeScheme: WebhookScheme {
    public let name = "stripe"
    public var signatureHeaders: [String] { ["Stripe-Signature"] }
    let keyring: HMACKeyring
    let tolerance: Int

    private static let idAndType = ["id", "type"]

    public init(secrets: [String], toleranceSeconds: Int) {
        self.keyring = HMACKeyring(secrets: secrets)
        self.tolerance = toleranceSeconds
    }

    public func verify(_ request: WebhookRequest) throws(VerificationFailure) -> VerifiedWebhook {
        let index = try verifyTimestampedHeader(
            request, header: "Stripe-Signature", itemSeparator: ",", timestampKey: "t", signatureKey: "v1", contentSeparator: ".",
            keyring: keyring, tolerance: tolerance)
        let texts = request.topLevelTexts(Self.idAndType)
        return VerifiedWebhook(id: texts[0], type: texts[1], keyIndex: index)
    }
}

extension Provider {
    static let stripe = Provider(
        name: "stripe", signature: "Stripe-Signature: t=T,v1=S: hex HMAC-SHA256 of T.body, keyed with the whole whsec_ string",
        id: "body id", type: "body type",
        make: { config in config.secrets.map { StripeScheme(secrets: $0, toleranceSeconds: config.tolerance) } },
        signHeaders: { request in
            [("Stripe-Signature", "t=\(request.timestamp),v1=\(Hex.encode(request.mac(prefix: "\(request.timestamp).")))")]
        }
    )
    .checkingSecrets { secret in
        secret.hasPrefix("whsec_") && secret.dropFirst(6).allSatisfy(\.isWhitespace)
            ? "is only the prefix whsec_: the key after it is empty (is its variable set?)" : nil
    }
}
