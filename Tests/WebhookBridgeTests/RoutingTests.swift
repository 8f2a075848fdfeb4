import BridgeTestSupport
import Foundation
import WebhookCrypto
import Testing
import WebhookBridge
import WebhookCore
import WebhookEncoding

@Suite("Routes and templates end to end")
struct EndToEndRoutingTests {
    static let config = """
        {
          "listen": {"host": "127.0.0.1", "port": 0},
          "sinks": {
            "all": {"type": "file", "path": "{dir}/all.jsonl"},
            "payments": {"type": "file", "path": "{dir}/by-type/{type}.jsonl"}
          },
          "sources": {
            "svix": {"path": "/svix",
                     "verify": {"scheme": "standard-webhooks", "secrets": ["whsec_c2VjcmV0LWtleS1mb3ItdGVzdHM="]},
                     "routes": [{"types": ["payment.*"], "sinks": ["payments", "all"]}, {"sinks": ["all"]}]}
          }
        }
        """

    func headers(id: String, body: String, timestamp: Int64) -> [(String, String)] {
        let key = (Base64.decode("c2VjcmV0LWtleS1mb3ItdGVzdHM=")!)
        let mac = HashAlgorithm.sha256.authenticationCode(for: Array("\(id).\(timestamp).\(body)".utf8), using: key)
        return [
            ("webhook-id", id), ("webhook-timestamp", String(timestamp)),
            ("webhook-signature", "v1," + Base64.encode(Array(mac))), ("Content-Type", "application/json"),
        ]
    }

    @Test("the first matching route decides the sinks; {type} names the file")
    func routes() async throws {
        try await RunningBridge.with(config: Self.config) { bridge in
            let now = Timestamp.now().secondsSince1970
            let paid = #"{"type": "payment.succeeded", "amount": 5}"#
            let other = #"{"type": "user.created"}"#
            #expect(
                try await bridge.post("/svix", headers: headers(id: "m1", body: paid, timestamp: now), body: paid).status == .ok)
            #expect(
                try await bridge.post("/svix", headers: headers(id: "m2", body: other, timestamp: now), body: other).status == .ok
            )
            #expect(try bridge.lines("all.jsonl").compactMap { $0["id"]?.scalarText }.sorted() == ["m1", "m2"])
            let payments = try bridge.lines("by-type/payment.succeeded.jsonl")
            #expect(payments.map { $0["id"] } == [.string("m1")])
            #expect(payments.first?["type"] == .string("payment.succeeded"))
            #expect(try bridge.lines("by-type/user.created.jsonl").isEmpty)
            // A stale timestamp is refused before anything is routed.
            let stale = try await bridge.post(
                "/svix", headers: headers(id: "m3", body: other, timestamp: now - 3600), body: other)
            #expect(stale.status == .unauthorized)
            #expect(stale.json == .object([("error", .string("timestamp_expired"))]))
        }
    }

    @Test("{header:Name} reads the request's header whatever the case it was sent in")
    func headerTemplates() async throws {
        let config = Self.config.replacingOccurrences(
            of: #""path": "{dir}/by-type/{type}.jsonl""#, with: #""path": "{dir}/by-tenant/{header:X-Tenant-Id}.jsonl""#)
        try await RunningBridge.with(config: config) { bridge in
            let now = Timestamp.now().secondsSince1970
            let paid = #"{"type": "payment.succeeded", "amount": 5}"#
            let answer = try await bridge.post(
                "/svix", headers: headers(id: "m1", body: paid, timestamp: now) + [("x-TENANT-id", "acme")], body: paid)
            #expect(answer.status == .ok)
            #expect(try bridge.lines("by-tenant/acme.jsonl").map { $0["id"] } == [.string("m1")])
        }
    }
}
