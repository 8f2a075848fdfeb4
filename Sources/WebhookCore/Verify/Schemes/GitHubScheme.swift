import Crypto

/// GitHub: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>`; id from
/// `X-GitHub-Delivery`, type from `X-GitHub-Event`.
public struct GitHubScheme: WebhookScheme {
    public let name = "github"
    let keys: [SymmetricKey]

    public init(secrets: [String]) {
        self.keys = secrets.map { SymmetricKey(data: Array($0.utf8)) }
    }

    public func verify(_ request: WebhookRequest) throws(VerificationFailure) -> VerifiedWebhook {
        guard let header = request.headers.first(name: "X-Hub-Signature-256") else {
            throw .missing("X-Hub-Signature-256 is missing")
        }
        guard header.hasPrefix("sha256="), let signature = Hex.decode(header.dropFirst(7)) else {
            throw .invalid("X-Hub-Signature-256 is not sha256=<hex>")
        }
        for (index, key) in keys.enumerated()
        where constantTimeEquals(HMACAlgorithm.sha256.mac(key: key, parts: [.bytes(request.body)]), signature) {
            return VerifiedWebhook(
                id: request.headers.first(name: "X-GitHub-Delivery"),
                type: request.headers.first(name: "X-GitHub-Event"),
                keyIndex: index)
        }
        throw .invalid("X-Hub-Signature-256 matches no secret")
    }
}
