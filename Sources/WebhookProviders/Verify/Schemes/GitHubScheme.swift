import WebhookEncoding
import WebhookCore

/// GitHub: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>`; id from
/// `X-GitHub-Delivery`, type from `X-GitHub-Event`.
public struct GitHubScheme: WebhookScheme {
    public let name = "github"
    public var signatureHeaders: [String] { ["X-Hub-Signature-256"] }
    let keyring: HMACKeyring

    public init(secrets: [String]) { self.keyring = HMACKeyring(secrets: secrets) }

    public func verify(_ request: WebhookRequest) throws(VerificationFailure) -> VerifiedWebhook {
        guard let header = request.headers.first(name: "X-Hub-Signature-256") else {
            throw .missing("X-Hub-Signature-256 is missing")
        }
        guard header.hasPrefix("sha256="), let signature = Hex.decode(header.dropFirst(7)) else {
            throw .invalid("X-Hub-Signature-256 is not sha256=<hex>")
        }
        guard let index = keyring.firstMatch(.sha256, [.bytes(request.body)], candidates: [signature]) else {
            throw .invalid("X-Hub-Signature-256 does not match \(keyring.tried)")
        }
        return VerifiedWebhook(
            id: request.headers.first(name: "X-GitHub-Delivery"), type: request.headers.first(name: "X-GitHub-Event"),
            keyIndex: index)
    }
}

extension Provider {
    static let github = Provider(
        name: "github", signature: "X-Hub-Signature-256: sha256= hex HMAC-SHA256 of the body", id: "X-GitHub-Delivery",
        type: "X-GitHub-Event",
        make: { config in config.secrets.map { GitHubScheme(secrets: $0) } },
        signHeaders: { request in
            [("X-Hub-Signature-256", "sha256=" + Hex.encode(request.mac())), ("X-GitHub-Delivery", request.id)]
                + request.typed("X-GitHub-Event")
        })
}
