import BridgeTestSupport
import WebhookBridge
import WebhookCrypto
import NIOCore
import NIOHTTP1
import Testing
import WebhookCore
import WebhookEncoding
import WebhookProviders

@Suite("Signing: what sign produces verifies, for every scheme")
struct SignerTests {
    let now: Int64 = 1_764_000_000

    func verifyRequest(_ fixture: SchemeFixture, headers: [(String, String)], uri: String, body: [UInt8]) -> WebhookRequest {
        var all = HTTPHeaders(headers)
        all.add(name: "Content-Type", value: "application/json")
        return WebhookRequest(headers: all, body: ByteBuffer(bytes: body), uri: uri, receivedAt: Timestamp(secondsSince1970: now))
    }

    @Test("every provider sign can sign for has a fixture here, or a reason it is tested elsewhere")
    func everySignableProvider() {
        let fixtured = Set(SchemeFixture.all().map(\.scheme))
        let signable = Set(ProviderRegistry.all.filter(\.canSign).map(\.name))
        #expect(signable.subtracting(fixtured).subtracting(SchemeFixture.notGenerated.keys).isEmpty)
        #expect(fixtured.count >= 20, "\(fixtured.sorted())")
    }

    @Test("sign's headers verify", arguments: SchemeFixture.all())
    func roundTrip(fixture: SchemeFixture) throws {
        let body = SchemeFixture.body(at: now)
        let (headers, uri) = try fixture.signed(body: body, at: now)
        let verified = try fixture.verifier().verify(verifyRequest(fixture, headers: headers, uri: uri, body: body))
        #expect(verified.keyIndex == 0)
    }

    @Test("a changed body, a truncated signature or a missing signature header never verifies", arguments: SchemeFixture.all())
    func mutations(fixture: SchemeFixture) throws {
        let body = SchemeFixture.body(at: now)
        let (headers, uri) = try fixture.signed(body: body, at: now)
        let verifier = try fixture.verifier()
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<200 {
            var mutatedBody = body
            let position = Int.random(in: 0..<body.count, using: &generator)
            mutatedBody[position] ^= UInt8.random(in: 1...255, using: &generator)
            if !SchemeFixture.tokenSchemes.contains(fixture.scheme) {  // a token does not cover the body
                #expect(failureCode(verifier, verifyRequest(fixture, headers: headers, uri: uri, body: mutatedBody)) != nil)
            }
            // Base64 padding is optional when decoding, so cut into the characters before it.
            let truncated = headers.map { name, value in
                guard name.lowercased() == fixture.signatureHeader.lowercased() else { return (name, value) }
                let unpadded = value.reversed().drop { $0 == "=" }.reversed()
                return (name, String(unpadded.dropLast(Int.random(in: 1...max(1, unpadded.count / 2), using: &generator))))
            }
            #expect(failureCode(verifier, verifyRequest(fixture, headers: truncated, uri: uri, body: body)) != nil)
        }
        let without = headers.filter { $0.0.lowercased() != fixture.signatureHeader.lowercased() }
        #expect(failureCode(verifier, verifyRequest(fixture, headers: without, uri: uri, body: body)) == "signature_missing")
    }

    @Test("a wrong secret is signature_invalid; a stale signed timestamp is timestamp_expired", arguments: SchemeFixture.all())
    func wrongSecretAndStale(fixture: SchemeFixture) throws {
        let verifier = try fixture.verifier()
        let body = SchemeFixture.body(at: now)
        let other = SchemeFixture.all().first {
            $0.scheme == fixture.scheme && $0.signSecret.hasPrefix("whsk_") == fixture.signSecret.hasPrefix("whsk_")
        }!
        let wrongSecret: String
        switch fixture.scheme {
        case "sendgrid", "discord": wrongSecret = other.signSecret  // a fresh key pair: same kind, other key
        case "standard-webhooks" where fixture.signSecret.hasPrefix("whsk_"): wrongSecret = other.signSecret
        case "standard-webhooks", "svix": wrongSecret = "whsec_b3RoZXI="
        default: wrongSecret = fixture.signSecret + "-other"
        }
        let wrong = try WebhookSigner.sign(
            scheme: fixture.scheme, .init(body: body, secret: wrongSecret, timestamp: now, url: fixture.url))
        let uri = (wrong.url ?? "").firstIndex(of: "?").map { "/s" + wrong.url![$0...] } ?? "/s"
        #expect(
            failureCode(verifier, verifyRequest(fixture, headers: wrong.headers, uri: uri, body: body)) == "signature_invalid")

        // Signed an hour ago: a scheme that signs a timestamp refuses it, any other accepts it.
        let then = now - 3600
        let staleBody = SchemeFixture.body(at: then)
        let (headers, staleURI) = try fixture.signed(body: staleBody, at: then)
        let code = failureCode(verifier, verifyRequest(fixture, headers: headers, uri: staleURI, body: staleBody))
        #expect(code == (SchemeFixture.timestamped.contains(fixture.scheme) ? "timestamp_expired" : nil), "\(fixture.scheme)")
    }

    @Test("random header values never verify and never crash", arguments: SchemeFixture.all())
    func randomHeaders(fixture: SchemeFixture) throws {
        let body = SchemeFixture.body(at: now)
        let (headers, uri) = try fixture.signed(body: body, at: now)
        let verifier = try fixture.verifier()
        let alphabet = Array("tv01=,;: +/_-abcdefABCDEF0123456789whsecv0v1a".utf8)
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<300 {
            let random = headers.map { name, value in
                (
                    name,
                    String(
                        decoding: (0..<Int.random(in: 0..<100, using: &generator)).map { _ in
                            alphabet.randomElement(using: &generator)!
                        }, as: UTF8.self)
                )
            }
            // Timestamps and ids may stay; only the signature itself must change.
            let mixed = zip(headers, random).map { original, noise in
                original.0.lowercased() == fixture.signatureHeader.lowercased()
                    ? noise : (Bool.random(using: &generator) ? noise : original)
            }
            let request = verifyRequest(fixture, headers: mixed, uri: uri, body: body)
            if mixed.first(where: { $0.0.lowercased() == fixture.signatureHeader.lowercased() })?.1
                != headers.first(where: { $0.0.lowercased() == fixture.signatureHeader.lowercased() })?.1
            {
                #expect(failureCode(verifier, request) != nil)
            }
        }
    }
}

extension SchemeFixture: CustomTestStringConvertible {}
