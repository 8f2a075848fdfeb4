import Foundation
import WebhookCore
import WebhookCrypto
import WebhookEncoding

/// `jwt`: a JSON Web Token in `verify.header` (default `Authorization`, after
/// `verify.prefix`, default `Bearer `), signed with one of `verify.secrets` (HMAC secrets or
/// PEM public keys) by an algorithm `verify.algorithms` names, its claims checked
/// (``JSONWebToken``). Id: `idHeader`/`idPointer`, else the token's `jti`, else the body
/// hash; type: `typeHeader`/`typePointer`, else `webhook`.
public struct JWTScheme: WebhookScheme {
    /// `jwt`, or the preset's name.
    public var name = "jwt"
    let header: String
    let prefix: String
    let keys: [JSONWebToken.Key]
    let policy: JSONWebToken.Policy
    let id: FieldSource
    let type: FieldSource
    /// `verify.jwksUrl`'s keys, tried after `secrets` (their index: one past the secrets').
    let keySet: JSONWebKeySet?
    /// The type when `type` finds none (a preset's: Pub/Sub's subscription name).
    var defaultType: (@Sendable (WebhookRequest) -> String?)? = nil

    public var signatureHeaders: [String] { [header] }

    public func verify(_ request: WebhookRequest) throws(VerificationFailure) -> VerifiedWebhook {
        guard keySet == nil else { throw .unavailable("jwt with jwksUrl needs the bridge to fetch its key set") }
        return try verify(request, fetched: nil)
    }

    public func verify(_ request: WebhookRequest, services: VerificationServices) async throws(VerificationFailure)
        -> VerifiedWebhook
    {
        guard let keySet else { return try verify(request, fetched: nil) }
        let jwt = try token(request)
        // A token a configured secret signed needs no fetch.
        if (try? jwt.matchingKey(in: keys)) != nil { return try verify(request, fetched: nil) }
        guard let fetcher = services.certificates else { throw .unavailable("no fetcher for \(keySet.url)") }
        return try verify(request, fetched: try await keySet.keys(for: jwt.keyID, fetcher: fetcher))
    }

    /// The token in the request, read but not trusted.
    private func token(_ request: WebhookRequest) throws(VerificationFailure) -> JSONWebToken {
        guard let value = request.headers.first(name: header) else { throw .missing("\(header) is missing") }
        guard value.utf8.count > prefix.utf8.count, value.lowercased().hasPrefix(prefix.lowercased()) else {
            throw .invalid("\(header) does not start with \(prefix.isEmpty ? "a token" : prefix)")
        }
        do throws(JSONWebToken.Failure) {
            return try JSONWebToken(parsing: value.dropFirst(prefix.count).drop { $0 == " " }, allowed: policy.algorithms)
        } catch {
            throw .invalid(error.description)
        }
    }

    private func verify(_ request: WebhookRequest, fetched: [JSONWebToken.Key]?) throws(VerificationFailure)
        -> VerifiedWebhook
    {
        let jwt = try token(request)
        let index: Int
        do throws(JSONWebToken.Failure) {
            if let fetched, (try? jwt.matchingKey(in: keys)) == nil {
                _ = try jwt.matchingKey(in: fetched)
                index = keys.count
            } else {
                index = try jwt.matchingKey(in: keys)
            }
            try jwt.checkClaims(policy, now: request.receivedAt.secondsSince1970, body: request.body.readableBytesView)
        } catch {
            switch error {
            case .expired(let detail): throw .expired(detail)
            case .malformed(let detail), .invalid(let detail): throw .invalid(detail)
            }
        }
        return VerifiedWebhook(
            id: id.value(in: request, keys: [], texts: []) ?? jwt.claims["jti"]?.scalarText,
            type: type.value(in: request, keys: [], texts: []) ?? defaultType?(request) ?? "webhook", keyIndex: index)
    }
}

extension Provider {
    static let jwt = Provider(
        name: "jwt",
        signature:
            "verify.header (default Authorization), after verify.prefix (default \"Bearer \"): a JWT signed by an algorithm of verify.algorithms (HS256, RS256, ES256) with a secret or PEM public key of verify.secrets or a key of the set at verify.jwksUrl; exp/nbf within verify.leewaySeconds, verify.issuer, verify.audience, verify.claims, verify.bodyHashClaim",
        id: "idHeader/idPointer, else the token's jti, else hash", type: "typeHeader/typePointer, else webhook",
        keys: [
            "header", "prefix", "algorithms", "issuer", "audience", "leewaySeconds", "claims", "bodyHashClaim", "idHeader",
            "idPointer", "typeHeader", "typePointer", "jwksUrl", "caFile",
        ],
        make: { config in
            let reader = config.reader
            let header = reader.string("header") ?? "Authorization"
            let prefix = reader.string("prefix", nonEmpty: false) ?? "Bearer "
            guard let names = reader.stringArray("algorithms", required: true) else { return nil }
            var algorithms: Set<JSONWebToken.Algorithm> = []
            for name in names {
                guard let algorithm = JSONWebToken.Algorithm(rawValue: name) else {
                    let known = JSONWebToken.Algorithm.allCases.map(\.rawValue).joined(separator: ", ")
                    reader.problem(
                        at: "algorithms",
                        name.lowercased() == "none"
                            ? "none is never accepted: an unsigned token proves nothing"
                            : "\(name) is not one of \(known)")
                    return nil
                }
                algorithms.insert(algorithm)
            }
            var policy = JSONWebToken.Policy(algorithms: algorithms)
            policy.issuers = strings(reader, "issuer")
            policy.audiences = strings(reader, "audience")
            policy.leewaySeconds = Int64(reader.integer("leewaySeconds", in: 0...3600) ?? 60)
            switch reader.raw("claims") {
            case nil: break
            case .object(let members)?: policy.claims = members.map { (name: $0.0, value: $0.1) }
            default:
                reader.problem(at: "claims", "must be an object of the claims a token must hold, with their values")
                return nil
            }
            policy.bodyHashClaim = reader.string("bodyHashClaim")
            guard let places = FieldSource.readPlaces(reader, id: FieldSource(), type: FieldSource()),
                let secrets = config.secrets
            else { return nil }
            let keySet: JSONWebKeySet?
            switch JSONWebKeySet.read(reader) {
            case .none: keySet = nil
            case .set(let set): keySet = set
            case .failed: return nil
            }
            let keys = secrets.map(JSONWebToken.Key.init(secret:))
            for (index, key) in keys.enumerated() {
                if case .hmac = key, !algorithms.contains(.hs256) {
                    config.log.add(
                        "\(reader.childPath("secrets"))[\(index)]",
                        "is not a PEM public key (RSA of 2048 bits or more, or P-256), and HS256 is not in algorithms")
                    return nil
                }
            }
            return JWTScheme(
                header: header, prefix: prefix, keys: keys, policy: policy, id: places.id, type: places.type, keySet: keySet)
        },
        sign: { request throws(WebhookSigner.Failure) in
            WebhookSigner.Output(headers: [("Authorization", "Bearer " + (try JWTScheme.token(for: request)))])
        }
    )
    .keysFrom("jwksUrl")

    /// A string or a list of strings (`issuer`, `audience`); nil when absent.
    private static func strings(_ reader: ConfigReader, _ key: String) -> [String]? {
        switch reader.raw(key) {
        case nil: return nil
        case .string?: return reader.string(key).map { [$0] }
        default: return reader.stringArray(key)
        }
    }
}

extension JWTScheme {
    /// What `sign` sends: a token with `iat`, `exp` (five minutes on), `jti` (the event id)
    /// and `sha256` (the body's hex SHA-256, for `verify.bodyHashClaim`), signed RS256 or
    /// ES256 when the secret is a PEM private key, else HS256.
    static func token(for request: SigningRequest) throws(WebhookSigner.Failure) -> String {
        let now = request.input.timestamp
        let claims = JSONValue.object([
            ("iat", .number(String(now))), ("exp", .number(String(now + 300))), ("jti", .string(request.id)),
            ("sha256", .string(Hex.encode(HashAlgorithm.sha256.hash(request.body)))),
        ])
        if request.secret.contains("PRIVATE KEY") {
            if let rsa = RSAPrivateKey(pemRepresentation: request.secret) {
                return JSONWebToken.make(claims: claims, algorithm: .rs256) { rsa.signature(for: $0) }
            }
            if let ec = P256PrivateKey(pemRepresentation: request.secret) {
                return JSONWebToken.make(claims: claims, algorithm: .es256) { ec.rawSignature(for: $0) }
            }
            throw WebhookSigner.Failure("--secret: a PEM private key that is neither RSA nor P-256")
        }
        let secret = Array(request.secret.utf8)
        return JSONWebToken.make(claims: claims, algorithm: .hs256) {
            PreparedHMAC(key: secret, algorithm: .sha256).authenticationCode(for: $0)
        }
    }
}
