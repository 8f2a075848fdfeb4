import WebhookBridge
import WebhookCrypto
import NIOCore
import NIOHTTP1
import Testing
import WebhookCore
import WebhookEncoding
import WebhookProviders

/// Keys and settings for signing and verifying every scheme in the tests.
struct SchemeFixture {
    let scheme: String
    /// What the config holds (public keys for the asymmetric schemes).
    let verifySecret: String
    /// What the provider holds.
    let signSecret: String
    /// The header that carries the signature (or token).
    let signatureHeader: String
    let url: String?

    static let body = Array(
        #"{"id":"evt_1","type":"thing.happened","event_id":"e_1","event_type":"thing.happened","event":"thing.happened","webhookTimestamp":TS000}"#
            .utf8)

    /// A fixture for every provider of the registry that `sign` can sign for: those below
    /// need keys of their own kind or a URL; every other one is signed and verified with a
    /// plain secret (and its `publicUrl` when it takes one), so a new provider is covered
    /// by these tests as soon as it is in the registry.
    static func all() -> [SchemeFixture] {
        let special = specials()
        let named = Set(special.map(\.scheme)).union(notGenerated.keys)
        let generated = ProviderRegistry.all.filter { $0.canSign && !named.contains($0.name) }.map { provider in
            let secret = "fx-\(provider.name)"
            let url = provider.keys.contains("publicUrl") ? "https://hooks.example.com/\(provider.name)" : nil
            let probe = SchemeFixture(
                scheme: provider.name, verifySecret: secret, signSecret: secret, signatureHeader: "", url: url)
            // The header that carries the signature: the one of sign's headers the verifier reads it
            // from, or (a scheme with an unsigned handshake names none) the catalog's description starts with.
            let described = provider.signature.split(separator: ":").first.map(String.init) ?? ""
            let names = Set((((try? probe.verifier())?.signatureHeaders ?? []) + [described]).map { $0.lowercased() })
            let signed = (try? probe.signed(body: body, at: 1_764_000_000))?.headers ?? []
            let header = signed.first { names.contains($0.0.lowercased()) }?.0 ?? "none found for \(provider.name)"
            return SchemeFixture(
                scheme: provider.name, verifySecret: secret, signSecret: secret, signatureHeader: header, url: url)
        }
        return special + generated
    }

    /// Providers `sign` can sign for that these fixtures leave to their own tests, each with
    /// the reason; any other provider of the registry gets a fixture.
    static let notGenerated: [String: String] = [
        "none": "no signature",
        "hmac": "needs header settings in verify (HMACTests)",
        "meta": "needs verifyToken in verify (HandshakeProviderTests)",
        "event-grid": "a query-parameter secret, not a header (CatalogTests)",
        "mailgun": "signs inside the body (CatalogTests, MailgunReplayTests)",
    ]

    /// Schemes that sign a timestamp and refuse one outside the tolerance.
    static let timestamped: Set<String> = [
        "stripe", "standard-webhooks", "svix", "slack", "paddle", "zoom", "sendgrid", "discord", "linear", "box", "calendly",
        "hubspot", "mux", "twitch", "zendesk",
    ]

    /// Schemes whose secret travels as it is (a token) rather than signing the body.
    static let tokenSchemes: Set<String> = ["gitlab", "basic", "okta", "telegram", "token"]

    static func specials() -> [SchemeFixture] {
        let sendgrid = P256PrivateKey()
        let discord = Ed25519PrivateKey()
        let ed25519 = Ed25519PrivateKey()
        return [
            .init(
                scheme: "stripe", verifySecret: "whsec_s", signSecret: "whsec_s", signatureHeader: "Stripe-Signature", url: nil),
            .init(scheme: "github", verifySecret: "g", signSecret: "g", signatureHeader: "X-Hub-Signature-256", url: nil),
            .init(
                scheme: "standard-webhooks", verifySecret: "whsec_c2VjcmV0", signSecret: "whsec_c2VjcmV0",
                signatureHeader: "webhook-signature", url: nil),
            .init(
                scheme: "standard-webhooks", verifySecret: "whpk_" + Base64.encode(Array(ed25519.publicKey.rawRepresentation)),
                signSecret: "whsk_" + Base64.encode(ed25519.seed), signatureHeader: "webhook-signature",
                url: nil),
            .init(
                scheme: "svix", verifySecret: "whsec_c2VjcmV0", signSecret: "whsec_c2VjcmV0", signatureHeader: "svix-signature",
                url: nil),
            .init(scheme: "slack", verifySecret: "sl", signSecret: "sl", signatureHeader: "X-Slack-Signature", url: nil),
            .init(scheme: "shopify", verifySecret: "sh", signSecret: "sh", signatureHeader: "X-Shopify-Hmac-Sha256", url: nil),
            .init(
                scheme: "twilio", verifySecret: "tw", signSecret: "tw", signatureHeader: "X-Twilio-Signature",
                url: "https://hooks.example.com/twilio"),
            .init(scheme: "paddle", verifySecret: "pd", signSecret: "pd", signatureHeader: "Paddle-Signature", url: nil),
            .init(
                scheme: "square", verifySecret: "sq", signSecret: "sq", signatureHeader: "x-square-hmacsha256-signature",
                url: "https://hooks.example.com/square"),
            .init(scheme: "gitlab", verifySecret: "gl", signSecret: "gl", signatureHeader: "X-Gitlab-Token", url: nil),
            .init(scheme: "linear", verifySecret: "ln", signSecret: "ln", signatureHeader: "Linear-Signature", url: nil),
            .init(scheme: "zoom", verifySecret: "zm", signSecret: "zm", signatureHeader: "x-zm-signature", url: nil),
            .init(
                scheme: "sendgrid", verifySecret: Base64.encode(Array(sendgrid.publicKey.derRepresentation)),
                signSecret: Base64.encode(Array(sendgrid.derRepresentation)), signatureHeader: SendGridFixture.signatureHeader,
                url: nil),
            .init(
                scheme: "discord", verifySecret: Hex.encode(discord.publicKey.rawRepresentation),
                signSecret: Hex.encode(discord.seed),
                signatureHeader: "X-Signature-Ed25519", url: nil),
        ]
    }

    /// The body with `webhookTimestamp` set to `now` (Linear signs its timestamp in the body).
    static func body(at now: Int64) -> [UInt8] {
        Array(String(decoding: body, as: UTF8.self).replacing("TS000", with: String(now * 1000)).utf8)
    }

    /// The verifier the config would build.
    func verifier() throws -> any WebhookScheme {
        let publicUrl = url.map { #", "publicUrl": "\#($0)""# } ?? ""
        let text = """
            {"sinks": {"a": {"type": "file", "path": "x"}},
             "sources": {"s": {"path": "/s", "sinks": ["a"],
                               "verify": {"scheme": "\(scheme)", "secrets": ["\(verifySecret)"]\(publicUrl)}}}}
            """
        return try #require(try Bridge.loadConfig(Array(text.utf8), environment: [:]).sources["s"]).scheme
    }

    func signed(body: [UInt8], at now: Int64) throws -> (headers: [(String, String)], uri: String) {
        let output = try WebhookSigner.sign(scheme: scheme, .init(body: body, secret: signSecret, timestamp: now, url: url))
        let signedURL = output.url ?? url ?? "/s"
        let uri = signedURL.firstIndex(of: "?").map { "/s" + signedURL[$0...] } ?? "/s"
        return (output.headers, uri)
    }
}

enum SendGridFixture {
    static let signatureHeader = "X-Twilio-Email-Event-Webhook-Signature"
}

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

extension SchemeFixture: CustomTestStringConvertible {
    var testDescription: String { scheme + (signSecret.hasPrefix("whsk_") ? " (Ed25519)" : "") }
}
