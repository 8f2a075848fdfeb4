/// Slack: `X-Slack-Signature: v0=<hex HMAC-SHA256 of "v0:<ts>:<body>">` with
/// `X-Slack-Request-Timestamp`, refused more than the tolerance away in either direction (as
/// Slack's SDK does). Id: body `event_id`, else the body hash; type: `event.type`, else `type`.
/// A `url_verification` request is answered with its `challenge` and not forwarded.
public struct SlackScheme: WebhookScheme {
    public let name = "slack"
    let keyring: HMACKeyring
    let tolerance: Int

    public init(secrets: [String], toleranceSeconds: Int) {
        self.keyring = HMACKeyring(secrets: secrets)
        self.tolerance = toleranceSeconds
    }

    public func verify(_ request: WebhookRequest) throws(VerificationFailure) -> VerifiedWebhook {
        guard let header = request.headers.first(name: "X-Slack-Signature") else {
            throw .missing("X-Slack-Signature is missing")
        }
        guard let timestamp = request.headers.first(name: "X-Slack-Request-Timestamp") else {
            throw .missing("X-Slack-Request-Timestamp is missing")
        }
        guard header.hasPrefix("v0="), let signature = Hex.decode(header.dropFirst(3)) else {
            throw .invalid("X-Slack-Signature is not v0=<hex>")
        }
        guard Int64(timestamp) != nil else { throw .invalid("X-Slack-Request-Timestamp is not a UNIX timestamp") }
        guard let index = keyring.firstMatch(.sha256, [.text("v0:\(timestamp):"), .bytes(request.body)], candidates: [signature])
        else { throw .invalid("X-Slack-Signature matches no secret") }
        try checkTimestamp(timestamp, header: "X-Slack-Request-Timestamp", tolerance: tolerance, now: request.receivedAt)

        let json = request.bodyJSON
        if json?["type"]?.scalarText == "url_verification", let challenge = json?["challenge"]?.scalarText {
            return VerifiedWebhook(
                id: nil, type: "url_verification", keyIndex: index,
                handshake: HandshakeAnswer(body: JSONWriter.object(["challenge": challenge])))
        }
        let type = json?["event"]?["type"]?.scalarText ?? json?["type"]?.scalarText
        return VerifiedWebhook(id: json?["event_id"]?.scalarText, type: type, keyIndex: index)
    }
}
