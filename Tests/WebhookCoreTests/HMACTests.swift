import WebhookCrypto
import NIOCore
import NIOHTTP1
import Testing
import WebhookCore
import WebhookCrypto
import WebhookEncoding
@testable import WebhookProviders

/// The bridge computes HMACs with prepared key states over libcrypto's hash functions: these
/// check them against another implementation, Python's `hmac` module.
@Suite("HMAC over prepared key states")
struct HMACTests {
    /// Keys shorter than, as long as and longer than each algorithm's block (64 bytes for
    /// SHA-1 and SHA-256, 128 for SHA-512: a longer key is hashed first).
    static let keyLengths = [1, 20, 32, 63, 64, 65, 127, 128, 129, 300]

    @Test("the generic scheme verifies Python's HMAC for SHA-1, SHA-256 and SHA-512, hex and base64, any key length")
    func genericScheme() throws {
        var generator = SeededGenerator(seed: 16)
        var cases: [(algorithm: HashAlgorithm, secret: String, body: [UInt8])] = []
        for algorithm in HMACAlgorithm.allCases {
            for length in [0] + Self.keyLengths {
                let key = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
                let secret = String(decoding: key.map { 0x21 + $0 % 90 }, as: UTF8.self)
                let body = (0..<Int.random(in: 0...2000, using: &generator)).map { _ in
                    UInt8.random(in: 0...255, using: &generator)
                }
                cases.append((algorithm, secret, body))
            }
        }
        let codes = try ReferenceHMAC.codes(cases.map { ($0.algorithm, Array($0.secret.utf8), Array("t=7:".utf8) + $0.body) })
        for ((algorithm, secret, body), expected) in zip(cases, codes) {
            let length = secret.utf8.count
            for encoding in Recipe.SignatureEncoding.allCases {
                var settings = Recipe(header: "x-sig")
                settings.proof = .hmac(algorithm, encoding)
                settings.signedContent = try .init(parsing: "t=7:{body}")
                let scheme = RecipeScheme(name: "hmac", recipe: settings, secrets: ["unrelated", secret], toleranceSeconds: 300)
                let signature = encoding == .hex ? Hex.encode(expected) : Base64.encode(expected)
                let verified = try scheme.verify(Self.request([("x-sig", signature)], body))
                #expect(verified.keyIndex == 1, "\(algorithm) key of \(length) bytes, \(encoding)")
                var tampered = body
                tampered.append(0)
                #expect(throws: VerificationFailure.self) { try scheme.verify(Self.request([("x-sig", signature)], tampered)) }
                // The prepared key states are not changed by use.
                #expect(try scheme.verify(Self.request([("x-sig", signature)], body)).keyIndex == 1)
            }
        }
    }

    @Test("Standard Webhooks: seeded ids, timestamps and bodies signed with Python's HMAC verify; one changed byte does not")
    func standardWebhooks() throws {
        var generator = SeededGenerator(seed: 61)
        var rounds: [(key: [UInt8], id: String, timestamp: Int64, body: [UInt8])] = []
        for round in 0..<200 {
            let key = (0..<Self.keyLengths[round % Self.keyLengths.count]).map { _ in UInt8.random(in: 0...255, using: &generator)
            }
            let id = "msg_\(UInt64.random(in: 0...UInt64.max, using: &generator))"
            let timestamp = Int64.random(in: 1_600_000_000...1_900_000_000, using: &generator)
            let body = (0..<Int.random(in: 0...3000, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            rounds.append((key, id, timestamp, body))
        }
        let macs = try ReferenceHMAC.codes(rounds.map { (.sha256, $0.key, Array("\($0.id).\($0.timestamp).".utf8) + $0.body) })
        for ((key, id, timestamp, original), mac) in zip(rounds, macs) {
            var body = original
            let scheme = try StandardWebhooksScheme(
                secrets: ["whsec_" + Base64.encode(Array("other".utf8)), "whsec_" + Base64.encode(key)], toleranceSeconds: 300)
            // Entries before the real one: empty ones, another version, a wrong MAC.
            let header = "  v1a,AAAA v1,\(Base64.encode([UInt8](repeating: 7, count: 32)))   v1,\(Base64.encode(Array(mac))) "
            let headers = [("webhook-id", id), ("webhook-timestamp", "\(timestamp)"), ("webhook-signature", header)]
            let verified = try scheme.verify(Self.request(headers, body, at: timestamp))
            #expect(verified.keyIndex == 1)
            #expect(verified.id == id)
            if body.isEmpty { body = [0] } else { body[Int.random(in: 0..<body.count, using: &generator)] ^= 0x01 }
            #expect(throws: VerificationFailure.self) { try scheme.verify(Self.request(headers, body, at: timestamp)) }
            #expect(try scheme.verify(Self.request(headers, original, at: timestamp)).keyIndex == 1)
        }
    }

    @Test("Standard Webhooks looks at 16 signature entries at most; empty ones (extra spaces) do not count")
    func entryLimit() throws {
        let key = Array("entry-limit-key".utf8)
        let scheme = try StandardWebhooksScheme(secrets: ["whsec_" + Base64.encode(key)], toleranceSeconds: 300)
        let id = "msg_limit"
        let timestamp: Int64 = 1_700_000_000
        let body = Array(#"{"type":"a.b"}"#.utf8)
        let mac = HashAlgorithm.sha256.authenticationCode(for: Array("\(id).\(timestamp).".utf8) + body, using: (key))
        let wrong = "v1," + Base64.encode([UInt8](repeating: 1, count: 32))
        func headers(_ signature: String) -> [(String, String)] {
            [("webhook-id", id), ("webhook-timestamp", "\(timestamp)"), ("webhook-signature", signature)]
        }
        let genuine = "v1," + Base64.encode(Array(mac))
        let fifteen = Array(repeating: wrong, count: 15).joined(separator: "   ")
        #expect(
            try scheme.verify(Self.request(headers("  " + fifteen + "    " + genuine + " "), body, at: timestamp)).keyIndex == 0)
        let sixteen = Array(repeating: wrong, count: 16).joined(separator: " ")
        #expect(throws: VerificationFailure.self) {
            try scheme.verify(Self.request(headers(sixteen + " " + genuine), body, at: timestamp))
        }
    }

    static func request(_ headers: [(String, String)], _ body: [UInt8], at seconds: Int64 = 1_700_000_000) -> WebhookRequest {
        WebhookRequest(
            headers: HTTPHeaders(headers), body: ByteBuffer(bytes: body), uri: "/hook",
            receivedAt: Timestamp(secondsSince1970: seconds))
    }
}
