import WebhookCrypto
import WebhookEncoding

/// A JSON Web Token (RFC 7519) in JWS compact form, checked the way the `jwt` scheme checks
/// it: an algorithm the config names (`none` never), a signature by one of the configured
/// keys of that algorithm's kind, then the registered claims.
///
/// Algorithm confusion is closed by kind: an `HS256` token is only checked against HMAC
/// secrets and an `RS256` one only against RSA keys, and a secret that reads as a PEM public
/// key is a key, never an HMAC secret, so a token "signed" with a public key as its HMAC
/// secret matches nothing.
public struct JSONWebToken: Sendable {
    /// The algorithms the bridge knows.
    public enum Algorithm: String, Sendable, CaseIterable {
        case hs256 = "HS256"
        case rs256 = "RS256"
        case es256 = "ES256"
    }

    /// A key a token may be signed with.
    public enum Key: Sendable {
        case hmac([UInt8])
        case rsa(RSAPublicKey)
        case ec(P256PublicKey)

        /// A configured secret: a PEM public key (RSA or P-256) when it reads as one, else
        /// an HMAC secret (its UTF-8 bytes).
        public init(secret: String) {
            if secret.contains("-----BEGIN") {
                if let rsa = RSAPublicKey(pemRepresentation: secret) {
                    self = .rsa(rsa)
                    return
                }
                if let ec = P256PublicKey(pemRepresentation: secret) {
                    self = .ec(ec)
                    return
                }
            }
            self = .hmac(Array(secret.utf8))
        }

        var isPEMLike: Bool {
            if case .hmac(let bytes) = self { return String(decoding: bytes, as: UTF8.self).contains("-----BEGIN") }
            return false
        }

        func verifies(_ algorithm: Algorithm, signature: [UInt8], of message: [UInt8]) -> Bool {
            switch (algorithm, self) {
            case (.hs256, .hmac(let secret)):
                let mac = PreparedHMAC(key: secret, algorithm: .sha256).authenticationCode(for: message)
                return constantTimeEquals(mac, signature)
            case (.rs256, .rsa(let key)):
                return key.isValidPKCS1v15Signature(signature, for: message, digest: .sha256)
            case (.es256, .ec(let key)):
                return key.isValidSignature(raw: signature, for: message)
            default:
                return false
            }
        }
    }

    /// What a token must satisfy besides its signature.
    public struct Policy: Sendable {
        public var algorithms: Set<Algorithm>
        /// `iss` must be one of these (nil: not checked).
        public var issuers: [String]?
        /// `aud` (a string or a list) must hold one of these (nil: not checked).
        public var audiences: [String]?
        /// Seconds `exp` and `nbf` may be off by.
        public var leewaySeconds: Int64 = 60
        /// Claims that must equal these values.
        public var claims: [(name: String, value: JSONValue)] = []
        /// A claim holding the hex SHA-256 of the body (Vonage's `payload_hash`).
        public var bodyHashClaim: String?
        /// `exp` must be present (Google's OIDC tokens always carry it).
        public var requiresExpiry = false

        public init(algorithms: Set<Algorithm>) { self.algorithms = algorithms }
    }

    /// Why a token was refused: `missing` when there is none to judge, else `invalid`;
    /// `expired` for `exp` and `nbf` outside the leeway.
    public enum Failure: Error, Equatable, CustomStringConvertible {
        case malformed(String)
        case invalid(String)
        case expired(String)

        public var description: String {
            switch self {
            case .malformed(let text), .invalid(let text), .expired(let text): text
            }
        }
    }

    public let header: JSONValue
    public let claims: JSONValue
    public let algorithm: Algorithm
    /// The key id the header names, if any.
    public var keyID: String? { header["kid"]?.scalarText }
    let signingInput: [UInt8]
    let signature: [UInt8]

    /// The longest token read: a header is not a place for megabytes.
    public static let maximumLength = 16_384

    /// Reads `token` without trusting it: the header, the claims and the signature.
    public init(parsing token: Substring, allowed: Set<Algorithm>) throws(Failure) {
        guard token.utf8.count <= Self.maximumLength else { throw .malformed("the token is over 16 KiB") }
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3 else { throw .malformed("the token is not three base64url parts joined by dots") }
        guard let headerBytes = Self.base64URL(parts[0]), let header = try? JSONParser.parse(headerBytes),
            case .object = header
        else { throw .malformed("the token's header is not base64url JSON") }
        guard let name = header["alg"]?.scalarText else { throw .malformed("the token's header has no alg") }
        // RFC 7515 4.1.11: extensions the recipient must understand; this one understands none.
        guard header["crit"] == nil else { throw .invalid("the token's header has crit, which is not supported") }
        guard let algorithm = Algorithm(rawValue: name), allowed.contains(algorithm) else {
            throw .invalid("alg \(name.prefix(16)) is not one of the configured algorithms")
        }
        guard let claimBytes = Self.base64URL(parts[1]), let claims = try? JSONParser.parse(claimBytes), case .object = claims
        else { throw .malformed("the token's claims are not base64url JSON") }
        guard let signature = Self.base64URL(parts[2]), !signature.isEmpty else {
            throw .malformed("the token's signature is not base64url")
        }
        self.header = header
        self.claims = claims
        self.algorithm = algorithm
        self.signature = signature
        signingInput = Array(token.utf8.prefix(parts[0].utf8.count + 1 + parts[1].utf8.count))
    }

    /// The index of the first of `keys` that signed the token (of its algorithm's kind).
    public func matchingKey(in keys: [Key]) throws(Failure) -> Int {
        for (index, key) in keys.enumerated() where !key.isPEMLike {
            if key.verifies(algorithm, signature: signature, of: signingInput) { return index }
        }
        throw .invalid("the \(algorithm.rawValue) signature matches none of \(keys.count) keys")
    }

    /// The claims checked against `policy` at `now` (UNIX seconds), with `body` for the body
    /// hash claim.
    public func checkClaims(_ policy: Policy, now: Int64, body: some Collection<UInt8>) throws(Failure) {
        if let exp = claims["exp"] {
            guard let seconds = Self.seconds(exp) else { throw .invalid("exp is not a number") }
            if now > seconds + policy.leewaySeconds { throw .expired("the token expired at \(seconds) (now \(now))") }
        } else if policy.requiresExpiry {
            throw .invalid("the token has no exp")
        }
        if let nbf = claims["nbf"] {
            guard let seconds = Self.seconds(nbf) else { throw .invalid("nbf is not a number") }
            if now + policy.leewaySeconds < seconds { throw .expired("the token is not valid before \(seconds) (now \(now))") }
        }
        if let issuers = policy.issuers {
            guard let issuer = claims["iss"]?.scalarText, issuers.contains(issuer) else {
                throw .invalid("iss is not \(issuers.joined(separator: " or "))")
            }
        }
        if let audiences = policy.audiences {
            let presented: [String]
            switch claims["aud"] {
            case .string(let one)?: presented = [one]
            case .array(let list)?: presented = list.compactMap { if case .string(let text) = $0 { text } else { nil } }
            default: presented = []
            }
            guard presented.contains(where: audiences.contains) else {
                throw .invalid("aud does not name \(audiences.joined(separator: " or "))")
            }
        }
        for (name, value) in policy.claims where claims[name] != value {
            throw .invalid("claim \(name) is not the configured value")
        }
        if let name = policy.bodyHashClaim {
            guard let expected = claims[name]?.scalarText, let digest = Hex.decode(expected.lowercased()) else {
                throw .invalid("claim \(name) (the body's SHA-256) is missing")
            }
            let hash =
                body.withContiguousStorageIfAvailable { HashAlgorithm.sha256.hash(UnsafeRawBufferPointer($0)) }
                ?? HashAlgorithm.sha256.hash(Array(body))
            guard constantTimeEquals(hash, digest) else {
                throw .invalid("claim \(name) is not the body's SHA-256")
            }
        }
    }

    /// A NumericDate: seconds, possibly with a fraction.
    static func seconds(_ value: JSONValue) -> Int64? {
        guard case .number(let text) = value, let number = Double(text), number.isFinite, abs(number) < 1e15 else {
            return nil
        }
        return Int64(number.rounded(.down))
    }

    /// Strict base64url (no padding, no `+` or `/`).
    static func base64URL(_ text: Substring) -> [UInt8]? {
        guard !text.utf8.contains(where: { $0 == UInt8(ascii: "+") || $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: "=") })
        else { return nil }
        return Base64.decode(text)
    }

    /// `bytes` in base64url without padding.
    public static func base64URLEncode(_ bytes: some Collection<UInt8>) -> String {
        var text = Base64.encode(bytes)
        while text.hasSuffix("=") { text.removeLast() }
        return String(text.map { $0 == "+" ? "-" : $0 == "/" ? "_" : $0 })
    }

    /// A signed token of `claims` (for `sign`, `send` and the tests).
    public static func make(
        claims: JSONValue, algorithm: Algorithm, keyID: String? = nil,
        sign: (_ signingInput: [UInt8]) -> [UInt8]
    ) -> String {
        var header: [(String, JSONValue)] = [("alg", .string(algorithm.rawValue)), ("typ", .string("JWT"))]
        if let keyID { header.append(("kid", .string(keyID))) }
        var headerJSON: [UInt8] = []
        JSONWriter.append(.object(header), to: &headerJSON)
        var claimJSON: [UInt8] = []
        JSONWriter.append(claims, to: &claimJSON)
        let input = base64URLEncode(headerJSON) + "." + base64URLEncode(claimJSON)
        return input + "." + base64URLEncode(sign(Array(input.utf8)))
    }
}
