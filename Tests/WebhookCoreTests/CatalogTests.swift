import WebhookBridge
import WebhookCrypto
import Foundation
import NIOCore
import NIOHTTP1
import Testing
import WebhookCore
import WebhookEncoding
@testable import WebhookProviders

/// A source's scheme as the config loader builds it from a `verify` object.
func catalogScheme(_ verify: String) throws -> any WebhookScheme {
    let text = """
        {"sinks": {"a": {"type": "file", "path": "./x.jsonl"}}, "spool": {"directory": "./spool"},
         "sources": {"s": {"path": "/s", "verify": \(verify), "sinks": ["a"]}}}
        """
    return try Bridge.loadConfig(Array(text.utf8), environment: [:]).sources["s"]!.scheme
}

@Suite("Recipes: one description of a provider drives its verifier, its signer and its catalog line")
struct RecipeTests {
    @Test("a recipe provider's header, id and type can be renamed in verify, without a new release")
    func overrides() throws {
        let scheme = try catalogScheme(
            #"{"scheme": "github", "secrets": ["s"], "header": "X-Hub-Signature-Next", "idHeader": "X-Next-Delivery", "typePointer": "/action"}"#
        )
        let body = #"{"action": "opened"}"#
        let signature =
            "sha256=" + Hex.encode(HashAlgorithm.sha256.authenticationCode(for: Array(body.utf8), using: Array("s".utf8)))
        let headers = [("X-Hub-Signature-Next", signature), ("X-Next-Delivery", "d-1"), ("X-GitHub-Delivery", "ignored")]
        let verified = try scheme.verify(request(headers, body: body, at: 0))
        #expect(verified == VerifiedWebhook(id: "d-1", type: "opened", keyIndex: 0))
        // The default header is no longer read.
        #expect(failureCode(scheme, request([("X-Hub-Signature-256", signature)], body: body, at: 0)) == "signature_missing")
        #expect(throws: ConfigError.self) { try catalogScheme(#"{"scheme": "stripe", "secrets": ["s"], "idPointer": "id"}"#) }
    }

    @Test("a missing timestamp header is signature_missing even beside a malformed signature (Slack, Zendesk, hmac)")
    func missingBeforeInvalid() throws {
        let cases = [
            (#"{"scheme": "slack", "secrets": ["s"]}"#, "X-Slack-Signature"),
            (#"{"scheme": "zendesk", "secrets": ["s"]}"#, "X-Zendesk-Webhook-Signature"),
            (
                #"{"scheme": "hmac", "secrets": ["s"], "header": "X-Sig", "timestampHeader": "X-Ts", "signedContent": "{timestamp}.{body}"}"#,
                "X-Sig"
            ),
        ]
        for (verify, header) in cases {
            let scheme = try catalogScheme(verify)
            #expect(
                failureCode(scheme, request([(header, "not a signature!")], body: "{}", at: 0)) == "signature_missing",
                "\(verify)")
        }
    }

    @Test("a configured type keeps the provider's constant fallback (zendesk); an index pointer reads an array body")
    func fieldSources() throws {
        let zendesk = try catalogScheme(#"{"scheme": "zendesk", "secrets": ["s"], "typePointer": "/kind"}"#)
        let time = "2025-11-29T14:00:00Z"
        let at = Timestamp(rfc3339: time)!.secondsSince1970
        func signed(_ body: String) -> WebhookRequest {
            let mac = HashAlgorithm.sha256.authenticationCode(for: Array((time + body).utf8), using: Array("s".utf8))
            let headers = [("X-Zendesk-Webhook-Signature", Base64.encode(mac)), ("X-Zendesk-Webhook-Signature-Timestamp", time)]
            return request(headers, body: body, at: at)
        }
        #expect(try zendesk.verify(signed(#"{"id": "z-1", "type": "ignored"}"#)).type == "zendesk")
        #expect(try zendesk.verify(signed(#"{"id": "z-1", "kind": "k"}"#)).type == "k")

        let hmac = try catalogScheme(#"{"scheme": "hmac", "secrets": ["s"], "header": "X-Sig", "idPointer": "/0"}"#)
        let array = #"["first", "second"]"#
        let signature = Hex.encode(HashAlgorithm.sha256.authenticationCode(for: Array(array.utf8), using: Array("s".utf8)))
        #expect(try hmac.verify(request([("X-Sig", signature)], body: array, at: 0)).id == "first")
    }

    @Test("every recipe provider's catalog line is its recipe's: signature header, id and type sources")
    func describedByRecipe() throws {
        let recipes = ProviderRegistry.all.filter { $0.recipe != nil }
        #expect(recipes.count >= 20, "\(recipes.map(\.name))")
        for provider in recipes {
            let recipe = try #require(provider.recipe)
            #expect(provider.signature.hasPrefix(recipe.header), "\(provider.name): \(provider.signature)")
            #expect(provider.keys == Provider.recipeKeys, "\(provider.name)")
            #expect(provider.canSign)
            if case .header(let name)? = recipe.id.places.first { #expect(provider.id.hasPrefix(name)) }
            if case .pointer(let pointer)? = recipe.type.places.first {
                #expect(provider.type.hasPrefix("body " + pointer.dropFirst().replacing("/", with: ".")), "\(provider.name)")
            }
        }
    }
}

@Suite("Provider vectors from the providers' own SDKs")
struct CatalogVectorTests {
    @Test("razorpay: razorpay-node's and razorpay-java's validateWebhookSignature vector")
    func razorpay() throws {
        // razorpay/razorpay-node test/utils/razorpay-utils.spec.js; razorpay-java UtilsTest.verifyWebhookSignature.
        let scheme = try catalogScheme(#"{"scheme": "razorpay", "secrets": ["123456"]}"#)
        let body = #"{"a":1,"b":2,"c":{"d":3}}"#
        let good = [("X-Razorpay-Signature", "2fe04e22977002e6c7cb553adab8b460cb9e2a4970d5953cb27a8472752e3bbc")]
        #expect(failureCode(scheme, request(good, body: body, at: 0)) == nil)
        #expect(failureCode(scheme, request([("X-Razorpay-Signature", "sdfafds")], body: body, at: 0)) == "signature_invalid")
    }

    @Test("pagerduty: go-pagerduty's webhookv3 TestVerifySignature vector, alone and among several v1= values")
    func pagerduty() throws {
        // PagerDuty/go-pagerduty webhookv3/webhookv3_test.go (defaultBody, the secret and both signatures).
        let scheme = try catalogScheme(
            #"{"scheme": "pagerduty", "secrets": ["lDQHScfUeXUKaQRNF+8XIiDKZ7XX3itBAYzwU0TARw8lJqRnkKl2iB1anSb0Z+IK"]}"#)
        let body = Self.pagerdutyBody
        let valid = "v1=0c0b9495b893a39e70d1fea2fe11fbe0a825f88b9f67846f6cc07dd2bc5476cd"
        let invalid = "v1=7020c8a7ec668a9b7012bc3dd82e483394b038f4230acc6785efbf2a7d8bcaf5"
        let verified = try scheme.verify(request([("X-PagerDuty-Signature", valid)], body: body, at: 0))
        #expect(verified.type == "incident.priority_updated")
        #expect(failureCode(scheme, request([("X-PagerDuty-Signature", invalid)], body: body, at: 0)) == "signature_invalid")
        #expect(failureCode(scheme, request([("X-PagerDuty-Signature", invalid + "," + valid)], body: body, at: 0)) == nil)
    }

    @Test(
        "clerk and resend: the Standard Webhooks libraries' signing vector, with svix- headers", arguments: ["clerk", "resend"])
    func standardWebhooksAliases(scheme name: String) throws {
        // standard-webhooks/standard-webhooks libraries/python/tests/test_webhooks.py test_sign_function.
        let scheme = try catalogScheme(#"{"scheme": "\#(name)", "secrets": ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]}"#)
        let headers = [
            ("svix-id", "msg_p5jXN8AQM9LWM0D4loKWxJek"), ("svix-timestamp", "1614265330"),
            ("svix-signature", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="),
        ]
        let verified = try scheme.verify(request(headers, body: #"{"test": 2432232314}"#, at: 1_614_265_330))
        #expect(verified.id == "msg_p5jXN8AQM9LWM0D4loKWxJek")
        #expect(scheme.name == name)
        let tampered = headers.map { $0.0 == "svix-signature" ? ($0.0, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLawdd") : $0 }
        #expect(failureCode(scheme, request(tampered, body: #"{"test": 2432232314}"#, at: 1_614_265_330)) == "signature_invalid")
    }

    @Test("hubspot: hubspot-api-python's get_signature v3 vector")
    func hubspot() throws {
        // HubSpot/hubspot-api-python tests/spec/utils/test_signature.py test_get_signature__v3.
        let scheme = try catalogScheme(
            #"{"scheme": "hubspot", "secrets": ["yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy"], "publicUrl": "https://www.example.com/webhook_uri", "toleranceSeconds": 300}"#
        )
        let headers = [
            ("X-HubSpot-Signature-v3", "K36dawei4A+QBNolUOqo7s91KQDWQ5MXZ/QufNYuk/Y="),
            ("X-HubSpot-Request-Timestamp", "1693657560000"),
        ]
        let body = "{'example_field':'example_value'}"
        #expect(failureCode(scheme, request(headers, body: body, at: 1_693_657_600)) == nil)
        #expect(failureCode(scheme, request(headers, body: body, at: 1_693_667_560)) == "timestamp_expired")
        let elsewhere = try catalogScheme(
            #"{"scheme": "hubspot", "secrets": ["yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy"], "publicUrl": "https://www.example.com/other"}"#
        )
        #expect(failureCode(elsewhere, request(headers, body: body, at: 1_693_657_600)) == "signature_invalid")
    }

    @Test("mailgun: the signature in a JSON body or in form fields; stale, forged and missing refused")
    func mailgun() throws {
        let scheme = try catalogScheme(#"{"scheme": "mailgun", "secrets": ["key-signing"]}"#)
        let timestamp = "1764424800"
        let token = "a8ce0edb2dd8301dee6c2405235584e45aa91d1e9f979f3de0"
        func mac(_ key: String) -> String {
            Hex.encode(HashAlgorithm.sha256.authenticationCode(for: Array((timestamp + token).utf8), using: (Array(key.utf8))))
        }
        let json =
            #"{"signature": {"timestamp": "\#(timestamp)", "token": "\#(token)", "signature": "\#(mac("key-signing"))"}, "event-data": {"id": "ev-1", "event": "delivered"}}"#
        let verified = try scheme.verify(request([], body: json, at: 1_764_424_900))
        #expect(verified.id == "ev-1")
        #expect(verified.type == "delivered")
        #expect(failureCode(scheme, request([], body: json, at: 1_764_434_800)) == "timestamp_expired")
        let forged = json.replacingOccurrences(of: mac("key-signing"), with: mac("key-other"))
        #expect(failureCode(scheme, request([], body: forged, at: 1_764_424_900)) == "signature_invalid")
        // The token is what makes the signature single-use: the scheme hands its digest to the
        // pipeline, which claims it in the idempotency store (MailgunReplayTests).
        let digest = "mailgun:" + Hex.encode(Array(HashAlgorithm.sha256.hash(Array(token.utf8))))
        #expect(verified.singleUseToken == digest)
        let replayed = json.replacingOccurrences(of: "delivered", with: "complained")
        #expect(try scheme.verify(request([], body: replayed, at: 1_764_424_950)).singleUseToken == digest)
        let formToken = "f" + token.dropFirst()
        func formMAC(_ key: String) -> String {
            Hex.encode(
                HashAlgorithm.sha256.authenticationCode(for: Array((timestamp + formToken).utf8), using: (Array(key.utf8))))
        }
        let form = "timestamp=\(timestamp)&token=\(formToken)&signature=\(formMAC("key-signing"))&event=opened"
        #expect(try scheme.verify(request([], body: form, at: 1_764_424_900)).type == "opened")
        #expect(failureCode(scheme, request([], body: #"{"event-data": {}}"#, at: 1_764_424_900)) == "signature_missing")
        // sign puts the signature into the body, JSON or form; it verifies, and not with another key.
        for plain in [#"{"event-data": {"id": "ev-2", "event": "clicked"}}"#, "event=clicked&recipient=a%40b.example"] {
            let signed = try WebhookSigner.sign(
                scheme: "mailgun", .init(body: Array(plain.utf8), secret: "key-signing", timestamp: 1_764_424_800))
            let body = String(decoding: try #require(signed.body), as: UTF8.self)
            #expect(try scheme.verify(request([], body: body, at: 1_764_424_800)).type == "clicked")
            let other = try WebhookSigner.sign(
                scheme: "mailgun", .init(body: Array(plain.utf8), secret: "key-other", timestamp: 1_764_424_800))
            #expect(
                failureCode(scheme, request([], body: String(decoding: other.body ?? [], as: UTF8.self), at: 1_764_424_800))
                    == "signature_invalid")
        }
    }

    @Test(
        "box: box-node-sdk's validateMessage vector, with the primary key, the secondary key, either header; other values of the version and algorithm headers refused as the SDK refuses them; sign sends every header Box sends"
    )
    func box() throws {
        // box/box-node-sdk tests/lib/managers/webhooks-test.js validateMessage(): signed with
        // 'SamplePrimaryKey' and 'SampleSecondaryKey'.
        let body =
            #"{"type":"webhook_event","webhook":{"id":"1234567890"},"trigger":"FILE.UPLOADED","source":{"id":"1234567890","type":"file","name":"Test.txt"}}"#
        let headers = [
            ("BOX-DELIVERY-TIMESTAMP", "2020-01-01T00:00:00-07:00"),
            ("BOX-SIGNATURE-PRIMARY", "6TfeAW3A1PASkgboxxA5yqHNKOwFyMWuEXny/FPD5hI="),
            ("BOX-SIGNATURE-SECONDARY", "v+1CD1Jdo3muIcbpv5lxxgPglOqMfsNHPV899xWYydo="),
            ("BOX-SIGNATURE-VERSION", "1"), ("BOX-SIGNATURE-ALGORITHM", "HmacSHA256"),
            ("BOX-DELIVERY-ID", "f96bb54b-ee16-4fc5-aa65-8c2d9e5b546f"),
        ]
        let at: Int64 = 1_577_862_000 + 60  // 2020-01-01T07:01:00Z
        let both = try catalogScheme(#"{"scheme": "box", "secrets": ["SamplePrimaryKey", "SampleSecondaryKey"]}"#)
        #expect(
            try both.verify(request(headers, body: body, at: at)) == VerifiedWebhook(id: nil, type: "FILE.UPLOADED", keyIndex: 0))
        // Only the secondary key configured: the secondary header matches.
        let secondary = try catalogScheme(#"{"scheme": "box", "secrets": ["SampleSecondaryKey"]}"#)
        #expect(failureCode(secondary, request(headers, body: body, at: at)) == nil)
        let wrong = try catalogScheme(#"{"scheme": "box", "secrets": ["IncorrectKey"]}"#)
        #expect(failureCode(wrong, request(headers, body: body, at: at)) == "signature_invalid")
        // Ten years later the same message is stale.
        #expect(failureCode(both, request(headers, body: body, at: at + 315_360_000)) == "timestamp_expired")
        // The SDK computes no signature unless the version is 1 and the algorithm HmacSHA256:
        // a message with others is refused though its MAC matches. One without them is taken
        // (the documented signature does not cover them).
        for name in ["BOX-SIGNATURE-VERSION", "BOX-SIGNATURE-ALGORITHM"] {
            let without = headers.filter { $0.0 != name }
            #expect(failureCode(both, request(without, body: body, at: at)) == nil, "\(name)")
            let other = without + [(name, name.hasSuffix("VERSION") ? "2" : "HmacSHA512")]
            #expect(failureCode(both, request(other, body: body, at: at)) == "signature_invalid", "\(name)")
        }
        // What `sign` sends for Box: every header Box sends, and they verify.
        let signed = try WebhookSigner.sign(
            scheme: "box", .init(body: Array(body.utf8), secret: "SamplePrimaryKey", timestamp: at, id: "d-1"))
        #expect(
            Set(signed.headers.map { $0.0 }) == [
                "BOX-SIGNATURE-PRIMARY", "BOX-DELIVERY-TIMESTAMP", "BOX-DELIVERY-ID", "BOX-SIGNATURE-VERSION",
                "BOX-SIGNATURE-ALGORITHM",
            ])
        #expect(signed.headers.contains { $0 == ("BOX-SIGNATURE-VERSION", "1") })
        #expect(signed.headers.contains { $0 == ("BOX-SIGNATURE-ALGORITHM", "HmacSHA256") })
        #expect(failureCode(both, request(signed.headers, body: body, at: at)) == nil)
    }

    static let pagerdutyBody =
        #"{"event":{"id":"01BWDWL3NYY7LUFPZCC28QUCMK","event_type":"incident.priority_updated","resource_type":"incident","occurred_at":"2021-04-26T17:36:27.458Z","agent":{"html_url":"https://acme.pagerduty.com/users/PLH1HKV","id":"PLH1HKV","self":"https://api.pagerduty.com/users/PLH1HKV","summary":"Tenex Engineer","type":"user_reference"},"client":null,"data":{"id":"PGR0VU2","type":"incident","self":"https://api.pagerduty.com/incidents/PGR0VU2","html_url":"https://acme.pagerduty.com/incidents/PGR0VU2","number":2,"status":"triggered","title":"A little bump in the road","service":{"html_url":"https://acme.pagerduty.com/services/PF9KMXH","id":"PF9KMXH","self":"https://api.pagerduty.com/services/PF9KMXH","summary":"API Service","type":"service_reference"},"assignees":[{"html_url":"https://acme.pagerduty.com/users/PTUXL6G","id":"PTUXL6G","self":"https://api.pagerduty.com/users/PTUXL6G","summary":"User 123","type":"user_reference"}],"escalation_policy":{"html_url":"https://acme.pagerduty.com/escalation_policies/PUS0KTE","id":"PUS0KTE","self":"https://api.pagerduty.com/escalation_policies/PUS0KTE","summary":"Default","type":"escalation_policy_reference"},"teams":[{"html_url":"https://acme.pagerduty.com/teams/PFCVPS0","id":"PFCVPS0","self":"https://api.pagerduty.com/teams/PFCVPS0","summary":"Engineering","type":"team_reference"}],"priority":{"html_url":"https://acme.pagerduty.com/account/incident_priorities","id":"PSO75BM","self":"https://api.pagerduty.com/priorities/PSO75BM","summary":"P1","type":"priority_reference"},"urgency":"high","conference_bridge":{"conference_number":1000,"conference_url":"https://example.com"},"resolve_reason":null}}}"#
}

/// Random and mutated requests through every provider of the registry, none signed with its
/// secret: no crash, and nothing accepted.
@Suite("Fuzz: every provider refuses what was not made with its secret")
struct CatalogFuzzTests {
    /// A `verify` object for each provider that needs more than a secret.
    static func verify(for provider: Provider) -> String? {
        switch provider.name {
        case "none": return nil  // accepts everything by design
        case "sns", "gcp-pubsub", "paypal": return nil  // need the bridge's fetcher (their own tests cover refusals)
        case "hmac": return #"{"scheme": "hmac", "secrets": ["fuzz-secret"], "header": "X-Sig", "prefix": "sha256="}"#
        case "meta": return #"{"scheme": "meta", "secrets": ["fuzz-secret"], "verifyToken": "vt"}"#
        case "jwt": return #"{"scheme": "jwt", "secrets": ["fuzz-secret"], "algorithms": ["HS256", "RS256", "ES256"]}"#
        case "sendgrid", "discord": return nil  // key pairs; their own tests refuse forgeries
        case "standard-webhooks": return #"{"scheme": "standard-webhooks", "secrets": ["whsec_ZnV6ei1zZWNyZXQ="]}"#
        default: return #"{"scheme": "\#(provider.name)", "secrets": ["fuzz-secret"]}"#
        }
    }

    @Test("random and wrongly signed requests: never accepted, never a crash; a recipe accepts what it signs")
    func fuzz() throws {
        var generator = SeededGenerator(seed: 0x5EED)
        var checked = 0
        var recipesSigned = 0
        for provider in ProviderRegistry.all {
            guard let verify = Self.verify(for: provider) else { continue }
            let scheme = try catalogScheme(verify)
            let headerNames =
                scheme.signatureHeaders + [
                    "webhook-id", "webhook-timestamp", "svix-id", "svix-timestamp", "X-Slack-Request-Timestamp",
                    "x-zm-request-timestamp", "Twitch-Eventsub-Message-Id", "Twitch-Eventsub-Message-Timestamp", "Authorization",
                ]
            for round in 0..<300 {
                var headers: [(String, String)] = []
                for name in headerNames where Bool.random(using: &generator) {
                    headers.append((name, Self.randomValue(&generator)))
                }
                var body = Self.randomBody(&generator)
                if round % 3 == 0, provider.canSign {
                    // Signed properly, but with another secret; then one byte of the body changed.
                    let other = provider.name == "standard-webhooks" ? "whsec_b3RoZXI=" : "other-secret"
                    if let signed = try? WebhookSigner.sign(
                        scheme: provider.name,
                        .init(body: Array(body.utf8), secret: other, timestamp: 1_764_424_800, url: "https://x.example/hook"))
                    {
                        headers = signed.headers
                        if !body.isEmpty, Bool.random(using: &generator) { body = String(body.dropLast()) + "!" }
                    }
                }
                let request = WebhookRequest(
                    headers: HTTPHeaders(headers), body: ByteBuffer(string: body), uri: "/hook?code=\(round)",
                    receivedAt: Timestamp(secondsSince1970: 1_764_424_800))
                let accepted = (try? scheme.verify(request)) != nil
                #expect(!accepted, "\(provider.name) accepted \(headers) \(body)")
                checked += 1
                // A recipe's verifier accepts what its signer makes of any body, JSON or not.
                if round % 3 == 0, provider.recipe != nil {
                    let signed = try WebhookSigner.sign(
                        scheme: provider.name,
                        .init(body: Array(body.utf8), secret: "fuzz-secret", timestamp: 1_764_424_800, type: "t"))
                    let genuine = WebhookRequest(
                        headers: HTTPHeaders(signed.headers), body: ByteBuffer(string: body), uri: "/hook",
                        receivedAt: Timestamp(secondsSince1970: 1_764_424_800))
                    #expect(failureCode(scheme, genuine) == nil, "\(provider.name) refused its own signature of \(body)")
                    recipesSigned += 1
                }
            }
        }
        #expect(checked >= 300 * 30)
        #expect(recipesSigned >= 100 * 20)
    }

    static func randomValue(_ generator: inout SeededGenerator) -> String {
        let alphabet = Array("abcdefABCDEF0123456789=,;:+/ v1t.sha256")
        let length = Int.random(in: 0...90, using: &generator)
        return String((0..<length).map { _ in alphabet.randomElement(using: &generator)! })
    }

    static func randomBody(_ generator: inout SeededGenerator) -> String {
        switch Int.random(in: 0..<4, using: &generator) {
        case 0: return ""
        case 1: return #"{"id": "e", "type": "t", "value": [{"clientState": "guess"}], "events": []}"#
        case 2: return "webhook_id=\(Int.random(in: 0...99, using: &generator))"
        default: return randomValue(&generator)
        }
    }
}

/// A small deterministic generator (SplitMix64), so a failure can be reproduced.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

@Suite("What sign sends: every header the provider sends, not only those the bridge reads")
struct SentHeaderTests {
    @Test("twitch: the message id, timestamp, type, signature, retry count and subscription version and type")
    func twitch() throws {
        let signed = try WebhookSigner.sign(
            scheme: "twitch",
            .init(
                body: Array(#"{"subscription": {}}"#.utf8), secret: "tw-secret", timestamp: 1_764_000_000, id: "m-1",
                type: "channel.follow"))
        #expect(
            Set(signed.headers.map { $0.0 }) == [
                "Twitch-Eventsub-Message-Id", "Twitch-Eventsub-Message-Timestamp", "Twitch-Eventsub-Message-Type",
                "Twitch-Eventsub-Message-Signature", "Twitch-Eventsub-Message-Retry", "Twitch-Eventsub-Subscription-Version",
                "Twitch-Eventsub-Subscription-Type",
            ])
        let scheme = try catalogScheme(#"{"scheme": "twitch", "secrets": ["tw-secret"]}"#)
        #expect(try scheme.verify(request(signed.headers, body: #"{"subscription": {}}"#, at: 1_764_000_000)).id == "m-1")
    }
}

@Suite("PayPal: the pieces of its signed text, its certificate hosts, its config")
struct PayPalPartsTests {
    @Test("CRC-32 as zlib computes it: the check value of \"123456789\" and the empty input; the signed text puts it in decimal")
    func crc() {
        #expect(CRC32.checksum(Array("123456789".utf8)) == 0xCBF4_3926)
        #expect(CRC32.checksum([UInt8]()) == 0)
        let text = PayPalScheme.signedText(
            transmissionID: "69cd13f0-d67a-11e5-baa3-778b53f4ae55", time: "2016-02-18T20:01:35Z", webhookID: "1JE4291016473214C",
            body: ByteBuffer(string: "123456789"))
        #expect(text == "69cd13f0-d67a-11e5-baa3-778b53f4ae55|2016-02-18T20:01:35Z|1JE4291016473214C|3421780262")
    }

    @Test(
        "the default certificate hosts are PayPal's live and sandbox API hosts, and no host that only contains them"
    )
    func hosts() {
        let pattern = HostPattern(PayPalScheme.defaultCertificateHost)
        for host in [
            "api.paypal.com", "api-m.paypal.com", "api.sandbox.paypal.com", "api-m.sandbox.paypal.com", "api.paypal.com",
        ] {
            #expect(
                (try? checkFetchURL(
                    "https://\(host)/v1/notifications/certs/CERT-1", what: "u", hostPattern: pattern, pathSuffix: ""))
                    != nil, "\(host)")
        }
        for host in ["api.paypal.com.evil.example", "evilapi.paypal.com", "paypal.com", "api.paypal.co"] {
            #expect(
                (try? checkFetchURL(
                    "https://\(host)/v1/notifications/certs/CERT-1", what: "u", hostPattern: pattern, pathSuffix: ""))
                    == nil, "\(host)")
        }
    }

    @Test("webhookId is required and secrets are not taken; a bad certificateHost names its path")
    func config() {
        func problems(_ verify: String) -> [String] {
            do {
                _ = try catalogScheme(verify)
                return []
            } catch {
                return (error as? ConfigError)?.problems.map(\.description) ?? ["\(error)"]
            }
        }
        #expect(problems(#"{"scheme": "paypal"}"#).contains { $0.hasPrefix("sources.s.verify.webhookId") })
        #expect(
            problems(#"{"scheme": "paypal", "webhookId": "WH-1", "secrets": ["x"]}"#).contains {
                $0.hasPrefix("sources.s.verify.secrets")
            })
        #expect(
            problems(#"{"scheme": "paypal", "webhookId": "WH-1", "certificateHost": "("}"#).contains {
                $0.hasPrefix("sources.s.verify.certificateHost")
            })
        #expect(problems(#"{"scheme": "paypal", "webhookId": "WH-1"}"#).isEmpty)
    }
}
