import WebhookEncoding
import WebhookCore

/// Paddle Billing: `Paddle-Signature: ts=<unix>;h1=<hex HMAC-SHA256 of "<ts>:<body>">`, any
/// number of `h1` entries (rotation); a timestamp outside the tolerance is refused either way.
/// Id: body `event_id`; type: body `event_type`.
public struct PaddleScheme: WebhookScheme {
    public let name = "paddle"
    public var signatureHeaders: [String] { ["Paddle-Signature"] }
    let keyring: HMACKeyring
    let tolerance: Int

    private static let idAndType = ["event_id", "event_type"]

    public init(secrets: [String], toleranceSeconds: Int) {
        self.keyring = HMACKeyring(secrets: secrets)
        self.tolerance = toleranceSeconds
    }

    public func verify(_ request: WebhookRequest) throws(VerificationFailure) -> VerifiedWebhook {
        let index = try verifyTimestampedHeader(
            request, header: "Paddle-Signature", itemSeparator: ";", timestampKey: "ts", signatureKey: "h1",
            contentSeparator: ":",
            keyring: keyring, tolerance: tolerance)
        let texts = request.topLevelTexts(Self.idAndType)
        return VerifiedWebhook(id: texts[0], type: texts[1], keyIndex: index)
    }
}

extension Provider {
    static let paddle = Provider(
        name: "paddle", signature: "Paddle-Signature: ts=T;h1=S: hex HMAC-SHA256 of T:body", id: "body event_id",
        type: "body event_type",
        make: { config in config.secrets.map { PaddleScheme(secrets: $0, toleranceSeconds: config.tolerance) } },
        signHeaders: { request in
            [("Paddle-Signature", "ts=\(request.timestamp);h1=\(Hex.encode(request.mac(prefix: "\(request.timestamp):")))")]
        })
}
