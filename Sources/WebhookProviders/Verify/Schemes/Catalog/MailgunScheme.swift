import WebhookEncoding
import WebhookCrypto
import NIOCore
import WebhookCore

/// Mailgun: the signature is in the body: `signature.signature` = hex HMAC-SHA256 of
/// `signature.timestamp + signature.token` keyed with the webhook signing key (JSON), or the
/// form fields `signature`, `timestamp` and `token` (legacy webhooks); the timestamp within
/// the tolerance. Id: body `event-data.id`; type: body `event-data.event` (form: `event`).
struct MailgunScheme: WebhookScheme {
    let name = "mailgun"
    let keyring: HMACKeyring
    let tolerance: Int

    /// A timestamp is accepted from `tolerance` before it to `tolerance` after it: a token
    /// first seen at the start of that window can be replayed until its end.
    var singleUseTokenLifetime: Int? { 2 * tolerance }

    func verify(_ request: WebhookRequest) throws(VerificationFailure) -> VerifiedWebhook {
        var timestamp: String?
        var token: String?
        var signature: String?
        var id: String?
        var type: String?
        if let json = request.bodyJSON, case .object = json {
            let block = json["signature"]
            timestamp = block?["timestamp"]?.scalarText
            token = block?["token"]?.scalarText
            signature = block?["signature"]?.scalarText
            id = json.value(atPointer: "/event-data/id")?.scalarText
            type = json.value(atPointer: "/event-data/event")?.scalarText
        } else {
            let fields = FormParameters.parse(request.body.readableBytesView)
            func field(_ name: String) -> String? { fields.first { $0.0 == name }?.1 }
            timestamp = field("timestamp")
            token = field("token")
            signature = field("signature")
            type = field("event")
        }
        guard let signature else { throw .missing("the body has no signature") }
        guard let timestamp, let token else { throw .missing("the body's signature has no timestamp or token") }
        guard let mac = Hex.decode(signature) else { throw .invalid("the body's signature is not hex") }
        guard let index = keyring.firstMatch(.sha256, [.text(timestamp + token)], candidates: [mac]) else {
            throw .invalid("the body's signature does not match \(keyring.tried)")
        }
        _ = try checkTimestamp(timestamp, header: "signature.timestamp", tolerance: tolerance, now: request.receivedAt)
        // Only timestamp and token are signed, not the event: the token may be used once
        // (Mailgun's own advice), so a captured signature can't carry another body. The
        // pipeline claims it in the idempotency store, shared by replicas and kept across
        // reloads, as the digest of the token (a bounded key whatever the body holds).
        var verified = VerifiedWebhook(id: id, type: type, keyIndex: index)
        verified.singleUseToken = "mailgun:" + Hex.encode(HashAlgorithm.sha256.hash(token))
        return verified
    }
}

extension Provider {
    static let mailgun = Provider(
        name: "mailgun",
        signature:
            "in the body: signature.signature = hex HMAC-SHA256 of signature.timestamp + signature.token (JSON, or the form fields signature, timestamp, token); timestamp within tolerance",
        id: "body event-data.id", type: "body event-data.event",
        make: { config in config.secrets.map { MailgunScheme(keyring: HMACKeyring(secrets: $0), tolerance: config.tolerance) } },
        sign: { request in
            // The signature goes into the body: a JSON object gets its "signature" block, a
            // form body the timestamp, token and signature fields.
            let token = Hex.encode(Array(WebhookSigner.randomID().utf8.suffix(24)))
            let mac = Hex.encode(
                HMACAlgorithm.sha256.mac(
                    key: Array(request.secret.utf8), parts: [.text(request.timestamp + token)]))
            let signature: JSONValue = .object([
                ("timestamp", .string(request.timestamp)), ("token", .string(token)), ("signature", .string(mac)),
            ])
            var body: [UInt8] = []
            if case .object(var members)? = try? JSONParser.parse(request.body) {
                members.removeAll { $0.0 == "signature" }
                members.insert(("signature", signature), at: 0)
                JSONWriter.append(.object(members), to: &body)
            } else {
                body = request.body
                if !body.isEmpty { body.append(UInt8(ascii: "&")) }
                body += Array("timestamp=\(request.timestamp)&token=\(token)&signature=\(mac)".utf8)
            }
            return WebhookSigner.Output(headers: [], body: body)
        })
}
