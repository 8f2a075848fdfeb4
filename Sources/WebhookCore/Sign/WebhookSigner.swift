import Crypto
import Foundation

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
        /// Settings of the generic `hmac` scheme.
        public var hmac: HMACScheme.Settings?

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
    }

    /// Why a request can't be signed.
    public struct Failure: Error, Sendable, CustomStringConvertible {
        public let description: String
        init(_ description: String) { self.description = description }
    }

    /// The scheme names `sign` accepts: every scheme of SPEC section 4.
    public static let schemes = [
        "stripe", "github", "standard-webhooks", "svix", "slack", "shopify", "twilio", "paddle", "square", "gitlab",
        "linear", "zoom", "sendgrid", "discord", "hmac", "none",
    ]

    public static func sign(scheme: String, _ input: Input) throws(Failure) -> Output {
        let body = input.body
        let ts = String(input.timestamp)
        let id = input.id ?? randomID()
        func mac(_ algorithm: HMACAlgorithm = .sha256, _ prefix: String = "", key: [UInt8]? = nil) -> [UInt8] {
            var parts: [SignedPart] = []
            if !prefix.isEmpty { parts.append(.text(prefix)) }
            parts.append(.bytes(.init(bytes: body)))
            return algorithm.mac(key: SymmetricKey(data: key ?? Array(input.secret.utf8)), parts: parts)
        }
        func typed(_ name: String) -> [(String, String)] { input.type.map { [(name, $0)] } ?? [] }

        switch scheme {
        case "stripe":
            return Output(headers: [("Stripe-Signature", "t=\(ts),v1=\(Hex.encode(mac(.sha256, "\(ts).")))")])
        case "github":
            return Output(
                headers: [("X-Hub-Signature-256", "sha256=" + Hex.encode(mac())), ("X-GitHub-Delivery", id)]
                    + typed("X-GitHub-Event"))
        case "standard-webhooks", "svix":
            let prefix = scheme == "svix" ? "svix" : "webhook"
            let signature: String
            if input.secret.hasPrefix("whsk_") {
                guard let raw = Base64.decode(input.secret.dropFirst(5)), raw.count >= 32,
                    let key = try? Curve25519.Signing.PrivateKey(rawRepresentation: raw.prefix(32))
                else { throw Failure("--secret: whsk_ must be followed by a base64 Ed25519 private key") }
                guard let signed = try? key.signature(for: Array("\(id).\(ts).".utf8) + body) else {
                    throw Failure("Ed25519 signing failed")
                }
                signature = "v1a," + Base64.encode(Array(signed))
            } else {
                let encoded = input.secret.hasPrefix("whsec_") ? input.secret.dropFirst(6) : input.secret[...]
                guard let key = Base64.decode(encoded), !key.isEmpty else {
                    throw Failure("--secret: must be whsec_ followed by base64 (or whsk_ and a private key)")
                }
                signature = "v1," + Base64.encode(mac(.sha256, "\(id).\(ts).", key: key))
            }
            return Output(headers: [("\(prefix)-id", id), ("\(prefix)-timestamp", ts), ("\(prefix)-signature", signature)])
        case "slack":
            return Output(headers: [
                ("X-Slack-Request-Timestamp", ts), ("X-Slack-Signature", "v0=" + Hex.encode(mac(.sha256, "v0:\(ts):"))),
            ])
        case "shopify":
            return Output(
                headers: [("X-Shopify-Hmac-Sha256", Base64.encode(mac())), ("X-Shopify-Webhook-Id", id)]
                    + typed("X-Shopify-Topic"))
        case "twilio":
            guard var url = input.url else { throw Failure("--url: twilio signs the URL it calls; give it") }
            var parameters = ""
            if JSONParser.isValid(body) {
                url += (url.contains("?") ? "&" : "?") + "bodySHA256=" + Hex.encode(SHA256.hash(data: body))
            } else {
                parameters = TwilioScheme.canonical(FormParameters.parse(body))
            }
            let signature = HMACAlgorithm.sha1.mac(
                key: SymmetricKey(data: Array(input.secret.utf8)), parts: [.text(url + parameters)])
            return Output(
                headers: [("X-Twilio-Signature", Base64.encode(signature)), ("I-Twilio-Idempotency-Token", id)], url: url)
        case "paddle":
            return Output(headers: [("Paddle-Signature", "ts=\(ts);h1=\(Hex.encode(mac(.sha256, "\(ts):")))")])
        case "square":
            guard let url = input.url else { throw Failure("--url: square signs the notification URL; give it") }
            return Output(headers: [("x-square-hmacsha256-signature", Base64.encode(mac(.sha256, url)))])
        case "gitlab":
            return Output(headers: [("X-Gitlab-Token", input.secret), ("Idempotency-Key", id)] + typed("X-Gitlab-Event"))
        case "linear":
            return Output(headers: [("Linear-Signature", Hex.encode(mac())), ("Linear-Delivery", id)])
        case "zoom":
            return Output(headers: [
                ("x-zm-request-timestamp", ts), ("x-zm-signature", "v0=" + Hex.encode(mac(.sha256, "v0:\(ts):"))),
            ])
        case "sendgrid":
            let key: P256.Signing.PrivateKey?
            if input.secret.contains("-----BEGIN") {
                key = try? P256.Signing.PrivateKey(pemRepresentation: input.secret)
            } else {
                key = Base64.decode(input.secret).flatMap { try? P256.Signing.PrivateKey(derRepresentation: $0) }
            }
            guard let key, let signature = try? key.signature(for: Array(ts.utf8) + body) else {
                throw Failure("--secret: sendgrid signs with a P-256 private key (base64 DER or PEM)")
            }
            return Output(headers: [
                (SendGridScheme.signatureHeader, Base64.encode(signature.derRepresentation)),
                (SendGridScheme.timestampHeader, ts),
            ])
        case "discord":
            guard let seed = Hex.decode(input.secret), let key = try? Curve25519.Signing.PrivateKey(rawRepresentation: seed),
                let signature = try? key.signature(for: Array(ts.utf8) + body)
            else { throw Failure("--secret: discord signs with an Ed25519 private key (64 hex digits)") }
            return Output(headers: [("X-Signature-Ed25519", Hex.encode(signature)), ("X-Signature-Timestamp", ts)])
        case "hmac":
            guard let settings = input.hmac else {
                throw Failure("hmac needs --signature-header (and the source's other hmac settings)")
            }
            let parts: [SignedPart] = settings.signedContent.parts.map { part in
                switch part {
                case .literal(let text): return .text(text)
                case .timestamp: return .text(ts)
                case .body: return .bytes(.init(bytes: body))
                case .id: return .text(id)
                }
            }
            let signature = settings.algorithm.mac(key: SymmetricKey(data: Array(input.secret.utf8)), parts: parts)
            let encoded = settings.encoding == .hex ? Hex.encode(signature) : Base64.encode(signature)
            var headers = [(settings.header, settings.prefix + encoded)]
            if let header = settings.timestampHeader { headers.append((header, ts)) }
            if let header = settings.idHeader { headers.append((header, id)) }
            if let header = settings.typeHeader, let type = input.type { headers.append((header, type)) }
            return Output(headers: headers)
        case "none":
            return Output(headers: [])
        default:
            throw Failure("--scheme: unknown scheme \"\(scheme)\"; one of \(schemes.joined(separator: ", "))")
        }
    }

    /// A random event id: `evt_` and 24 hex digits.
    static func randomID() -> String {
        var generator = SystemRandomNumberGenerator()
        return "evt_" + Hex.encode((0..<12).map { _ in UInt8.random(in: 0...255, using: &generator) })
    }
}
