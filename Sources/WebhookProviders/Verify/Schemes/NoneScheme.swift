import WebhookCore

/// `verify.scheme: "none"`: nothing is checked; the id is the body hash, the type `webhook`.
/// It must be written out in the config, so an unverified source is always a choice.
public struct NoneScheme: WebhookScheme {
    public let name = "none"

    public init() {}

    public func verify(_ request: WebhookRequest) throws(VerificationFailure) -> VerifiedWebhook {
        VerifiedWebhook(id: nil, type: nil, keyIndex: 0)
    }

    public func unverifiedIdentity(_ request: WebhookRequest) -> (id: String?, type: String?)? { (nil, nil) }
}

extension Provider {
    static let none = Provider(
        name: "none", signature: "nothing is checked (must be written out)", id: "hash", type: "webhook",
        usesSecrets: false, make: { _ in NoneScheme() }, signHeaders: { _ in [] })
}
