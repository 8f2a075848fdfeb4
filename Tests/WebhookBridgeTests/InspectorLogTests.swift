import Testing
import WebhookCore

@testable import WebhookBridge

/// The inspector's record of recent requests: a ring whose memory is bounded whatever the
/// load, with secrets masked when a record is made.
@Suite("Inspector: the ring of recent requests")
struct InspectorLogTests {
    func request(_ source: String = "gh", outcome: String = "accepted") -> InspectedRequest {
        var request = InspectedRequest(
            time: Timestamp(secondsSince1970: 1_800_000_000), source: source, method: "POST", path: "/gh")
        request.outcome = outcome
        return request
    }

    @Test(
        "10,000 requests with 1 MiB bodies: the ring holds the last `recent`, newest first, within recent × (maxBodyBytes + header bytes)"
    )
    func bounded() {
        let log = InspectorLog(recent: 100, maxBodyBytes: 65_536)
        let body = [UInt8](repeating: 0x61, count: 1_048_576)
        let headers = (0..<60).map { ("X-Padding-\($0)", String(repeating: "v", count: 500)) }
        for index in 1...10_000 {
            log.record(request(index % 2 == 0 ? "even" : "odd"), body: body, headers: headers)
        }
        let held = log.recent()
        #expect(held.count == 100)
        #expect(held.map(\.sequence) == (9_901...10_000).reversed().map { UInt64($0) })
        #expect(held.allSatisfy { $0.body.count == 65_536 && $0.bodyBytes == 1_048_576 && $0.isTruncated })
        #expect(log.heldBytes <= 100 * (65_536 + InspectorLog.headerBytes))
        // The headers past the bound are left out, and the last kept line says so.
        #expect(held[0].headers.last?.value.hasSuffix("more headers not kept") == true)
        // By sequence while held; gone once overwritten.
        #expect(log.request(10_000)?.sequence == 10_000)
        #expect(log.request(9_901)?.source == "odd")
        #expect(log.request(9_900) == nil)
        #expect(log.request(10_001) == nil)
        // Filtered, newest first, limited.
        #expect(log.recent(limit: 3) { $0.source == "even" }.map(\.sequence) == [10_000, 9_998, 9_996])
    }

    @Test("a ring not yet full: what was recorded, newest first; sequence numbers from 1")
    func partlyFull() {
        let log = InspectorLog(recent: 10, maxBodyBytes: 16)
        #expect(log.recent().isEmpty)
        #expect(log.request(1) == nil)
        log.record(request(outcome: "rejected"), body: Array("short".utf8), headers: [])
        log.record(request(), body: Array("a body longer than sixteen bytes".utf8), headers: [])
        let held = log.recent()
        #expect(held.map(\.sequence) == [2, 1])
        #expect(held[1].body == Array("short".utf8) && !held[1].isTruncated)
        #expect(held[0].body == Array("a body longer th".utf8) && held[0].bodyBytes == 32)
        #expect(log.request(1)?.outcome == "rejected")
    }

    @Test(
        "resuming after a sequence number: what followed and is still held, oldest first, each once; what the ring lost is counted"
    )
    func resume() {
        let log = InspectorLog(recent: 5, maxBodyBytes: 0)
        #expect(log.since(0).requests.isEmpty)
        for _ in 1...3 { log.record(request(), body: [UInt8](), headers: []) }
        #expect(log.since(0).requests.map(\.sequence) == [1, 2, 3] && log.since(0).missed == 0)
        #expect(log.since(2).requests.map(\.sequence) == [3])
        #expect(log.since(3).requests.isEmpty && log.since(7).requests.isEmpty)
        for _ in 4...12 { log.record(request(), body: [UInt8](), headers: []) }
        // Held: 8...12. A client that saw 9 gets 10, 11, 12; one that saw 2 lost 3...7.
        #expect(log.since(9).requests.map(\.sequence) == [10, 11, 12] && log.since(9).missed == 0)
        let late = log.since(2)
        #expect(late.requests.map(\.sequence) == [8, 9, 10, 11, 12] && late.missed == 5)
    }

    @Test("signature (and HMAC), authorization, cookie and token headers are masked when recorded; others kept as they came")
    func masking() {
        let log = InspectorLog(recent: 1, maxBodyBytes: 0)
        let headers = [
            ("X-Hub-Signature-256", "sha256=abcdef"), ("Stripe-Signature", "t=1,v1=00"), ("webhook-signature", "v1,xyz"),
            ("Authorization", "Bearer s3cr3t"), ("Cookie", "session=1"), ("X-Gitlab-Token", "glpat"),
            ("X-Shopify-Hmac-Sha256", "c2lnbmF0dXJl"),
            ("Content-Type", "application/json"), ("X-GitHub-Delivery", "d-1"),
        ]
        log.record(request(), body: [UInt8](), headers: headers)
        let kept = Dictionary(uniqueKeysWithValues: (log.recent().first?.headers ?? []).map { ($0.name, $0.value) })
        for name in [
            "X-Hub-Signature-256", "Stripe-Signature", "webhook-signature", "Authorization", "Cookie", "X-Gitlab-Token",
            "X-Shopify-Hmac-Sha256",
        ] {
            #expect(kept[name]?.hasPrefix("(masked, ") == true, "\(name): \(kept[name] ?? "-")")
            #expect(kept[name]?.contains(headers.first { $0.0 == name }!.1) == false)
        }
        #expect(kept["Content-Type"] == "application/json" && kept["X-GitHub-Delivery"] == "d-1")
    }
}
