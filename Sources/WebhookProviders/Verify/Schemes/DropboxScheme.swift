import WebhookEncoding
import NIOHTTP1
import WebhookCore

/// Dropbox: `X-Dropbox-Signature: <hex HMAC-SHA256 of the body>` keyed with the app secret;
/// the id is the body hash, the type `list_folder` (Dropbox's only notification).
///
/// Handshake: `GET ?challenge=C` is answered 200 `text/plain` with
/// `X-Content-Type-Options: nosniff` and the body C (Dropbox's webhooks guide: "Verification
/// request").
public struct DropboxScheme: WebhookScheme {
    public let name = "dropbox"
    let events: RecipeScheme

    public func unverifiedIdentity(_ request: WebhookRequest) -> (id: String?, type: String?)? {
        events.unverifiedIdentity(request)
    }

    public init(secrets: [String]) {
        self.events = RecipeScheme(name: "dropbox", recipe: Recipe("X-Dropbox-Signature"), secrets: secrets, toleranceSeconds: 0)
    }

    public var signatureHeaders: [String] { events.signatureHeaders }
    public var handshakeMethods: [HTTPMethod] { [.GET] }

    public func answerHandshake(_ request: HandshakeRequest) -> HandshakeAnswer { .echoingChallenge(request) }

    public func verify(_ request: WebhookRequest) throws(VerificationFailure) -> VerifiedWebhook {
        var verified = try events.verify(request)
        verified.type = "list_folder"
        return verified
    }
}

extension Provider {
    static let dropbox = Provider(
        name: "dropbox", signature: "X-Dropbox-Signature: hex HMAC-SHA256 of the body, keyed with the app secret",
        handshake: "GET ?challenge=C: 200 text/plain C, X-Content-Type-Options: nosniff", id: "hash", type: "list_folder",
        make: { config in config.secrets.map { DropboxScheme(secrets: $0) } },
        signHeaders: { request in [("X-Dropbox-Signature", Hex.encode(request.mac()))] }
    )
    .rehearsing(DropboxScheme.rehearsal)
}

extension HandshakeAnswer {
    /// `GET ?challenge=C` answered 200 `text/plain` C (Dropbox, Nylas); 400 without C.
    static func echoingChallenge(_ request: HandshakeRequest) -> HandshakeAnswer {
        guard let challenge = request.query("challenge") else { return .invalid("challenge") }
        return .text(challenge)
    }
}

extension DropboxScheme {
    /// Dropbox's verification GET (`--secret` is not used).
    static func rehearsal(url: String, secret: String) -> HandshakeRehearsal {
        let challenge = HandshakeRehearsal.challenge()
        let expect = HandshakeRehearsal.expecting(Array(challenge.utf8), contentType: "text/plain")
        return HandshakeRehearsal(method: .GET, url: HandshakeRehearsal.adding([("challenge", challenge)], to: url)) {
            status, headers, body in
            if let problem = expect(status, headers, body) { return problem }
            return headers.first(name: "X-Content-Type-Options") == "nosniff" ? nil : "X-Content-Type-Options: nosniff is missing"
        }
    }
}
