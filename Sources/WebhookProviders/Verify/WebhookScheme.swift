import WebhookEncoding
import NIOCore
import NIOHTTP1
import Synchronization
import WebhookCore

/// One provider's way of signing webhooks (SPEC section 4).
///
/// A scheme checks the raw request bytes against its configured secrets and says which
/// secret matched, the event's id and type, and whether the request is a handshake that the
/// bridge answers itself.
public protocol WebhookScheme: Sendable {
    /// The scheme's name as written in `verify.scheme`.
    var name: String { get }
    /// Verifies `request` or says why not.
    func verify(_ request: WebhookRequest) throws(VerificationFailure) -> VerifiedWebhook
    /// Verifies `request` with the bridge's services (a scheme that fetches certificates);
    /// the default is ``verify(_:)``.
    func verify(_ request: WebhookRequest, services: VerificationServices) async throws(VerificationFailure)
        -> VerifiedWebhook
    /// The headers that carry the signature: a request with none of them is refused from its
    /// head, before its body is read (SPEC section 8). Empty for a scheme that signs nothing,
    /// or elsewhere (the body, the query), or that has unsigned handshakes.
    var signatureHeaders: [String] { get }
    /// Methods besides POST that the scheme's handshake answers (GET, HEAD, OPTIONS); others
    /// get 405 with an `Allow` of POST and these.
    var handshakeMethods: [HTTPMethod] { get }
    /// The answer to a request with one of ``handshakeMethods``.
    func answerHandshake(_ request: HandshakeRequest) -> HandshakeAnswer
    /// A refusal decided from the head alone (SPEC section 8: an unsigned body is never
    /// buffered): by default, none of ``signatureHeaders`` present.
    func refusalFromHead(uri: String, headers: HTTPHeaders) -> VerificationFailure?
    /// Headers a 401 for this scheme carries (`basic`: `WWW-Authenticate`).
    var unauthorizedHeaders: [(String, String)] { get }
    /// A POST answered before verification, when the provider's handshake is unsigned
    /// (Microsoft Graph's `validationToken`, WooCommerce's ping); nil for everything else.
    func unsignedHandshake(_ request: WebhookRequest) -> HandshakeAnswer?
    /// For a scheme whose signature covers a single-use token rather than the event
    /// (Mailgun): how long, in seconds, a token must be remembered for a replay to be caught
    /// (``VerifiedWebhook/singleUseToken``); nil for every other scheme.
    var singleUseTokenLifetime: Int? { get }
    /// The event's id and type as ``verify(_:)`` would give them, read without checking the
    /// signature, for `webhook-bridge route`'s dry run; nil (the default) when the scheme
    /// reads them only while verifying.
    func unverifiedIdentity(_ request: WebhookRequest) -> (id: String?, type: String?)?
    /// True for a scheme that learns secrets in a handshake (`asana`): it needs
    /// ``VerificationServices/learnedSecrets``.
    var learnsSecrets: Bool { get }
}

extension WebhookScheme {
    public func verify(_ request: WebhookRequest, services: VerificationServices) async throws(VerificationFailure)
        -> VerifiedWebhook
    {
        try verify(request)
    }

    public var signatureHeaders: [String] { [] }
    public var handshakeMethods: [HTTPMethod] { [] }
    public var unauthorizedHeaders: [(String, String)] { [] }
    public func refusalFromHead(uri: String, headers: HTTPHeaders) -> VerificationFailure? { missingSignature(in: headers) }
    public func answerHandshake(_ request: HandshakeRequest) -> HandshakeAnswer {
        HandshakeAnswer(status: 405, body: [], contentType: nil)
    }
    public func unsignedHandshake(_ request: WebhookRequest) -> HandshakeAnswer? { nil }
    public var singleUseTokenLifetime: Int? { nil }
    public var learnsSecrets: Bool { false }
    public func unverifiedIdentity(_ request: WebhookRequest) -> (id: String?, type: String?)? { nil }

    /// 401 `signature_missing` when the request carries none of ``signatureHeaders``;
    /// decided from the head alone.
    public func missingSignature(in headers: HTTPHeaders) -> VerificationFailure? {
        let names = signatureHeaders
        guard !names.isEmpty, !names.contains(where: headers.contains(name:)) else { return nil }
        let named = names.count > 2 ? "\(names[0]) (or one of \(names.count - 1) more)" : names.joined(separator: " or ")
        return .missing("\(named) is missing")
    }
}

/// What a scheme sees of a request.
public struct WebhookRequest: Sendable {
    public var headers: HTTPHeaders
    /// The raw body, byte for byte.
    public var body: ByteBuffer
    /// The body parsed as JSON on first use. Schemes read it only after the signature
    /// checked out, so a forged body is never parsed.
    public let json: LazyJSON
    /// The request target as received (path and query).
    public var uri: String
    /// When the request arrived, for timestamp tolerance.
    public var receivedAt: Timestamp
    /// The client's address (after `trustedProxies`), when known: what a scheme that spends
    /// shared resources on unverified requests (SNS's certificate fetches) shares them by.
    public var client: String?

    /// `parsesBody`: the pipeline will need the whole body's JSON anyway (a `match`, a
    /// `transform`, a template), so a scheme's look at its id and type parses it rather than
    /// scanning it first and parsing it again.
    public init(
        headers: HTTPHeaders, body: ByteBuffer, uri: String, receivedAt: Timestamp, client: String? = nil,
        parsesBody: Bool = false
    ) {
        self.headers = headers
        self.body = body
        self.json = LazyJSON(body, parsesWhole: parsesBody)
        self.uri = uri
        self.receivedAt = receivedAt
        self.client = client
    }
}

extension WebhookRequest {
    /// The body as JSON (parsed now if it was not yet), or nil when it is not JSON.
    public var bodyJSON: JSONValue? { json.value }

    /// `bodyJSON?[name]?.scalarText` for each of `names`, without building the body's JSON
    /// when nothing else needs it (see ``LazyJSON/topLevelTexts(_:)``).
    public func topLevelTexts(_ names: [String]) -> [String?] { json.topLevelTexts(names) }
}

/// A body's JSON parse, done at most once and only when something asks for it.
public final class LazyJSON: Sendable {
    private let body: ByteBuffer
    private struct State {
        /// nil: not parsed yet; .some(nil): parsed, not JSON.
        var parsed: JSONValue??
        /// Whether the body is JSON, once it was parsed or scanned.
        var isJSON: Bool?
    }
    private let state = Mutex(State())
    /// Whether ``topLevelTexts(_:)`` parses the whole body instead of scanning it.
    private let parsesWhole: Bool

    /// `parsesWhole`: the body's JSON will be asked for anyway, so ``topLevelTexts(_:)``
    /// builds it instead of scanning the body first and parsing it again after.
    public init(_ body: ByteBuffer, parsesWhole: Bool = false) {
        self.body = body
        self.parsesWhole = parsesWhole
    }

    /// The parsed body, parsing it on first use.
    public var value: JSONValue? {
        state.withLock { Self.parse(body, into: &$0) }
    }

    private static func parse(_ body: ByteBuffer, into state: inout State) -> JSONValue? {
        if let done = state.parsed { return done }
        let value = try? JSONParser.parse(body.readableBytesView)
        state.parsed = .some(value)
        state.isJSON = value != nil
        return value
    }

    /// `value?[name]?.scalarText` for each of `names`: from the parsed body when something
    /// parsed it already or will (`parsesWhole`), else by a scan that checks the whole body as strictly but builds
    /// only those texts (a body found not to be JSON is remembered as such).
    public func topLevelTexts(_ names: [String]) -> [String?] {
        state.withLock { state in
            if parsesWhole || state.parsed != nil {
                let value = Self.parse(body, into: &state)
                return names.map { value?[$0]?.scalarText }
            }
            guard let texts = JSONParser.topLevelTexts(body.readableBytesView, names) else {
                state.parsed = .some(nil)
                state.isJSON = false
                return names.map { _ in nil }
            }
            state.isJSON = true
            return texts
        }
    }

    /// The parsed body if something already parsed it; never parses.
    public var valueIfParsed: JSONValue? { state.withLock { $0.parsed ?? nil } }

    /// Whether the body is JSON, when something parsed or scanned it already; nil before.
    /// A scheme does either only after the signature checked out.
    public var isJSON: Bool? { state.withLock { $0.isJSON } }
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
    /// What the bridge does after answering a handshake (SNS: log or confirm a subscription).
    public var followUp: HandshakeFollowUp?
    /// A token the provider signs instead of the event (Mailgun), valid for one delivery:
    /// the pipeline claims it in the idempotency store beside the event's id, and a token
    /// already accepted is refused as `signature_invalid`.
    public var singleUseToken: String?

    public init(id: String?, type: String?, keyIndex: Int, handshake: HandshakeAnswer? = nil) {
        self.id = id
        self.type = type
        self.keyIndex = keyIndex
        self.handshake = handshake
    }
}

/// Work a handshake leaves for the bridge.
public enum HandshakeFollowUp: Sendable, Equatable {
    /// An SNS subscription (or unsubscribe) confirmation: `url` is its SubscribeURL, logged at
    /// warning; with `confirm`, the bridge GETs it itself (its host already checked), trusting
    /// `caFile` too.
    case subscription(url: String, topic: String, confirm: Bool, caFile: String?)
    /// A secret learned in a handshake (Asana's `X-Hook-Secret`) and kept at `location`
    /// (logged at warning, never the secret): `outcome` says whether it is new.
    case learnedSecret(outcome: LearnOutcome, location: String)
}

/// What a scheme may use while verifying, provided by the bridge: I/O the pure schemes of
/// this module can't do themselves.
public struct VerificationServices: Sendable {
    /// Fetches signing certificates (SNS) over HTTPS.
    public var certificates: (any CertificateFetcher)?
    /// Where secrets learned in handshakes are kept (`asana`); nil: nowhere (such a source
    /// answers 503).
    public var learnedSecrets: (any LearnedSecretStore)?
    /// The source being verified (set per request): the key of its learned secrets.
    public var source = ""

    public init(certificates: (any CertificateFetcher)? = nil, learnedSecrets: (any LearnedSecretStore)? = nil) {
        self.certificates = certificates
        self.learnedSecrets = learnedSecrets
    }

    /// These services for `source`'s request.
    public func `for`(_ source: String) -> VerificationServices {
        var services = self
        services.source = source
        return services
    }
}

/// Why a certificate could not be had. `isDefinite`: the host answered and there is no usable
/// certificate there (a 4xx, not a PEM RSA certificate), so a message naming it is refused;
/// otherwise (network, timeout, 5xx, too many fetches) it may work later: 503.
public struct CertificateFetchFailure: Error, Sendable, CustomStringConvertible {
    public let description: String
    public let isDefinite: Bool

    public init(description: String, isDefinite: Bool) {
        self.description = description
        self.isDefinite = isDefinite
    }
}

/// Fetches a signing certificate over HTTPS (system trust roots plus an optional CA file),
/// with a timeout, and returns its public key as DER SubjectPublicKeyInfo.
public protocol CertificateFetcher: Sendable {
    func publicKey(at url: String, caFile: String?) async throws -> [UInt8]
    /// GETs `url` (an SNS SubscribeURL); returns the status.
    func get(_ url: String, caFile: String?) async throws -> Int
    /// The body of a 200 answer to a GET of `url` (a JSON Web Key Set), at most 64 KiB; a
    /// 4xx is a ``CertificateFetchFailure`` that `isDefinite`.
    func document(at url: String, caFile: String?) async throws -> [UInt8]
}

/// The answer to a provider's handshake, sent as it is and never forwarded: Slack
/// url_verification, Zoom url_validation, Discord PING, Meta's `hub.challenge` GET, Twitch's
/// challenge, Trello's HEAD, …. For a handshake that lacks what it must echo: a 400
/// (``invalid(_:)``).
public struct HandshakeAnswer: Sendable, Equatable {
    public var status: Int
    public var body: [UInt8]
    /// nil: no `Content-Type` (an empty body).
    public var contentType: String?
    /// More headers the provider requires (`X-Content-Type-Options`, `WebHook-Allowed-Origin`).
    public var headers: [(String, String)]

    public init(status: Int = 200, body: [UInt8], contentType: String? = "application/json", headers: [(String, String)] = []) {
        self.status = status
        self.body = body
        self.contentType = contentType
        self.headers = headers
    }

    /// 200 `text/plain` holding `text` (Meta's and Dropbox's challenges, Twitch's, Graph's
    /// token), with `X-Content-Type-Options: nosniff`: the text is the caller's own, echoed,
    /// and a browser must never sniff it into HTML.
    public static func text(_ text: String) -> HandshakeAnswer {
        HandshakeAnswer(
            body: Array(text.utf8), contentType: "text/plain; charset=utf-8", headers: [("X-Content-Type-Options", "nosniff")])
    }

    /// 200 with no body.
    public static let empty = HandshakeAnswer(body: [], contentType: nil)

    /// 400 `{"error": "invalid_handshake"}`: a signed handshake without its challenge.
    public static func invalid(_ missing: String) -> HandshakeAnswer {
        HandshakeAnswer(status: 400, body: JSONWriter.object(["error": "invalid_handshake", "missing": missing]))
    }

    public static func == (lhs: HandshakeAnswer, rhs: HandshakeAnswer) -> Bool {
        lhs.status == rhs.status && lhs.body == rhs.body && lhs.contentType == rhs.contentType
            && lhs.headers.map { "\($0.0):\($0.1)" } == rhs.headers.map { "\($0.0):\($0.1)" }
    }
}

/// A request with another method than POST, as a handshake sees it: from its head alone.
public struct HandshakeRequest: Sendable {
    public var method: HTTPMethod
    /// The request target (path and query).
    public var uri: String
    public var headers: HTTPHeaders

    public init(method: HTTPMethod, uri: String, headers: HTTPHeaders) {
        self.method = method
        self.uri = uri
        self.headers = headers
    }

    /// The query parameter `name`, percent-decoded (`+` as a space), or nil.
    public func query(_ name: String) -> String? { QueryString.value(name, in: uri) }
}

/// A query string's parameters.
public enum QueryString {
    /// The first value of `name` in `uri`'s query, percent-decoded (`+` as a space).
    public static func value(_ name: String, in uri: String) -> String? {
        guard let question = uri.firstIndex(of: "?") else { return nil }
        return FormParameters.parse(uri[uri.index(after: question)...].utf8).first { $0.0 == name }?.1
    }
}

/// Why verification failed; its ``code`` is the `error` of the 401 body (SPEC section 5).
public struct VerificationFailure: Error, Sendable, Equatable, CustomStringConvertible {
    private enum Code: String, Sendable {
        case signatureMissing = "signature_missing"
        case signatureInvalid = "signature_invalid"
        case timestampExpired = "timestamp_expired"
        case unavailable = "unavailable"
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
    /// Verification could not be done now, through no fault of the request (the signing
    /// certificate could not be fetched): answered 503, so the provider retries.
    public static func unavailable(_ detail: String) -> VerificationFailure { .init(.unavailable, detail) }

    /// True for ``unavailable(_:)``.
    public var isUnavailable: Bool { _code == .unavailable }
}
