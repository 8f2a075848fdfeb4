import NIOCore
import NIOHTTP1

/// One provider's way of signing webhooks (SPEC section 4).
///
/// A scheme checks the raw request bytes against its configured secrets and says which
/// secret matched, the event's id and type, and whether the request is a handshake that the
/// bridge answers itself.
public protocol WebhookScheme: Sendable {
    /// The scheme's name as written in `verify.scheme`.
    var name: String { get }
    /// True when verification or the id/type need the body parsed as JSON; the ingress then
    /// parses it once and hands it over in ``WebhookRequest/bodyJSON``.
    var needsBodyJSON: Bool { get }
    /// Verifies `request` or says why not.
    func verify(_ request: WebhookRequest) throws(VerificationFailure) -> VerifiedWebhook
}

/// What a scheme sees of a request.
public struct WebhookRequest: Sendable {
    public var headers: HTTPHeaders
    /// The raw body, byte for byte.
    public var body: ByteBuffer
    /// The body as JSON when the scheme asked for it and it parsed.
    public var bodyJSON: JSONValue?
    /// The request target as received (path and query).
    public var uri: String
    /// When the request arrived, for timestamp tolerance.
    public var receivedAt: Timestamp

    public init(headers: HTTPHeaders, body: ByteBuffer, bodyJSON: JSONValue? = nil, uri: String, receivedAt: Timestamp) {
        self.headers = headers
        self.body = body
        self.bodyJSON = bodyJSON
        self.uri = uri
        self.receivedAt = receivedAt
    }
}

/// A request that passed verification.
public struct VerifiedWebhook: Sendable, Equatable {
    /// The provider's event id, or nil to use the body hash.
    public var id: String?
    /// The event type, or nil for the scheme's default.
    public var type: String?
    /// Index in `secrets` of the secret that matched.
    public var keyIndex: Int
    /// Set when the request is a handshake the bridge answers without forwarding it.
    public var handshake: HandshakeAnswer?

    public init(id: String?, type: String?, keyIndex: Int, handshake: HandshakeAnswer? = nil) {
        self.id = id
        self.type = type
        self.keyIndex = keyIndex
        self.handshake = handshake
    }
}

/// The answer to a provider's handshake (Slack url_verification, Zoom url_validation,
/// Discord PING): a 200 with this JSON body.
public struct HandshakeAnswer: Sendable, Equatable {
    public var body: [UInt8]
    public var contentType: String

    public init(body: [UInt8], contentType: String = "application/json") {
        self.body = body
        self.contentType = contentType
    }
}

/// Why verification failed; its ``code`` is the `error` of the 401 body (SPEC section 5).
public struct VerificationFailure: Error, Sendable, Equatable, CustomStringConvertible {
    private enum Code: String, Sendable {
        case signatureMissing = "signature_missing"
        case signatureInvalid = "signature_invalid"
        case timestampExpired = "timestamp_expired"
    }

    private let _code: Code
    /// For logs only: which header or check failed. Never holds a secret or a signature.
    public let detail: String

    private init(_ code: Code, _ detail: String) {
        self._code = code
        self.detail = detail
    }

    public var code: String { _code.rawValue }
    public var description: String { "\(code): \(detail)" }

    /// The signature (or a header it needs) is absent.
    public static func missing(_ detail: String) -> VerificationFailure { .init(.signatureMissing, detail) }
    /// The signature is malformed or matches none of the secrets.
    public static func invalid(_ detail: String) -> VerificationFailure { .init(.signatureInvalid, detail) }
    /// The signed timestamp is outside the tolerance.
    public static func expired(_ detail: String) -> VerificationFailure { .init(.timestampExpired, detail) }
}
