import WebhookEncoding
import WebhookCrypto
import WebhookCore
/// Square: `x-square-hmacsha256-signature: <base64 HMAC-SHA256 of notification URL + body>`,
/// keyed with the subscription's signature key. The notification URL is `verify.publicUrl`
/// (the URL Square calls) or, without it, the URL rebuilt from the request. Id: body
/// `event_id`; type: body `type`.
public struct SquareScheme: WebhookScheme {
    public let name = "square"
    public var signatureHeaders: [String] { ["x-square-hmacsha256-signature"] }
    let keyring: HMACKeyring
    let publicURL: PublicURL

    private static let idAndType = ["event_id", "type"]

    public init(secrets: [String], publicURL: PublicURL) {
        self.keyring = HMACKeyring(secrets: secrets)
        self.publicURL = publicURL
    }

    public func verify(_ request: WebhookRequest) throws(VerificationFailure) -> VerifiedWebhook {
        guard let header = request.headers.first(name: "x-square-hmacsha256-signature") else {
            throw .missing("x-square-hmacsha256-signature is missing")
        }
        guard let signature = Base64.decode(header) else { throw .invalid("x-square-hmacsha256-signature is not base64") }
        let url = publicURL.url(for: request)
        guard let index = keyring.firstMatch(.sha256, [.text(url), .bytes(request.body)], candidates: [signature]) else {
            throw .invalid("x-square-hmacsha256-signature does not match \(keyring.tried) for \(url)")
        }
        let texts = request.topLevelTexts(Self.idAndType)
        return VerifiedWebhook(id: texts[0], type: texts[1], keyIndex: index)
    }
}

extension Provider {
    static let square = Provider(
        name: "square", signature: "x-square-hmacsha256-signature: base64 HMAC-SHA256 of the notification URL + body",
        id: "body event_id", type: "body type", keys: ["publicUrl"],
        make: { config in config.withPublicURL { SquareScheme(secrets: $0, publicURL: $1) } },
        signHeaders: { request throws(WebhookSigner.Failure) in
            guard let url = request.input.url else {
                throw WebhookSigner.Failure("--url: square signs the notification URL; give it")
            }
            return [("x-square-hmacsha256-signature", Base64.encode(request.mac(prefix: url)))]
        })
}
