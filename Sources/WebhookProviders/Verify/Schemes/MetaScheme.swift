import WebhookEncoding
import NIOHTTP1
import WebhookCore

/// Meta (Facebook, Instagram, WhatsApp Business, Messenger): events carry
/// `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>` keyed with the app secret;
/// the id is the body hash (a batch is one event), the type the body's `object`.
///
/// Handshake: `GET ?hub.mode=subscribe&hub.verify_token=V&hub.challenge=C` is answered 200
/// `text/plain` C when V equals `verify.verifyToken`, else 403 (Meta's Graph API docs,
/// "Getting Started with Webhooks": verification requests).
public struct MetaScheme: WebhookScheme {
    public let name = "meta"
    let events: RecipeScheme

    public func unverifiedIdentity(_ request: WebhookRequest) -> (id: String?, type: String?)? {
        events.unverifiedIdentity(request)
    }
    let verifyToken: SecretTokens

    public init(secrets: [String], verifyToken: String) {
        self.events = RecipeScheme(
            name: "meta", recipe: Recipe("X-Hub-Signature-256", prefix: "sha256=", type: .pointer("/object")), secrets: secrets,
            toleranceSeconds: 0)
        self.verifyToken = SecretTokens([verifyToken])
    }

    public var signatureHeaders: [String] { events.signatureHeaders }
    public var handshakeMethods: [HTTPMethod] { [.GET] }

    public func answerHandshake(_ request: HandshakeRequest) -> HandshakeAnswer {
        guard request.query("hub.mode") == "subscribe", let challenge = request.query("hub.challenge") else {
            return .invalid("hub.mode=subscribe and hub.challenge")
        }
        guard let token = request.query("hub.verify_token"), verifyToken.index(of: token) != nil else {
            return HandshakeAnswer(status: 403, body: JSONWriter.object(["error": "forbidden"]))
        }
        return .text(challenge)
    }

    public func verify(_ request: WebhookRequest) throws(VerificationFailure) -> VerifiedWebhook {
        try events.verify(request)
    }
}

extension Provider {
    static let meta = Provider(
        name: "meta", signature: "X-Hub-Signature-256: sha256= hex HMAC-SHA256 of the body, keyed with the app secret",
        handshake:
            "GET ?hub.mode=subscribe&hub.verify_token=V&hub.challenge=C: 200 text/plain C when V is verify.verifyToken, else 403",
        id: "hash", type: "body object", keys: ["verifyToken"],
        make: { config in
            let token = config.reader.credential("verifyToken")
            if token == nil, !config.reader.has("verifyToken") {
                config.log.add(
                    config.reader.childPath("verifyToken"), "required for scheme meta (the token Meta's GET must present)")
            }
            guard let secrets = config.secrets, let token else { return nil }
            return MetaScheme(secrets: secrets, verifyToken: token)
        },
        signHeaders: { request in [("X-Hub-Signature-256", "sha256=" + Hex.encode(request.mac()))] }
    )
    .rehearsing(MetaScheme.rehearsal)
}

extension MetaScheme {
    /// Meta's verification GET, with `--secret` as the verify token.
    static func rehearsal(url: String, secret: String) -> HandshakeRehearsal {
        let challenge = HandshakeRehearsal.challenge()
        let target = HandshakeRehearsal.adding(
            [("hub.mode", "subscribe"), ("hub.verify_token", secret), ("hub.challenge", challenge)], to: url)
        return HandshakeRehearsal(method: .GET, url: target, check: HandshakeRehearsal.expecting(Array(challenge.utf8)))
    }
}
