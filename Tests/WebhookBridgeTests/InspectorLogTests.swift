import BridgeTestSupport
import Foundation
import NIOCore
import NIOHTTP1
import Synchronization
import Testing
import WebhookCore

@testable import WebhookBridge

/// The inspector's record of recent requests: a ring whose memory is bounded whatever the
/// load, with secrets masked when a record is made.
@Suite("Inspector: the ring of recent requests")
struct InspectorLogTests {
    func request(_ source: String = "gh", outcome: String = "accepted") -> InspectedRequest {
        var request = InspectedRequest(
            time: Timestamp(secondsSince1970: 1_800_000_000), source: source, method: "POST", uri: "/gh")
        request.outcome = outcome
        return request
    }

    @Test(
        "10,000 requests with 1 MiB bodies: the ring holds the last `recent`, newest first, within recent × (maxBodyBytes + header bytes)"
    )
    func bounded() {
        let log = InspectorLog(recent: 100, maxBodyBytes: 65_536)
        let body = ByteBuffer(repeating: 0x61, count: 1_048_576)
        let headers = HTTPHeaders((0..<60).map { ("X-Padding-\($0)", String(repeating: "v", count: 500)) })
        for index in 1...10_000 {
            log.record(request(index % 2 == 0 ? "even" : "odd"), body: body, headers: headers)
        }
        let held = log.recent()
        #expect(held.count == 100)
        #expect(held.map(\.sequence) == (9_901...10_000).reversed().map { UInt64($0) })
        #expect(held.allSatisfy { $0.body.readableBytes == 65_536 && $0.bodyBytes == 1_048_576 && $0.isTruncated })
        #expect(log.heldBytes <= 100 * (65_536 + InspectorLog.headerBytes))
        // The headers past the bound are left out, and the last kept line says so.
        #expect(held[0].headers.map(\.value).last?.hasSuffix("more headers not kept") == true)
        // By sequence while held; gone once overwritten.
        #expect(log.request(10_000)?.sequence == 10_000)
        #expect(log.request(9_901)?.source == "odd")
        #expect(log.request(9_900) == nil)
        #expect(log.request(10_001) == nil)
        // Filtered, newest first, limited.
        #expect(log.recent(limit: 3) { $0.source == "even" }.map(\.sequence) == [10_000, 9_998, 9_996])
    }

    @Test("the ring hands back the element a new one replaced (released after the lock), none while it is not full")
    func evicted() {
        var ring = SequenceRing<String>(capacity: 2)
        #expect(ring.append("a").evicted == nil)
        #expect(ring.append("b").evicted == nil)
        let third = ring.append("c")
        #expect(third.sequence == 3 && third.evicted == "a")
        #expect(ring.append("d").evicted == "b")
        #expect(ring.newestFirst(limit: 10) { _ in true }.map(\.1) == ["d", "c"])
    }

    @Test("a ring not yet full: what was recorded, newest first; sequence numbers from 1")
    func partlyFull() {
        let log = InspectorLog(recent: 10, maxBodyBytes: 16)
        #expect(log.recent().isEmpty)
        #expect(log.request(1) == nil)
        log.record(request(outcome: "rejected"), body: ByteBuffer(string: "short"), headers: [:])
        log.record(request(), body: ByteBuffer(string: "a body longer than sixteen bytes"), headers: [:])
        let held = log.recent()
        #expect(held.map(\.sequence) == [2, 1])
        #expect(held[1].body == ByteBuffer(string: "short") && !held[1].isTruncated)
        #expect(held[0].body == ByteBuffer(string: "a body longer th") && held[0].bodyBytes == 32)
        #expect(log.request(1)?.outcome == "rejected")
    }

    @Test(
        "resuming after a sequence number: what followed and is still held, oldest first, each once; what the ring lost is counted"
    )
    func resume() {
        let log = InspectorLog(recent: 5, maxBodyBytes: 0)
        #expect(log.since(0).requests.isEmpty)
        for _ in 1...3 { log.record(request(), body: ByteBuffer(), headers: [:]) }
        #expect(log.since(0).requests.map(\.sequence) == [1, 2, 3] && log.since(0).missed == 0)
        #expect(log.since(2).requests.map(\.sequence) == [3])
        #expect(log.since(3).requests.isEmpty && log.since(7).requests.isEmpty)
        for _ in 4...12 { log.record(request(), body: ByteBuffer(), headers: [:]) }
        // Held: 8...12. A client that saw 9 gets 10, 11, 12; one that saw 2 lost 3...7.
        #expect(log.since(9).requests.map(\.sequence) == [10, 11, 12] && log.since(9).missed == 0)
        let late = log.since(2)
        #expect(late.requests.map(\.sequence) == [8, 9, 10, 11, 12] && late.missed == 5)
    }

    @Test("signature (and HMAC), authorization, cookie and token headers are masked when shown; others kept as they came")
    func masking() {
        let log = InspectorLog(recent: 1, maxBodyBytes: 0)
        let headers = [
            ("X-Hub-Signature-256", "sha256=abcdef"), ("Stripe-Signature", "t=1,v1=00"), ("webhook-signature", "v1,xyz"),
            ("Authorization", "Bearer s3cr3t"), ("Cookie", "session=1"), ("X-Gitlab-Token", "glpat"),
            ("X-Shopify-Hmac-Sha256", "c2lnbmF0dXJl"),
            ("Content-Type", "application/json"), ("X-GitHub-Delivery", "d-1"),
        ]
        log.record(request(), body: ByteBuffer(), headers: HTTPHeaders(headers))
        let shown = InspectorLog.shownHeaders(log.recent().first?.headers ?? .empty)
        let kept = Dictionary(uniqueKeysWithValues: shown.map { ($0.name, $0.value) })
        for name in [
            "X-Hub-Signature-256", "Stripe-Signature", "webhook-signature", "Authorization", "Cookie", "X-Gitlab-Token",
            "X-Shopify-Hmac-Sha256",
        ] {
            #expect(kept[name]?.hasPrefix("(masked, ") == true, "\(name): \(kept[name] ?? "-")")
            #expect(kept[name]?.contains(headers.first { $0.0 == name }!.1) == false)
        }
        #expect(kept["Content-Type"] == "application/json" && kept["X-GitHub-Delivery"] == "d-1")
    }

    static let mebibyte = ByteBuffer(repeating: 0x61, count: 1_048_576)

    func event(_ id: Int, bytes: Int) -> WebhookEvent {
        WebhookEvent(
            id: "evt_\(id)", source: id % 2 == 0 ? "even" : "odd", type: "t", time: Timestamp(secondsSince1970: 1_800_000_000),
            dataContentType: "application/json", scheme: "hmac", keyIndex: 0,
            data: Self.mebibyte.getSlice(at: 0, length: bytes)!)
    }

    @Test(
        "the event stream's ring: the last `recent` accepted events by sequence; data over maxBodyBytes left out with its size; memory within the bound under 10,000 events of 1 MiB"
    )
    func eventsBounded() {
        let log = InspectorLog(recent: 100, maxBodyBytes: 65_536)
        let headers = HTTPHeaders([("X-Hub-Signature-256", "sha256=00"), ("X-Padding", String(repeating: "v", count: 9000))])
        for index in 1...10_000 {
            log.stream(event(index, bytes: index == 10_000 ? 100 : 1_048_576), headers: headers)
        }
        // Numbered from where this process's stream starts: above any earlier process's.
        let base = log.lastEventSequence - 10_000
        #expect(
            base >= InspectorLog.eventBase(now: Timestamp(millisecondsSince1970: Timestamp.now().millisecondsSince1970 - 60_000)))
        // Where a resumed stream starts: after its id while that is this process's; from the
        // start of what is held, and said, when it is older or newer than any sent here.
        #expect(log.resumePoint(after: base + 9_000) == (base + 9_000, nil))
        #expect(log.resumePoint(after: nil) == (base + 10_000, nil))
        #expect(log.resumePoint(after: 0) == (base, nil))
        #expect(log.resumePoint(after: base - 1).after == base)
        #expect(log.resumePoint(after: base - 1).note?.contains("restarted after event \(base - 1)") == true)
        #expect(log.resumePoint(after: base + 10_001).after == base)
        #expect(log.resumePoint(after: base + 10_001).note?.contains("not sent by this bridge") == true)
        let (events, missed) = log.events(since: base + 9_000)
        #expect(missed == 900)
        #expect(events.map(\.0) == (9_901...10_000).map { base + UInt64($0) })
        // The last one fits and is kept whole; the others are left out, with their size.
        #expect(events.last?.1.event.data.readableBytes == 100 && events.last?.1.omittedBytes == nil)
        #expect(events.dropLast().allSatisfy { $0.1.omittedBytes == 1_048_576 && $0.1.event.data.readableBytes == 0 })
        // Headers are cut to their bound here too; signatures are kept (a stream passes them on).
        #expect(events.allSatisfy { $0.1.headers.textBytes <= InspectorLog.headerBytes })
        #expect(events[0].1.headers.first(name: "X-Hub-Signature-256") == "sha256=00")
        #expect(log.heldBytes <= 100 * (65_536 + InspectorLog.headerBytes))
        // Resumed in pages.
        #expect(log.events(since: base + 9_950, limit: 10).events.map(\.0) == (9_951...9_960).map { base + UInt64($0) })
        // A number from before this process: everything held.
        #expect(log.events(since: 5).events.count == 100 && log.events(since: 5).missed == 9_900)
    }

    @Test("a subscriber is woken for each event kept, until it unsubscribes")
    func subscribers() {
        let log = InspectorLog(recent: 4, maxBodyBytes: 1024)
        let count = Mutex(0)
        let number = log.subscribe { count.withLock { $0 += 1 } }
        log.stream(event(1, bytes: 10), headers: [:])
        log.stream(event(2, bytes: 10), headers: [:])
        log.unsubscribe(number)
        log.stream(event(3, bytes: 10), headers: [:])
        #expect(count.withLock { $0 } == 2)
    }

    @Test(
        "dead letters: a replay's mark and a replay belong to a line, not to its offset; after the file is truncated and written again, neither is taken for the new line"
    )
    func deadLetterIdentity() throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let path = directory.file("dead-letters.jsonl")
        func line(_ id: String) -> String {
            #"{"specversion":"1.0","id":"\#(id)","source":"s","type":"t","deadlettersink":"k","deadletterreason":"down"}"#
        }
        try (line("a-1") + "\n" + line("a-2") + "\n").write(toFile: path, atomically: false, encoding: .utf8)
        let shelf = DeadLetterShelf(path: path)
        let before = shelf.list(limit: 10) { _ in true }.letters
        #expect(before.map(\.id) == ["a-2", "a-1"])
        let first = before[1]
        #expect(first.offset == 0 && shelf.currentLine(of: first) == Array(line("a-1").utf8))
        shelf.noteReplay(first, failure: nil)
        #expect(shelf.replay(of: first)?.failure == nil && shelf.replay(of: first) != nil)
        // Rotated by truncation, and another dead letter written at offset 0.
        try (line("b-1") + "\n").write(toFile: path, atomically: false, encoding: .utf8)
        let after = shelf.list(limit: 10) { _ in true }.letters
        #expect(after.map(\.id) == ["b-1"] && after[0].offset == 0)
        #expect(shelf.replay(of: after[0]) == nil)
        // The letter as read before is no longer there to replay.
        #expect(shelf.currentLine(of: first) == nil)
    }

    @Test(
        "an event not within its request's kept body (the body was over maxBodyBytes) keeps headers of its own, not the record's storage"
    )
    func unsharedEventHeaders() {
        let log = InspectorLog(recent: 10, maxBodyBytes: 1024)
        let body = ByteBuffer(repeating: 0x61, count: 4096)
        let draft = InspectionDraft(
            log: log, source: "s", method: .POST, uri: "/s", client: nil,
            headers: HTTPHeaders([("X-Hub-Signature-256", "sha256=00"), ("Content-Type", "text/plain")]), body: body)
        var taken = event(1, bytes: 0)
        taken.data = body
        draft.noteTaken(taken)
        draft.finish(answer: .event(.ok, id: "evt_1", "accepted"))
        guard let streamed = log.events(since: 0).events.last?.1 else {
            Issue.record("no event kept")
            return
        }
        #expect(streamed.omittedBytes == 4096 && !streamed.sharesRecord)
        #expect(streamed.headers.first(name: "X-Hub-Signature-256") == "sha256=00")
        // The record's storage holds the first 1024 bytes of the body too.
        #expect(streamed.headers.storageBytes < 100)
    }

    @Test("a body cut inside a character is shown as text up to that character, not as base64", arguments: [1, 2, 3])
    func cutCharacter(kept: Int) {
        // "é" is 2 bytes, "€" 3, "😀" 4: cut after `kept` of the emoji's 4.
        var bytes = Array("ab é € ".utf8) + Array("😀".utf8).prefix(kept)
        AdminAPI.dropPartialCharacter(&bytes)
        #expect(String(decoding: bytes, as: UTF8.self) == "ab é € ")
        var whole = Array("ab é € 😀".utf8)
        AdminAPI.dropPartialCharacter(&whole)
        #expect(whole == Array("ab é € 😀".utf8))
        var invalid: [UInt8] = [0x61, 0xFF, 0x80]
        AdminAPI.dropPartialCharacter(&invalid)
        #expect(invalid == [0x61, 0xFF, 0x80])
    }
}
