import WebhookEncoding
import Foundation
import WebhookCore

/// Produces what a provider would send for a body: the headers (and, for Twilio's JSON
/// requests, the URL with its `bodySHA256`). `webhook-bridge sign` and `send` use it, and
/// the tests check that every scheme verifies what it signs.
public enum WebhookSigner {
    /// What to sign.
    public struct Input: Sendable {
        public var body: [UInt8]
        /// The secret as the provider holds it: the shared secret for HMAC schemes, the
        /// private key for `sendgrid` (base64 DER or PEM), `discord` (hex seed) and
        /// standard-webhooks `whsk_` keys.
        public var secret: String
        public var timestamp: Int64
        /// The event id, for schemes that send it in a header; a random one when nil.
        public var id: String?
        /// The event type, for schemes that send it in a header.
        public var type: String?
        /// The URL the request goes to (Twilio and Square sign it).
        public var url: String?
        /// The recipe of the generic `hmac` scheme (its `verify` settings).
        public var hmac: Recipe?

        public init(body: [UInt8], secret: String, timestamp: Int64, id: String? = nil, type: String? = nil, url: String? = nil) {
            self.body = body
            self.secret = secret
            self.timestamp = timestamp
            self.id = id
            self.type = type
            self.url = url
        }
    }

    /// What a provider would send.
    public struct Output: Sendable {
        public var headers: [(String, String)]
        /// The URL to call, when signing changed it (Twilio JSON: `bodySHA256` appended).
        public var url: String?
        /// The body to send, when the signature goes inside it (Mailgun).
        public var body: [UInt8]?

        public init(headers: [(String, String)], url: String? = nil, body: [UInt8]? = nil) {
            self.headers = headers
            self.url = url
            self.body = body
        }
    }

    /// Why a request can't be signed.
    public struct Failure: Error, Sendable, CustomStringConvertible {
        public let description: String
        init(_ description: String) { self.description = description }
    }

    /// The scheme names `sign` accepts: every provider that signs with a secret, and aliases.
    public static var schemes: [String] {
        ProviderRegistry.all.filter(\.canSign).flatMap { [$0.name] + $0.aliases }
    }

    /// The headers (and URL) `scheme`'s provider would send for `input`.
    public static func sign(scheme: String, _ input: Input) throws(Failure) -> Output {
        guard let provider = ProviderRegistry.named(scheme), let signer = provider.signer else {
            throw Failure("--scheme: unknown scheme \"\(scheme)\"; one of \(schemes.joined(separator: ", "))")
        }
        return try signer(SigningRequest(input: input, scheme: scheme))
    }

    /// A random event id: `evt_` and 24 hex digits.
    static func randomID() -> String {
        var generator = SystemRandomNumberGenerator()
        return "evt_" + Hex.encode((0..<12).map { _ in UInt8.random(in: 0...255, using: &generator) })
    }
}
