import WebhookEncoding
import NIOHTTP1
import WebhookCore

/// Trello: `X-Trello-Webhook: <base64 HMAC-SHA1 of body + callback URL>` keyed with the
/// application secret; the callback URL is `verify.publicUrl` (as for `twilio`). Id: body
/// `action.id`; type: body `action.type`.
///
/// Handshake: Trello checks the callback URL with a `HEAD`, answered 200 (Trello's webhooks
/// guide: "Creating a webhook").
public struct TrelloScheme: WebhookScheme {
    public let name = "trello"
    let keyring: HMACKeyring
    let publicURL: PublicURL

    public init(secrets: [String], publicURL: PublicURL) {
        self.keyring = HMACKeyring(secrets: secrets)
        self.publicURL = publicURL
    }

    public var signatureHeaders: [String] { ["X-Trello-Webhook"] }
    public var handshakeMethods: [HTTPMethod] { [.HEAD] }

    public func answerHandshake(_ request: HandshakeRequest) -> HandshakeAnswer { .empty }

    public func verify(_ request: WebhookRequest) throws(VerificationFailure) -> VerifiedWebhook {
        guard let header = request.headers.first(name: "X-Trello-Webhook") else { throw .missing("X-Trello-Webhook is missing") }
        guard let signature = Base64.decode(header) else { throw .invalid("X-Trello-Webhook is not base64") }
        let url = publicURL.url(for: request)
        guard let index = keyring.firstMatch(.sha1, [.bytes(request.body), .text(url)], candidates: [signature]) else {
            throw .invalid("X-Trello-Webhook matches none of \(keyring.keys.count) secrets for \(url)")
        }
        let action = request.bodyJSON?["action"]
        return VerifiedWebhook(id: action?["id"]?.scalarText, type: action?["type"]?.scalarText, keyIndex: index)
    }
}

extension Provider {
    static let trello = Provider(
        name: "trello", signature: "X-Trello-Webhook: base64 HMAC-SHA1 of body + publicUrl", handshake: "HEAD: 200",
        id: "body action.id", type: "body action.type", keys: ["publicUrl"],
        make: { config in config.withPublicURL { TrelloScheme(secrets: $0, publicURL: $1) } },
        signHeaders: { request throws(WebhookSigner.Failure) in
            guard let url = request.input.url else {
                throw WebhookSigner.Failure("--url: trello signs the callback URL; give it")
            }
            return [("X-Trello-Webhook", Base64.encode(request.mac(.sha1, suffix: url)))]
        })
}
