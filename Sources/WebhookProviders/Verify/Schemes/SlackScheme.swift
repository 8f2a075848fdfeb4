import WebhookEncoding
import WebhookCore

/// Slack: `X-Slack-Signature: v0=<hex HMAC-SHA256 of "v0:<ts>:<body>">` with
/// `X-Slack-Request-Timestamp`, refused more than the tolerance away in either direction (as
/// Slack's SDK does). Id: body `event_id`, else the body hash; type: `event.type`, else `type`.
/// A `url_verification` request is answered with its `challenge` and not forwarded.
public struct SlackScheme: WebhookScheme {
    public let name = "slack"
    public var signatureHeaders: [String] { ["X-Slack-Signature"] }
    let keyring: HMACKeyring
    let tolerance: Int

    public init(secrets: [String], toleranceSeconds: Int) {
        self.keyring = HMACKeyring(secrets: secrets)
        self.tolerance = toleranceSeconds
    }

    public func verify(_ request: WebhookRequest) throws(VerificationFailure) -> VerifiedWebhook {
        let index = try verifyV0Signature(
            request, signatureHeader: "X-Slack-Signature", timestampHeader: "X-Slack-Request-Timestamp", keyring: keyring,
            tolerance: tolerance)

        let json = request.bodyJSON
        if json?["type"]?.scalarText == "url_verification" {
            // Without a challenge there is nothing to echo: answered 400, never forwarded.
            guard let challenge = json?["challenge"]?.scalarText else {
                return VerifiedWebhook(id: nil, type: "url_verification", keyIndex: index, handshake: .invalid("challenge"))
            }
            return VerifiedWebhook(
                id: nil, type: "url_verification", keyIndex: index,
                handshake: HandshakeAnswer(body: JSONWriter.object(["challenge": challenge])))
        }
        let type = json?["event"]?["type"]?.scalarText ?? json?["type"]?.scalarText
        return VerifiedWebhook(id: json?["event_id"]?.scalarText, type: type, keyIndex: index)
    }
}

extension Provider {
    static let slack = Provider(
        name: "slack",
        signature: "X-Slack-Signature: v0= hex HMAC-SHA256 of v0:ts:body, X-Slack-Request-Timestamp within tolerance",
        handshake: "signed POST url_verification: 200 {\"challenge\": …}", id: "body event_id, else hash",
        type: "body event.type, else type",
        make: { config in config.secrets.map { SlackScheme(secrets: $0, toleranceSeconds: config.tolerance) } },
        signHeaders: { request in
            [
                ("X-Slack-Request-Timestamp", request.timestamp),
                ("X-Slack-Signature", "v0=" + Hex.encode(request.mac(prefix: "v0:\(request.timestamp):"))),
            ]
        })
}
