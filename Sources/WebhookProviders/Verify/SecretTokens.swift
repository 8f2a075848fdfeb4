import WebhookCrypto
import WebhookCore

/// Secrets a provider sends back as they are (a token in a header, a query parameter, a
/// `clientState`): which one, if any, a request presented, compared in constant time.
struct SecretTokens: Sendable {
    let tokens: [[UInt8]]

    init(_ secrets: [String]) { self.tokens = secrets.map { Array($0.utf8) } }

    /// The index of the secret equal to `presented`, or nil.
    func index(of presented: String) -> Int? {
        let bytes = Array(presented.utf8)
        return tokens.firstIndex { constantTimeEquals($0, bytes) }
    }
}
