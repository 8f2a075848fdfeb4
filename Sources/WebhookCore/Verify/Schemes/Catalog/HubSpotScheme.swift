import Synchronization
import Crypto
/// HubSpot (signature v3): `X-HubSpot-Signature-v3: <base64 HMAC-SHA256 of method + URL +
/// body + X-HubSpot-Request-Timestamp>` keyed with the app's client secret; the timestamp is
/// in milliseconds and must be within the tolerance. The URL is the one HubSpot called, with
/// its query: `verify.publicUrl` (as for `twilio`), percent-escapes of `:/?@!$'()*,;`
/// decoded as HubSpot's SDKs do. Id: the body hash (a batch is one event); type: body
/// `[0].subscriptionType`.
struct HubSpotScheme: WebhookScheme {
    let name = "hubspot"
    let keyring: HMACKeyring
    let publicURL: PublicURL
    let tolerance: Int

    var signatureHeaders: [String] { ["X-HubSpot-Signature-v3"] }

    func verify(_ request: WebhookRequest) throws(VerificationFailure) -> VerifiedWebhook {
        guard let header = request.headers.first(name: "X-HubSpot-Signature-v3") else {
            throw .missing("X-HubSpot-Signature-v3 is missing")
        }
        guard let timestamp = request.headers.first(name: "X-HubSpot-Request-Timestamp") else {
            throw .missing("X-HubSpot-Request-Timestamp is missing")
        }
        guard let milliseconds = Int64(timestamp) else { throw .invalid("X-HubSpot-Request-Timestamp is not a number") }
        guard let signature = Base64.decode(header) else { throw .invalid("X-HubSpot-Signature-v3 is not base64") }
        let url = Self.decoded(publicURL.url(for: request))
        guard let index = keyring.firstMatch(.sha256, [.text("POST" + url), .bytes(request.body), .text(timestamp)], candidates: [signature])
        else { throw .invalid("X-HubSpot-Signature-v3 does not match \(keyring.tried) for \(url)") }
        try checkAge(
            of: milliseconds / 1000, field: "X-HubSpot-Request-Timestamp", tolerance: tolerance, now: request.receivedAt)
        return VerifiedWebhook(
            id: nil, type: request.bodyJSON?.value(atPointer: "/0/subscriptionType")?.scalarText, keyIndex: index)
    }

    /// The URL as HubSpot signs it: these escapes decoded.
    static func decoded(_ url: String) -> String {
        var text = url
        for (escape, character) in [
            ("%3A", ":"), ("%2F", "/"), ("%3F", "?"), ("%40", "@"), ("%21", "!"), ("%24", "$"), ("%27", "'"), ("%28", "("),
            ("%29", ")"), ("%2A", "*"), ("%2C", ","), ("%3B", ";"),
        ] {
            text = text.replacing(escape, with: character).replacing(escape.lowercased(), with: character)
        }
        return text
    }
}

extension Provider {
    static let hubspot = Provider(
        name: "hubspot",
        signature:
            "X-HubSpot-Signature-v3: base64 HMAC-SHA256 of method + publicUrl (with query) + body + X-HubSpot-Request-Timestamp (ms, within tolerance)",
        id: "hash", type: "body [0].subscriptionType", keys: ["publicUrl"],
        make: { config in config.withPublicURL { HubSpotScheme(keyring: HMACKeyring(secrets: $0), publicURL: $1, tolerance: config.tolerance) } },
        signHeaders: { request throws(WebhookSigner.Failure) in
            guard let url = request.input.url else { throw WebhookSigner.Failure("--url: hubspot signs the URL it calls; give it") }
            let milliseconds = String(request.input.timestamp * 1000)
            let mac = request.mac(prefix: "POST" + HubSpotScheme.decoded(url), suffix: milliseconds)
            return [("X-HubSpot-Signature-v3", Base64.encode(mac)), ("X-HubSpot-Request-Timestamp", milliseconds)]
        })
}

/// Mailgun: the signature is in the body: `signature.signature` = hex HMAC-SHA256 of
/// `signature.timestamp + signature.token` keyed with the webhook signing key (JSON), or the
/// form fields `signature`, `timestamp` and `token` (legacy webhooks); the timestamp within
/// the tolerance. Id: body `event-data.id`; type: body `event-data.event` (form: `event`).
struct MailgunScheme: WebhookScheme {
    let name = "mailgun"
    let keyring: HMACKeyring
    let tolerance: Int
    /// Only timestamp and token are signed, not the event: a token seen within the tolerance
    /// is refused again (Mailgun's own advice), so a captured signature can't carry other data.
    let seen = SeenTokens()

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
        let seconds = try checkTimestamp(timestamp, header: "signature.timestamp", tolerance: tolerance, now: request.receivedAt)
        guard seen.insert(token, until: seconds + Int64(tolerance), now: request.receivedAt.secondsSince1970) else {
            throw .invalid("the body's signature token was already used")
        }
        return VerifiedWebhook(id: id, type: type, keyIndex: index)
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
            let mac = Hex.encode(HMACAlgorithm.sha256.mac(
                key: SymmetricKey(data: Array(request.secret.utf8)), parts: [.text(request.timestamp + token)]))
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

/// Tokens seen, each until its expiry (at most ``limit``; the soonest to expire go first).
final class SeenTokens: Sendable {
    static let limit = 100_000
    private let tokens = Mutex<[String: Int64]>([:])

    /// False when `token` was seen and has not expired.
    func insert(_ token: String, until expiry: Int64, now: Int64) -> Bool {
        tokens.withLock { tokens in
            if let seenUntil = tokens[token], seenUntil >= now { return false }
            if tokens.count >= Self.limit {
                tokens = tokens.filter { $0.value >= now }
                if tokens.count >= Self.limit, let soonest = tokens.min(by: { $0.value < $1.value }) {
                    tokens[soonest.key] = nil
                }
            }
            tokens[token] = expiry
            return true
        }
    }
}
