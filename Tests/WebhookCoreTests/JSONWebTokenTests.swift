import Foundation
import BridgeTestSupport
import Testing
import WebhookBridge
import WebhookCrypto
import WebhookEncoding
@testable import WebhookProviders

/// JSON Web Tokens as the `jwt` scheme checks them: RFC 7515's own HS256 example, and RS256,
/// ES256 and HS256 tokens made with keys the test makes; each refusal the scheme must make.
@Suite("JSON Web Tokens: signatures by algorithm and key kind, then the claims")
struct JSONWebTokenTests {
    typealias JWT = JSONWebToken

    static let all = Set(JWT.Algorithm.allCases)

    func check(
        _ token: String, keys: [JWT.Key], policy: JWT.Policy = JWT.Policy(algorithms: all), now: Int64 = 1_800_000_000,
        body: [UInt8] = []
    ) -> Result<Int, JWT.Failure> {
        do {
            let parsed = try JWT(parsing: token[...], allowed: policy.algorithms)
            let index = try parsed.matchingKey(in: keys)
            try parsed.checkClaims(policy, now: now, body: body)
            return .success(index)
        } catch {
            return .failure(error)
        }
    }

    static func claims(_ members: [(String, JSONValue)]) -> JSONValue { .object(members) }

    @Test("RFC 7515 appendix A.1: the HS256 example verifies with its key, and is expired after its exp")
    func rfcExample() throws {
        let token =
            "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
        let key = try #require(
            Base64.decode("AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow"))
        var policy = JWT.Policy(algorithms: [.hs256])
        policy.issuers = ["joe"]
        #expect(try check(token, keys: [.hmac(Array("other".utf8)), .hmac(key)], policy: policy, now: 1_300_819_000).get() == 1)
        guard case .failure(.expired) = check(token, keys: [.hmac(key)], policy: policy, now: 1_300_819_380 + 61) else {
            Issue.record("an expired token was accepted")
            return
        }
        policy.issuers = ["jane"]
        #expect(throws: JWT.Failure.self) { try check(token, keys: [.hmac(key)], policy: policy, now: 1_300_819_000).get() }
    }

    @Test(
        "RS256: accepted with its key; refused for a wrong aud or iss, an expired or not yet valid token, another key, alg none, and an algorithm not configured"
    )
    func rs256() throws {
        let signer = RSAPrivateKey()
        let other = RSAPrivateKey()
        func token(_ claims: JSONValue, with key: RSAPrivateKey = signer, alg: JWT.Algorithm = .rs256) -> String {
            JWT.make(claims: claims, algorithm: alg) { key.signature(for: $0) }
        }
        let now: Int64 = 1_800_000_000
        let good = Self.claims([
            ("iss", .string("https://accounts.google.com")),
            ("aud", .array([.string("x"), .string("https://hooks.example.com/push")])),
            ("email", .string("pusher@project.iam.gserviceaccount.com")), ("email_verified", .bool(true)),
            ("exp", .number(String(now + 3600))), ("iat", .number(String(now))),
        ])
        var policy = JWT.Policy(algorithms: [.rs256])
        policy.issuers = ["https://accounts.google.com", "accounts.google.com"]
        policy.audiences = ["https://hooks.example.com/push"]
        policy.claims = [("email", .string("pusher@project.iam.gserviceaccount.com")), ("email_verified", .bool(true))]
        policy.requiresExpiry = true
        let keys: [JWT.Key] = [.rsa(other.publicKey), .rsa(signer.publicKey)]
        #expect(try check(token(good), keys: keys, policy: policy, now: now).get() == 1)
        // A public key given as PEM is a key, as the config gives it.
        let pem = try #require(pemPublicKey(signer.publicKey.derRepresentation))
        guard case .rsa = JWT.Key(secret: pem) else {
            Issue.record("a PEM public key was not read as an RSA key")
            return
        }

        func refused(_ claims: JSONValue, with key: RSAPrivateKey = signer, at time: Int64 = now) -> JWT.Failure? {
            if case .failure(let failure) = check(token(claims, with: key), keys: keys.suffix(1), policy: policy, now: time) {
                return failure
            }
            return nil
        }
        func replacing(_ name: String, _ value: JSONValue) -> JSONValue {
            guard case .object(let members) = good else { return good }
            return .object(members.map { $0.0 == name ? ($0.0, value) : $0 })
        }
        #expect(refused(replacing("aud", .string("https://elsewhere.example.com"))) != nil)
        #expect(refused(replacing("iss", .string("https://evil.example.com"))) != nil)
        #expect(refused(replacing("email_verified", .bool(false))) != nil)
        guard case .expired? = refused(good, at: now + 3600 + 61) else {
            Issue.record("an expired token was not refused as expired")
            return
        }
        #expect(refused(replacing("nbf", .number(String(now + 600)))) == nil)  // no nbf member to replace
        guard case .object(var members) = good else { return }
        members.append(("nbf", .number(String(now + 600))))
        guard case .expired? = refused(.object(members)) else {
            Issue.record("a token not yet valid was accepted")
            return
        }
        #expect(refused(good, with: other) != nil)  // a key not in the set
        // alg none: an empty signature, never accepted, whatever the config lists.
        let none =
            JWT.base64URLEncode(Array(#"{"alg":"none","typ":"JWT"}"#.utf8)) + "."
            + JWT.base64URLEncode(Array(#"{"iss":"accounts.google.com"}"#.utf8)) + "."
        #expect(throws: JWT.Failure.self) { try check(none, keys: keys, now: now).get() }
        #expect(throws: JWT.Failure.self) { try check(none + "c2ln", keys: keys, now: now).get() }
        // An RS256 token where only HS256 is configured.
        #expect(throws: JWT.Failure.self) {
            try check(token(good), keys: keys, policy: JWT.Policy(algorithms: [.hs256]), now: now).get()
        }
    }

    @Test(
        "algorithm confusion: an HS256 token whose HMAC key is the RSA public key's PEM is refused, with HS256 and RS256 both configured"
    )
    func algorithmConfusion() throws {
        let signer = RSAPrivateKey()
        let pem = try #require(pemPublicKey(signer.publicKey.derRepresentation))
        let forged = JWT.make(claims: Self.claims([("iss", .string("x"))]), algorithm: .hs256) {
            PreparedHMAC(key: Array(pem.utf8), algorithm: .sha256).authenticationCode(for: $0)
        }
        let keys = [JWT.Key(secret: pem)]
        #expect(throws: JWT.Failure.self) {
            try check(forged, keys: keys, policy: JWT.Policy(algorithms: [.hs256, .rs256])).get()
        }
        // A PEM that is not a public key this reads (a certificate, a private key) is not an
        // HMAC secret either.
        let unreadable = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
        let forgedWithIt = JWT.make(claims: Self.claims([]), algorithm: .hs256) {
            PreparedHMAC(key: Array(unreadable.utf8), algorithm: .sha256).authenticationCode(for: $0)
        }
        #expect(throws: JWT.Failure.self) {
            try check(forgedWithIt, keys: [JWT.Key(secret: unreadable)], policy: JWT.Policy(algorithms: [.hs256])).get()
        }
    }

    @Test("ES256 (r and s, 32 bytes each): accepted with its key, refused when a byte changes; a JWK's x and y make the key")
    func es256() throws {
        let signer = P256PrivateKey()
        let token = JWT.make(claims: Self.claims([("sub", .string("a"))]), algorithm: .es256, keyID: "k1") {
            signer.rawSignature(for: $0)
        }
        #expect(try JWT(parsing: token[...], allowed: [.es256]).keyID == "k1")
        #expect(try check(token, keys: [.ec(signer.publicKey)]).get() == 0)
        // The same key from its uncompressed point, as a JWK gives it.
        let point = Array(signer.publicKey.derRepresentation.suffix(64))
        let fromJWK = try #require(P256PublicKey(x: Array(point.prefix(32)), y: Array(point.suffix(32))))
        #expect(try check(token, keys: [.ec(fromJWK)]).get() == 0)
        var parts = token.split(separator: ".").map(String.init)
        var signature = try #require(Base64.decode(parts[2]))
        signature[5] ^= 0x01
        parts[2] = JWT.base64URLEncode(signature)
        #expect(throws: JWT.Failure.self) { try check(parts.joined(separator: "."), keys: [.ec(signer.publicKey)]).get() }
    }

    @Test("a body hash claim (Vonage's payload_hash): the hex SHA-256 of the body, or refused")
    func bodyHash() throws {
        let body = Array(#"{"status":"delivered"}"#.utf8)
        let secret = Array("vonage-signature-secret".utf8)
        func token(_ hash: String) -> String {
            JWT.make(claims: Self.claims([("payload_hash", .string(hash)), ("iat", .number("1800000000"))]), algorithm: .hs256) {
                PreparedHMAC(key: secret, algorithm: .sha256).authenticationCode(for: $0)
            }
        }
        var policy = JWT.Policy(algorithms: [.hs256])
        policy.bodyHashClaim = "payload_hash"
        let digest = Hex.encode(HashAlgorithm.sha256.hash(body))
        #expect(try check(token(digest), keys: [.hmac(secret)], policy: policy, body: body).get() == 0)
        #expect(throws: JWT.Failure.self) {
            try check(token(digest), keys: [.hmac(secret)], policy: policy, body: body + [0x20]).get()
        }
        #expect(throws: JWT.Failure.self) {
            try check(token(String(repeating: "0", count: 64)), keys: [.hmac(secret)], policy: policy, body: body).get()
        }
    }

    @Test(
        "malformed tokens are refused before any key is tried: two parts, padding or the standard alphabet, JSON that is not an object, over 16 KiB",
        arguments: [
            "a.b", "eyJhbGciOiJIUzI1NiJ9=.e30.c2ln", "eyJhbGciOiJIUzI1NiJ9.e30.c2l+", "WzFd.e30.c2ln",
            "eyJhbGciOiJIUzI1NiJ9.WzFd.c2ln",
            "eyJhbGciOiJIUzI1NiJ9.e30.", String(repeating: "a", count: 16_385),
        ])
    func malformed(token: String) {
        #expect(throws: JWT.Failure.self) { try JWT(parsing: token[...], allowed: Self.all) }
    }

    @Test(
        "the jwt scheme from config: an RS256 key as PEM, issuer and audience, the id from jti and the type webhook; the config errors name their path"
    )
    func scheme() throws {
        let signer = RSAPrivateKey()
        let pem = try #require(pemPublicKey(signer.publicKey.derRepresentation))
        let escaped = pem.replacingOccurrences(of: "\n", with: "\\n")
        let scheme = try catalogScheme(
            #"{"scheme": "jwt", "secrets": ["\#(escaped)"], "algorithms": ["RS256"], "issuer": "https://issuer.example.com", "audience": ["https://hooks.example.com/a"]}"#
        )
        let now: Int64 = 1_800_000_000
        func bearer(_ claims: [(String, JSONValue)]) -> [(String, String)] {
            [
                (
                    "Authorization",
                    "bearer " + JWT.make(claims: Self.claims(claims), algorithm: .rs256) { signer.signature(for: $0) }
                )
            ]
        }
        let good: [(String, JSONValue)] = [
            ("iss", .string("https://issuer.example.com")), ("aud", .string("https://hooks.example.com/a")),
            ("jti", .string("t-1")),
            ("exp", .number(String(now + 60))),
        ]
        #expect(
            try scheme.verify(request(bearer(good), body: "{}", at: now))
                == VerifiedWebhook(id: "t-1", type: "webhook", keyIndex: 0))
        #expect(failureCode(scheme, request([], body: "{}", at: now)) == "signature_missing")
        #expect(failureCode(scheme, request([("Authorization", "Basic dTpw")], body: "{}", at: now)) == "signature_invalid")
        #expect(failureCode(scheme, request(bearer(good), body: "{}", at: now + 600)) == "timestamp_expired")
        #expect(failureCode(scheme, request(bearer(Array(good.dropFirst())), body: "{}", at: now)) == "signature_invalid")

        func problems(_ verify: String) -> String {
            do {
                _ = try catalogScheme(verify)
                return ""
            } catch {
                return "\(error)"
            }
        }
        #expect(problems(#"{"scheme": "jwt", "secrets": ["s"]}"#).contains("sources.s.verify.algorithms"))
        #expect(problems(#"{"scheme": "jwt", "secrets": ["s"], "algorithms": ["none"]}"#).contains("never accepted"))
        #expect(problems(#"{"scheme": "jwt", "secrets": ["s"], "algorithms": ["RS512"]}"#).contains("RS512 is not one of"))
        #expect(
            problems(#"{"scheme": "jwt", "secrets": ["plain"], "algorithms": ["RS256"]}"#).contains("sources.s.verify.secrets[0]")
        )
        #expect(problems(#"{"scheme": "jwt", "secrets": ["s"], "algorithms": ["HS256"], "claims": 1}"#).contains("verify.claims"))
    }

    @Test(
        "a key set's RSA key (n, e) and P-256 key (x, y) are the keys they name; encryption keys, other curves and symmetric keys are left out"
    )
    func keySet() throws {
        let rsa = RSAPrivateKey()
        let rsaJWK = JSONWebKeys.rsa(rsa.publicKey, kid: "r1")
        let n = try #require(rsaJWK["n"]?.scalarText.flatMap { Base64.decode($0) })
        let e = try #require(rsaJWK["e"]?.scalarText.flatMap { Base64.decode($0) })
        #expect(RSAPublicKey(modulus: n, exponent: e)?.derRepresentation == rsa.publicKey.derRepresentation)
        let ec = P256PrivateKey()
        var entries = [rsaJWK, JSONWebKeys.ec(ec.publicKey, kid: "e1")]
        for other in [
            #"{"kty": "RSA", "kid": "r2", "use": "enc", "n": "AQAB", "e": "AQAB"}"#,
            #"{"kty": "EC", "kid": "e2", "crv": "P-384", "x": "AA", "y": "AA"}"#,
            #"{"kty": "oct", "kid": "o1", "k": "c2VjcmV0"}"#,
        ] {
            entries.append(try JSONParser.parse(Array(other.utf8)))
        }
        let set = String(decoding: JSONWebKeys.set(entries), as: UTF8.self)
        let keys = try JSONWebKeySet.parse(Array(set.utf8))
        #expect(keys.byID.map(\.kid) == ["r1", "e1"])
        let token = JWT.make(claims: Self.claims([("sub", .string("a"))]), algorithm: .rs256, keyID: "r1") {
            rsa.signature(for: $0)
        }
        #expect(try check(token, keys: keys.byID.map(\.key)).get() == 0)
        #expect(throws: (any Error).self) { try JSONWebKeySet.parse(Array(#"{"keyz": []}"#.utf8)) }
    }

    @Test(
        "vonage, netlify and monday: tokens made by Python's standard library (not this code) the way their docs describe are accepted; a changed body is refused where the token covers it"
    )
    func presets() throws {
        let body = #"{"id":"5f1e","message_uuid":"aaaaaaaa-bbbb","status":"delivered","event":{"type":"create_pulse"}}"#
        let now: Int64 = 1_800_000_000
        // header.claims.signature with HS256, as PyJWT or jsonwebtoken would make it.
        let script = """
            import base64, hashlib, hmac, json, sys
            secret, body, now, kind = sys.argv[1].encode(), sys.argv[2].encode(), int(sys.argv[3]), sys.argv[4]
            b64 = lambda raw: base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
            digest = hashlib.sha256(body).hexdigest()
            claims = {"iat": now, "exp": now + 300, "jti": "jti-1"}
            if kind == "vonage": claims.update({"iss": "Vonage", "payload_hash": digest, "api_key": "abc"})
            if kind == "netlify": claims.update({"iss": "netlify", "sha256": digest}); claims.pop("jti")
            if kind == "monday": claims.update({"accountId": 1, "userId": 2})
            signing = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode()) + "." + b64(json.dumps(claims).encode())
            print(signing + "." + b64(hmac.new(secret, signing.encode(), hashlib.sha256).digest()))
            """
        func token(_ kind: String, secret: String) throws -> String {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
            process.arguments = ["-c", script, secret, body, String(now), kind]
            let pipe = Pipe()
            process.standardOutput = pipe
            try process.run()
            let output = pipe.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            return String(decoding: output, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        let cases: [(kind: String, header: String, prefix: String, bound: Bool)] = [
            ("vonage", "Authorization", "Bearer ", true), ("netlify", "X-Webhook-Signature", "", true),
            ("monday", "Authorization", "", false),
        ]
        for (kind, header, prefix, bound) in cases {
            let scheme = try catalogScheme(#"{"scheme": "\#(kind)", "secrets": ["\#(kind)-secret"]}"#)
            let headers = [(header, prefix + (try token(kind, secret: "\(kind)-secret")))]
            #expect(failureCode(scheme, request(headers, body: body, at: now + 10)) == nil, "\(kind)")
            #expect(
                failureCode(scheme, request(headers, body: body + " ", at: now + 10)) == (bound ? "signature_invalid" : nil),
                "\(kind)")
            let other = [(header, prefix + (try token(kind, secret: "another-secret")))]
            #expect(failureCode(scheme, request(other, body: body, at: now + 10)) == "signature_invalid", "\(kind)")
            #expect(failureCode(scheme, request(headers, body: body, at: now + 400)) == "timestamp_expired", "\(kind)")
        }
        // monday.com's token read with a Bearer before it too.
        let monday = try catalogScheme(#"{"scheme": "monday", "secrets": ["monday-secret"]}"#)
        let bearer = [("Authorization", "Bearer " + (try token("monday", secret: "monday-secret")))]
        #expect(try monday.verify(request(bearer, body: body, at: now)).type == "create_pulse")
        // netlify's notifications of one deploy (building, ready, failed) share the body's id:
        // the event's id is the token's jti, else the body hash, never the deploy's id.
        let deploy = try catalogScheme(#"{"scheme": "netlify", "secrets": ["netlify-secret"]}"#)
        let signed = [("X-Webhook-Signature", try token("netlify", secret: "netlify-secret"))]
        #expect(try deploy.verify(request(signed, body: body, at: now)).id == nil)
        // netlify's issuer is checked.
        let netlify = try catalogScheme(#"{"scheme": "netlify", "secrets": ["monday-secret"]}"#)
        let mondayToken = [("X-Webhook-Signature", try token("monday", secret: "monday-secret"))]
        #expect(failureCode(netlify, request(mondayToken, body: body, at: now)) == "signature_invalid")
    }

    @Test(
        "review fixes: a crit header is refused; an empty Authorization is signature_missing; a secret holding a PEM that is not a usable public key is a config error"
    )
    func reviewFixes() throws {
        let secret = Array("s".utf8)
        let header = JWT.base64URLEncode(Array(#"{"alg":"HS256","crit":["exp"],"exp":1}"#.utf8))
        let input = header + "." + JWT.base64URLEncode(Array("{}".utf8))
        let crit =
            input + "."
            + JWT.base64URLEncode(PreparedHMAC(key: secret, algorithm: .sha256).authenticationCode(for: Array(input.utf8)))
        #expect(throws: JWT.Failure.self) { try check(crit, keys: [.hmac(secret)]).get() }
        let scheme = try catalogScheme(#"{"scheme": "jwt", "secrets": ["s"], "algorithms": ["HS256"]}"#)
        for value in ["", "Bearer ", "  "] {
            #expect(
                failureCode(scheme, request([("Authorization", value)], body: "{}", at: 1_800_000_000)) == "signature_missing")
        }
        let certificate = "\\n-----BEGIN CERTIFICATE-----\\nMIIB\\n-----END CERTIFICATE-----\\n"
        #expect(throws: (any Error).self) {
            _ = try catalogScheme(#"{"scheme": "jwt", "secrets": ["\#(certificate)"], "algorithms": ["HS256", "RS256"]}"#)
        }
    }

    /// A PEM "PUBLIC KEY" for DER SubjectPublicKeyInfo.
    func pemPublicKey(_ der: [UInt8]) -> String? {
        guard !der.isEmpty else { return nil }
        let base64 = Base64.encode(der)
        var lines: [String] = []
        var index = base64.startIndex
        while index < base64.endIndex {
            let end = base64.index(index, offsetBy: 64, limitedBy: base64.endIndex) ?? base64.endIndex
            lines.append(String(base64[index..<end]))
            index = end
        }
        return "-----BEGIN PUBLIC KEY-----\n" + lines.joined(separator: "\n") + "\n-----END PUBLIC KEY-----\n"
    }
}
