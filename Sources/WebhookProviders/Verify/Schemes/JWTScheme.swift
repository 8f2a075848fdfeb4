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
        return try verify(request, try token(request), fetched: nil)
    }

    public func verify(_ request: WebhookRequest, services: VerificationServices) async throws(VerificationFailure)
        -> VerifiedWebhook
    {
        let jwt = try token(request)
        guard let keySet else { return try verify(request, jwt, fetched: nil) }
        // A token a configured secret signed needs no fetch.
        if keys.isEmpty || (try? jwt.matchingKey(in: keys)) == nil {
            guard let fetcher = services.certificates else { throw .unavailable("no fetcher for \(keySet.url)") }
            return try verify(request, jwt, fetched: try await keySet.keys(for: jwt.keyID, fetcher: fetcher))
        }
        return try verify(request, jwt, fetched: nil)
    }

    /// The token in the request, read but not trusted.
    private func token(_ request: WebhookRequest) throws(VerificationFailure) -> JSONWebToken {
        guard let value = request.headers.first(name: header), !value.trimmingSpaces.isEmpty,
            value.trimmingSpaces.lowercased() != prefix.trimmingSpaces.lowercased()
        else { throw .missing("\(header) is missing or holds no token") }
        guard value.utf8.count > prefix.utf8.count, value.prefix(prefix.count).lowercased() == prefix.lowercased() else {
            throw .invalid("\(header) does not start with \(prefix.isEmpty ? "a token" : prefix)")
        }
        var token = value.dropFirst(prefix.count).drop { $0 == " " }
        // A JWT never starts with the word: one sent as `Bearer <JWT>` where the token is
        // expected bare (monday.com's docs show both) is read all the same.
        if prefix.isEmpty, token.prefix(7).lowercased() == "bearer " { token = token.dropFirst(7).drop { $0 == " " } }
        do throws(JSONWebToken.Failure) {
            return try JSONWebToken(parsing: token, allowed: policy.algorithms)
        } catch {
            throw .invalid(error.description)
        }
    }

    /// `jwt` checked: signed by one of the secrets, or else of `fetched` (the key set's keys
    /// for it, when the secrets had none that signed it), then its claims.
    private func verify(_ request: WebhookRequest, _ jwt: JSONWebToken, fetched: [JSONWebToken.Key]?)
        throws(VerificationFailure) -> VerifiedWebhook
    {
        let index: Int
        do throws(JSONWebToken.Failure) {
            if let fetched {
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
            if keySet != nil, policy.audiences == nil, policy.claims.isEmpty {
                // A public key set (Google's, Auth0's) signs tokens for every one of its users.
                config.log.warn(
                    reader.childPath("audience"),
                    "is not set: with jwksUrl, any token the key set's owner signed for another audience is accepted")
            }
            let keys = secrets.map(JSONWebToken.Key.init(secret:))
            for (index, key) in keys.enumerated() {
                if key.isPEMLike {
                    config.log.add(
                        "\(reader.childPath("secrets"))[\(index)]",
                        "holds a PEM that is not a public key this reads (RSA of 2048 bits or more, or P-256 PUBLIC KEY); it is never used as an HMAC secret"
                    )
                    return nil
                }
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
    static func token(
        for request: SigningRequest, bodyHashClaim: String = "sha256", extraClaims: [(String, JSONValue)] = []
    ) throws(WebhookSigner.Failure) -> String {
        let now = request.input.timestamp
        let claims = JSONValue.object(
            [
                ("iat", .number(String(now))), ("exp", .number(String(now + 300))), ("jti", .string(request.id)),
                (bodyHashClaim, .string(Hex.encode(HashAlgorithm.sha256.hash(request.body)))),
            ] + extraClaims)
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

extension Provider {
    /// A `jwt` preset of a provider that signs HS256 tokens with a shared secret: the header,
    /// its prefix, the issuer and the body-hash claim fixed; `idHeader`/`idPointer` and
    /// `typeHeader`/`typePointer` as for `jwt`.
    static func hs256Preset(
        _ name: String, header: String, prefix: String, issuer: String? = nil, bodyHashClaim: String?, signature: String,
        id: FieldSource = FieldSource(), type: FieldSource = FieldSource()
    ) -> Provider {
        Provider(
            name: name, signature: signature, id: id.places.isEmpty ? "the token's jti, else hash" : id.summary + ", else jti",
            type: type.places.isEmpty ? "webhook" : type.summary,
            keys: ["idHeader", "idPointer", "typeHeader", "typePointer", "leewaySeconds"],
            make: { config in
                guard let places = FieldSource.readPlaces(config.reader, id: id, type: type), let secrets = config.secrets
                else { return nil }
                var policy = JSONWebToken.Policy(algorithms: [.hs256])
                policy.issuers = issuer.map { [$0] }
                policy.bodyHashClaim = bodyHashClaim
                policy.leewaySeconds = Int64(config.reader.integer("leewaySeconds", in: 0...3600) ?? 60)
                var scheme = JWTScheme(
                    header: header, prefix: prefix, keys: secrets.map { .hmac(Array($0.utf8)) }, policy: policy, id: places.id,
                    type: places.type, keySet: nil)
                scheme.name = name
                return scheme
            },
            sign: { request throws(WebhookSigner.Failure) in
                // A PEM is never an HMAC secret here either: these providers sign with a shared one.
                var claims: [(String, JSONValue)] = []
                if let issuer { claims.append(("iss", .string(issuer))) }
                let token = try JWTScheme.token(
                    for: request, bodyHashClaim: bodyHashClaim ?? "sha256", extraClaims: claims)
                return WebhookSigner.Output(headers: [(header, prefix + token)])
            })
    }

    /// Vonage signed webhooks: `Authorization: Bearer <JWT>`, HS256 with the signature
    /// secret, `payload_hash` the body's SHA-256.
    static let vonage = hs256Preset(
        "vonage", header: "Authorization", prefix: "Bearer ", bodyHashClaim: "payload_hash",
        signature: "Authorization: Bearer <JWT>, HS256 with the signature secret; claim payload_hash = hex SHA-256 of the body")

    /// monday.com: `Authorization: <JWT>`, HS256 with the app's signing secret.
    static let monday = hs256Preset(
        "monday", header: "Authorization", prefix: "", bodyHashClaim: nil,
        signature: "Authorization: <JWT> (Bearer accepted), HS256 with the app's signing secret",
        type: FieldSource([.pointer("/event/type")]))

    /// Netlify: `X-Webhook-Signature: <JWS>`, HS256 with the JWS secret, issuer `netlify`,
    /// `sha256` the body's SHA-256. No id from the body: a deploy's notifications (building,
    /// ready, failed) share its `id`, and would be duplicates of the first.
    static let netlify = hs256Preset(
        "netlify", header: "X-Webhook-Signature", prefix: "", issuer: "netlify", bodyHashClaim: "sha256",
        signature: "X-Webhook-Signature: <JWS>, HS256 with the JWS secret; iss netlify, claim sha256 = hex SHA-256 of the body")
}
