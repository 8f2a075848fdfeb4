import WebhookCrypto
import NIOCore
import NIOHTTP1
import Testing
import WebhookCore
import WebhookEncoding
@testable import WebhookProviders

/// Builds a request as the ingress would hand it to a scheme.
func request(_ headers: [(String, String)], body: String, at seconds: Int64) -> WebhookRequest {
    WebhookRequest(
        headers: HTTPHeaders(headers), body: ByteBuffer(string: body), uri: "/hook",
        receivedAt: Timestamp(secondsSince1970: seconds))
}

func failureCode(_ scheme: any WebhookScheme, _ request: WebhookRequest) -> String? {
    do {
        _ = try scheme.verify(request)
        return nil
    } catch {
        return error.code
    }
}

@Suite("GitHub scheme")
struct GitHubSchemeTests {
    // GitHub's docs, "Validating webhook deliveries": secret "It's a Secret to Everybody",
    // payload "Hello, World!".
    let vector = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    let scheme = RecipeScheme(.github, secrets: ["old secret", "It's a Secret to Everybody"])

    @Test("GitHub's published test vector verifies, with the rotated secret's index")
    func vectorVerifies() throws {
        let verified = try scheme.verify(
            request(
                [("X-Hub-Signature-256", vector), ("X-GitHub-Delivery", "72d3162e"), ("X-GitHub-Event", "push")],
                body: "Hello, World!", at: 0))
        #expect(verified == VerifiedWebhook(id: "72d3162e", type: "push", keyIndex: 1))
    }

    @Test("tampered body, wrong secret, missing and malformed header are 401s with the right code")
    func failures() {
        #expect(
            failureCode(scheme, request([("X-Hub-Signature-256", vector)], body: "Hello, World?", at: 0)) == "signature_invalid")
        #expect(
            failureCode(RecipeScheme(.github, secrets: ["nope"]), request([("X-Hub-Signature-256", vector)], body: "Hello, World!", at: 0))
                == "signature_invalid")
        #expect(failureCode(scheme, request([], body: "Hello, World!", at: 0)) == "signature_missing")
        #expect(
            failureCode(scheme, request([("X-Hub-Signature-256", "sha1=abc")], body: "Hello, World!", at: 0))
                == "signature_invalid")
        #expect(
            failureCode(scheme, request([("X-Hub-Signature-256", "sha256=zz")], body: "Hello, World!", at: 0))
                == "signature_invalid")
    }
}

@Suite("Standard Webhooks scheme")
struct StandardWebhooksSchemeTests {
    // The Standard Webhooks / Svix libraries' test vector.
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    let id = "msg_p5jXN8AQM9LWM0D4loKWxJek"
    let timestamp: Int64 = 1_614_265_330
    let body = #"{"test": 2432232314}"#
    let signature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

    func headers(prefix: String = "webhook", signature: String? = nil, timestamp: Int64? = nil) -> [(String, String)] {
        [
            ("\(prefix)-id", id), ("\(prefix)-timestamp", String(timestamp ?? self.timestamp)),
            ("\(prefix)-signature", signature ?? self.signature),
        ]
    }

    @Test("the library vector verifies under webhook- and svix- headers")
    func vectorVerifies() throws {
        let scheme = try StandardWebhooksScheme(secrets: [secret], toleranceSeconds: 300)
        let verified = try scheme.verify(request(headers(), body: body, at: timestamp))
        #expect(verified.id == id)
        #expect(verified.keyIndex == 0)
        #expect(try scheme.verify(request(headers(prefix: "svix"), body: body, at: timestamp + 10)).id == id)
    }

    @Test("any of several signatures in the header may match any of several secrets")
    func rotation() throws {
        let scheme = try StandardWebhooksScheme(
            secrets: ["whsec_" + Base64.encode(Array("other".utf8)), secret], toleranceSeconds: 300)
        let verified = try scheme.verify(request(headers(signature: "v1,AAAA v2,xyz \(signature)"), body: body, at: timestamp))
        #expect(verified.keyIndex == 1)
    }

    @Test("the event type comes from the body")
    func type() throws {
        var generator = SystemRandomNumberGenerator()
        let key = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let secret = "whsec_" + Base64.encode(key)
        let body = #"{"type": "invoice.paid"}"#
        let mac = HashAlgorithm.sha256.authenticationCode(for: Array("\(id).\(timestamp).\(body)".utf8), using: key)
        let scheme = try StandardWebhooksScheme(secrets: [secret], toleranceSeconds: 300)
        let verified = try scheme.verify(
            request(headers(signature: "v1," + Base64.encode(Array(mac))), body: body, at: timestamp))
        #expect(verified.type == "invoice.paid")
    }

    @Test("v1a Ed25519 signatures verify against a whpk_ key")
    func ed25519() throws {
        let privateKey = Ed25519PrivateKey()
        let publicKey = "whpk_" + Base64.encode(Array(privateKey.publicKey.rawRepresentation))
        let signature = privateKey.signature(for: Array("\(id).\(timestamp).\(body)".utf8))
        let scheme = try StandardWebhooksScheme(secrets: [publicKey], toleranceSeconds: 300)
        let verified = try scheme.verify(
            request(headers(signature: "v1a," + Base64.encode(Array(signature))), body: body, at: timestamp))
        #expect(verified.keyIndex == 0)
        #expect(
            failureCode(
                scheme, request(headers(signature: "v1a," + Base64.encode(Array(signature))), body: body + " ", at: timestamp))
                == "signature_invalid")
    }

    @Test("tampered, wrong secret, missing, malformed and stale requests are refused with the right code")
    func failures() throws {
        let scheme = try StandardWebhooksScheme(secrets: [secret], toleranceSeconds: 300)
        #expect(failureCode(scheme, request(headers(), body: body + " ", at: timestamp)) == "signature_invalid")
        let other = try StandardWebhooksScheme(secrets: ["whsec_" + Base64.encode(Array("x".utf8))], toleranceSeconds: 300)
        #expect(failureCode(other, request(headers(), body: body, at: timestamp)) == "signature_invalid")
        #expect(failureCode(scheme, request(Array(headers().dropLast()), body: body, at: timestamp)) == "signature_missing")
        #expect(failureCode(scheme, request(Array(headers().dropFirst()), body: body, at: timestamp)) == "signature_missing")
        #expect(failureCode(scheme, request(headers(signature: "garbage"), body: body, at: timestamp)) == "signature_invalid")
        #expect(failureCode(scheme, request(headers(), body: body, at: timestamp + 301)) == "timestamp_expired")
        #expect(failureCode(scheme, request(headers(), body: body, at: timestamp - 301)) == "timestamp_expired")
        // A signed timestamp at the edge of Int64 is expired, not an arithmetic trap.
        let key = (Base64.decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")!)
        let extreme = HashAlgorithm.sha256.authenticationCode(for: Array("\(id).\(Int64.min).\(body)".utf8), using: key)
        let signed = headers(signature: "v1," + Base64.encode(Array(extreme)), timestamp: Int64.min)
        #expect(failureCode(scheme, request(signed, body: body, at: timestamp)) == "timestamp_expired")
    }

    @Test("a body whose signature fails is never parsed")
    func forgedBodyNotParsed() throws {
        let scheme = try StandardWebhooksScheme(secrets: [secret], toleranceSeconds: 300)
        let forged = request(headers(), body: "[" + String(repeating: "0,", count: 1000) + "0]", at: timestamp)
        #expect(failureCode(scheme, forged) == "signature_invalid")
        #expect(forged.json.isJSON == nil)
        let genuine = request(headers(), body: body, at: timestamp)
        _ = try scheme.verify(genuine)
        #expect(genuine.json.isJSON == true)
    }
}

@Suite("Generic hmac scheme")
struct HMACSchemeTests {
    func settings() throws -> Recipe {
        var settings = Recipe(header: "X-Acme-Signature")
        settings.prefix = "sha512="
        settings.proof = .hmac(.sha512, .base64)
        settings.timestampHeader = "X-Acme-Timestamp"
        settings.signedContent = try Recipe.SignedContent(parsing: "{timestamp}:{id}:{body}")
        settings.id = .header("X-Acme-Id")
        settings.type = .pointer("/kind")
        return settings
    }

    func sign(_ body: String, timestamp: Int64, id: String, secret: String) -> String {
        let mac = HashAlgorithm.sha512.authenticationCode(
            for: Array("\(timestamp):\(id):\(body)".utf8), using: (Array(secret.utf8)))
        return "sha512=" + Base64.encode(Array(mac))
    }

    @Test("configured header, prefix, algorithm, encoding, signed content, id and type are honoured")
    func configured() throws {
        let scheme = RecipeScheme(name: "hmac", recipe: try settings(), secrets: ["k0", "k1"], toleranceSeconds: 60)
        let body = #"{"kind": "order.created"}"#
        let verified = try scheme.verify(
            request(
                [
                    ("X-Acme-Signature", sign(body, timestamp: 1000, id: "e-9", secret: "k1")), ("X-Acme-Timestamp", "1000"),
                    ("X-Acme-Id", "e-9"),
                ],
                body: body, at: 1030))
        #expect(verified == VerifiedWebhook(id: "e-9", type: "order.created", keyIndex: 1))
        #expect(
            failureCode(
                scheme,
                request(
                    [
                        ("X-Acme-Signature", sign(body, timestamp: 1000, id: "e-9", secret: "k1")), ("X-Acme-Timestamp", "1000"),
                        ("X-Acme-Id", "e-8"),
                    ],
                    body: body, at: 1030)) == "signature_invalid")
        #expect(
            failureCode(
                scheme,
                request(
                    [
                        ("X-Acme-Signature", sign(body, timestamp: 1000, id: "e-9", secret: "k1")), ("X-Acme-Timestamp", "1000"),
                        ("X-Acme-Id", "e-9"),
                    ],
                    body: body, at: 1061)) == "timestamp_expired")
        #expect(
            failureCode(scheme, request([("X-Acme-Timestamp", "1000"), ("X-Acme-Id", "e-9")], body: body, at: 1000))
                == "signature_missing")
        #expect(
            failureCode(
                scheme, request([("X-Acme-Signature", "sha256=AAAA"), ("X-Acme-Timestamp", "1000")], body: body, at: 1000))
                == "signature_invalid")
    }

    @Test("defaults: hex SHA-256 of the body in the header as it is")
    func defaults() throws {
        let scheme = RecipeScheme(name: "hmac", recipe: Recipe(header: "X-Sig"), secrets: ["k"], toleranceSeconds: 300)
        let mac = Hex.encode(
            HashAlgorithm.sha256.authenticationCode(for: Array("hello".utf8), using: (Array("k".utf8))))
        let verified = try scheme.verify(request([("X-Sig", mac)], body: "hello", at: 0))
        #expect(verified == VerifiedWebhook(id: nil, type: nil, keyIndex: 0))
        #expect(failureCode(scheme, request([("X-Sig", mac.uppercased())], body: "hello!", at: 0)) == "signature_invalid")
    }

    @Test("signedContent must contain {body} and only known placeholders", arguments: ["{timestamp}", "{body}{nonce}", "{body"])
    func badSignedContent(text: String) {
        #expect(throws: TemplateError.self) { try Recipe.SignedContent(parsing: text) }
    }
}

@Suite("Random input never verifies")
struct VerifierFuzzTests {
    @Test("random and mutated headers: no crash, no acceptance")
    func fuzz() throws {
        var generator = SystemRandomNumberGenerator()
        let schemes: [any WebhookScheme] = [
            RecipeScheme(.github, secrets: ["s"]),
            try StandardWebhooksScheme(secrets: ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"], toleranceSeconds: 300),
            RecipeScheme(name: "hmac", recipe: Recipe(header: "X-Sig"), secrets: ["s"], toleranceSeconds: 300),
        ]
        let names = ["X-Hub-Signature-256", "webhook-id", "webhook-timestamp", "webhook-signature", "X-Sig"]
        let alphabet = Array("sha256=v1,v1a, 0123456789abcdefABCDEF+/=_-whsec".utf8)
        for _ in 0..<3000 {
            var headers: [(String, String)] = []
            for name in names where Bool.random(using: &generator) {
                let length = Int.random(in: 0..<90, using: &generator)
                let value = (0..<length).map { _ in alphabet.randomElement(using: &generator)! }
                headers.append((name, String(decoding: value, as: UTF8.self)))
            }
            if Bool.random(using: &generator) { headers.append(("webhook-timestamp", "1614265330")) }
            for scheme in schemes {
                #expect(failureCode(scheme, request(headers, body: "{}", at: 1_614_265_330)) != nil)
            }
        }
    }
}
