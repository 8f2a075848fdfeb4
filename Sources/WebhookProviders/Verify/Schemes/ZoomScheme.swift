import WebhookEncoding
import WebhookCore

/// Zoom: `x-zm-signature: v0=<hex HMAC-SHA256 of "v0:<ts>:<body>">` with
/// `x-zm-request-timestamp`; the id is the body hash, the type the body's `event`. An
/// `endpoint.url_validation` request is answered with `plainToken` and `encryptedToken` (the
/// hex HMAC-SHA256 of the plain token with the matching secret) and not forwarded.
public struct ZoomScheme: WebhookScheme {
    public let name = "zoom"
    let events: RecipeScheme

    public func unverifiedIdentity(_ request: WebhookRequest) -> (id: String?, type: String?)? {
        events.unverifiedIdentity(request)
    }

    static let recipe = Recipe(
        "x-zm-signature", prefix: "v0=", timestampHeader: "x-zm-request-timestamp", signing: .v0, type: .pointer("/event"))

    public init(secrets: [String], toleranceSeconds: Int) {
        self.events = RecipeScheme(name: "zoom", recipe: Self.recipe, secrets: secrets, toleranceSeconds: toleranceSeconds)
    }

    public var signatureHeaders: [String] { events.signatureHeaders }

    public func verify(_ request: WebhookRequest) throws(VerificationFailure) -> VerifiedWebhook {
        let index = try events.verify(request).keyIndex
        let keyring = events.keyring

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
        name: "zoom", signature: ZoomScheme.recipe.signatureSummary,
        handshake: "signed POST endpoint.url_validation: 200 {\"plainToken\", \"encryptedToken\"}", id: "hash",
        type: "body event",
        make: { config in config.secrets.map { ZoomScheme(secrets: $0, toleranceSeconds: config.tolerance) } },
        signHeaders: { request in ZoomScheme.recipe.sign(request) })
}
