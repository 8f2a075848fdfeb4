/// Zoom: `x-zm-signature: v0=<hex HMAC-SHA256 of "v0:<ts>:<body>">` with
/// `x-zm-request-timestamp`; the id is the body hash, the type the body's `event`. An
/// `endpoint.url_validation` request is answered with `plainToken` and `encryptedToken` (the
/// hex HMAC-SHA256 of the plain token with the matching secret) and not forwarded.
public struct ZoomScheme: WebhookScheme {
    public let name = "zoom"
    let keyring: HMACKeyring
    let tolerance: Int

    public init(secrets: [String], toleranceSeconds: Int) {
        self.keyring = HMACKeyring(secrets: secrets)
        self.tolerance = toleranceSeconds
    }

    public func verify(_ request: WebhookRequest) throws(VerificationFailure) -> VerifiedWebhook {
        guard let header = request.headers.first(name: "x-zm-signature") else { throw .missing("x-zm-signature is missing") }
        guard let timestamp = request.headers.first(name: "x-zm-request-timestamp") else {
            throw .missing("x-zm-request-timestamp is missing")
        }
        guard header.hasPrefix("v0="), let signature = Hex.decode(header.dropFirst(3)) else {
            throw .invalid("x-zm-signature is not v0=<hex>")
        }
        guard Int64(timestamp) != nil else { throw .invalid("x-zm-request-timestamp is not a UNIX timestamp") }
        guard let index = keyring.firstMatch(.sha256, [.text("v0:\(timestamp):"), .bytes(request.body)], candidates: [signature])
        else { throw .invalid("x-zm-signature matches no secret") }
        try checkTimestamp(timestamp, header: "x-zm-request-timestamp", tolerance: tolerance, now: request.receivedAt)

        let json = request.bodyJSON
        let event = json?["event"]?.scalarText
        if event == "endpoint.url_validation", let plainToken = json?["payload"]?["plainToken"]?.scalarText {
            let encrypted = Hex.encode(keyring.mac(.sha256, [.text(plainToken)], keyIndex: index))
            return VerifiedWebhook(
                id: nil, type: event, keyIndex: index,
                handshake: HandshakeAnswer(body: JSONWriter.object(["plainToken": plainToken, "encryptedToken": encrypted])))
        }
        return VerifiedWebhook(id: nil, type: event, keyIndex: index)
    }
}
