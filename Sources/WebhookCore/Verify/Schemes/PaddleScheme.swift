/// Paddle Billing: `Paddle-Signature: ts=<unix>;h1=<hex HMAC-SHA256 of "<ts>:<body>">`, any
/// number of `h1` entries (rotation); as in Paddle's SDKs only a stale timestamp is refused.
/// Id: body `event_id`; type: body `event_type`.
public struct PaddleScheme: WebhookScheme {
    public let name = "paddle"
    let keyring: HMACKeyring
    let tolerance: Int

    public init(secrets: [String], toleranceSeconds: Int) {
        self.keyring = HMACKeyring(secrets: secrets)
        self.tolerance = toleranceSeconds
    }

    public func verify(_ request: WebhookRequest) throws(VerificationFailure) -> VerifiedWebhook {
        guard let header = request.headers.first(name: "Paddle-Signature") else { throw .missing("Paddle-Signature is missing") }
        var timestamp: String?
        var signatures: [[UInt8]] = []
        for item in header.split(separator: ";") {
            let pair = item.split(separator: "=", maxSplits: 1)
            guard pair.count == 2 else { continue }
            switch pair[0].trimmingCharacters {
            case "ts": timestamp = timestamp ?? String(pair[1])
            case "h1": if signatures.count < maximumSignatureCandidates, let mac = Hex.decode(pair[1]) { signatures.append(mac) }
            default: continue
            }
        }
        guard let timestamp, Int64(timestamp) != nil, !signatures.isEmpty else {
            throw .invalid("Paddle-Signature has no ts= timestamp or no h1= signature")
        }
        guard let index = keyring.firstMatch(.sha256, [.text("\(timestamp):"), .bytes(request.body)], candidates: signatures)
        else {
            throw .invalid("Paddle-Signature matches no secret")
        }
        try checkTimestamp(
            timestamp, header: "Paddle-Signature ts", tolerance: tolerance, now: request.receivedAt, direction: .pastOnly)
        let json = request.bodyJSON
        return VerifiedWebhook(id: json?["event_id"]?.scalarText, type: json?["event_type"]?.scalarText, keyIndex: index)
    }
}
