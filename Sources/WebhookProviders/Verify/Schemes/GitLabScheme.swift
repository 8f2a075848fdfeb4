import WebhookCrypto
import WebhookCore

/// GitLab: `X-Gitlab-Token` equals one of the secrets (compared in constant time). Id:
/// `Idempotency-Key` (kept across GitLab's retries), else `X-Gitlab-Event-UUID`; type:
/// `X-Gitlab-Event`.
public struct GitLabScheme: WebhookScheme {
    public let name = "gitlab"
    public var signatureHeaders: [String] { ["X-Gitlab-Token"] }
    let tokens: [[UInt8]]

    public init(secrets: [String]) { self.tokens = secrets.map { Array($0.utf8) } }

    public func verify(_ request: WebhookRequest) throws(VerificationFailure) -> VerifiedWebhook {
        guard let token = request.headers.first(name: "X-Gitlab-Token") else { throw .missing("X-Gitlab-Token is missing") }
        let presented = Array(token.utf8)
        guard let index = tokens.firstIndex(where: { constantTimeEquals($0, presented) }) else {
            throw .invalid("X-Gitlab-Token matches none of \(tokens.count) secrets")
        }
        let id = request.headers.first(name: "Idempotency-Key") ?? request.headers.first(name: "X-Gitlab-Event-UUID")
        return VerifiedWebhook(id: id, type: request.headers.first(name: "X-Gitlab-Event"), keyIndex: index)
    }
}

extension Provider {
    static let gitlab = Provider(
        name: "gitlab", signature: "X-Gitlab-Token equals a secret", id: "Idempotency-Key, else X-Gitlab-Event-UUID",
        type: "X-Gitlab-Event",
        make: { config in config.secrets.map { GitLabScheme(secrets: $0) } },
        signHeaders: { request in
            [("X-Gitlab-Token", request.secret), ("Idempotency-Key", request.id)] + request.typed("X-Gitlab-Event")
        })
}
