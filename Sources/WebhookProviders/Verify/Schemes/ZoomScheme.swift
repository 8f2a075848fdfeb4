import WebhookEncoding
import WebhookCore

/// Zoom: `x-zm-signature: v0=<hex HMAC-SHA256 of "v0:<ts>:<body>">` with
/// `x-zm-request-timestamp`; the id is the body hash, the type the body's `event`. An
/// `endpoint.url_validation` request is answered with `plainToken` and `encryptedToken` (the
/// hex HMAC-SHA256 of the plain token with the matching secret) and not forwarded.
public struct ZoomScheme: WebhookScheme {
    public let name = "zoom"
    public var signatureHeaders: [String] { ["x-zm-signature"] }
    let keyring: HMACKeyring
    let tolerance: Int

    public init(secrets: [String], toleranceSeconds: Int) {
        self.keyring = HMACKeyring(secrets: secrets)
        self.tolerance = toleranceSeconds
    }

    public func verify(_ request: WebhookRequest) throws(VerificationFailure) -> VerifiedWebhook {
        let index = try verifyV0Signature(
            request, signatureHeader: "x-zm-signature", timestampHeader: "x-zm-request-timestamp", keyring: keyring,
            tolerance: tolerance)

        let json = request.bodyJSON
        let event = json?["event"]?.scalarText
        if event == "endpoint.url_validation" {
            guard let plainToken = json?["payload"]?["plainToken"]?.scalarText else {
                return VerifiedWebhook(id: nil, type: event, keyIndex: index, handshake: .invalid("payload.plainToken"))
            }
            let encrypted = Hex.encode(keyring.mac(.sha256, [.text(plainToken)], keyIndex: index))
            return VerifiedWebhook(
                id: nil, type: event, keyIndex: index,
                handshake: HandshakeAnswer(body: JSONWriter.object(["plainToken": plainToken, "encryptedToken": encrypted])))
        }
        return VerifiedWebhook(id: nil, type: event, keyIndex: index)
    }
}

extension Provider {
    static let zoom = Provider(
        name: "zoom", signature: "x-zm-signature: v0= hex HMAC-SHA256 of v0:ts:body, x-zm-request-timestamp within tolerance",
        handshake: "signed POST endpoint.url_validation: 200 {\"plainToken\", \"encryptedToken\"}", id: "hash",
        type: "body event",
        make: { config in config.secrets.map { ZoomScheme(secrets: $0, toleranceSeconds: config.tolerance) } },
        signHeaders: { request in
            [
                ("x-zm-request-timestamp", request.timestamp),
                ("x-zm-signature", "v0=" + Hex.encode(request.mac(prefix: "v0:\(request.timestamp):"))),
            ]
        })
}
