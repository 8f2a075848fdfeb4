import BridgeTestSupport
import Foundation
import Testing
import WebhookBridge
import WebhookCore
import WebhookEncoding

/// Third-wave providers through a running bridge: GoCardless's batch split by default, and
/// Nylas's GET challenge.
@Suite("Catalog, third wave, over HTTP")
struct ThirdWaveBridgeTests {
    @Test("gocardless: gocardless-nodejs's signed fixture lands as its two events, each with its own id and resource_type.action")
    func goCardlessSplit() async throws {
        let body =
            #"{"events":[{"id":"EV00BD05S5VM2T","created_at":"2018-07-05T09:13:51.404Z","resource_type":"subscriptions","action":"created","links":{"subscription":"SB0003JJQ2MR06"},"details":{"origin":"api","cause":"subscription_created","description":"Subscription created via the API."},"metadata":{}},{"id":"EV00BD05TB8K63","created_at":"2018-07-05T09:13:56.893Z","resource_type":"mandates","action":"created","links":{"mandate":"MD000AMA19XGEC"},"details":{"origin":"api","cause":"mandate_created","description":"Mandate created via the API."},"metadata":{}}]}"#
        let config = """
            {"listen": {"host": "127.0.0.1", "port": 0},
             "sinks": {"archive": {"type": "file", "path": "{dir}/events.jsonl"}},
             "sources": {"gc": {"path": "/gc", "verify": {"scheme": "gocardless", "secrets": ["ED7D658C-D8EB-4941-948B-3973214F2D49"]},
                                "sinks": ["archive"]}}}
            """
        try await RunningBridge.with(config: config) { bridge in
            let answer = try await bridge.post(
                "/gc",
                headers: [
                    ("Content-Type", "application/json"),
                    ("Webhook-Signature", "2693754819d3e32d7e8fcb13c729631f316c6de8dc1cf634d6527f1c07276e7e"),
                ], body: body)
            #expect(answer.status == .ok, "\(answer.text)")
            #expect(answer.json?["events"] == .number("2"))
            let lines = try bridge.lines("events.jsonl")
            let pairs = Set(lines.map { "\($0["id"]?.scalarText ?? "") \($0["type"]?.scalarText ?? "")" })
            #expect(pairs == ["EV00BD05S5VM2T subscriptions.created", "EV00BD05TB8K63 mandates.created"])
        }
    }

    @Test("nylas: GET ?challenge=C is answered 200 text/plain C; a POST needs X-Nylas-Signature")
    func nylasChallenge() async throws {
        let config = """
            {"listen": {"host": "127.0.0.1", "port": 0},
             "sinks": {"archive": {"type": "file", "path": "{dir}/events.jsonl"}},
             "sources": {"nylas": {"path": "/nylas", "verify": {"scheme": "nylas", "secrets": ["nylas-secret"]}, "sinks": ["archive"]}}}
            """
        try await RunningBridge.with(config: config) { bridge in
            let challenge = try await bridge.get("/nylas?challenge=7b3c9f1e")
            #expect(challenge.status == .ok)
            #expect(challenge.text == "7b3c9f1e")
            #expect(challenge.headers.first(name: "Content-Type")?.hasPrefix("text/plain") == true)
            let unsigned = try await bridge.post("/nylas", headers: [("Content-Type", "application/json")], body: "{}")
            #expect(unsigned.json == .object([("error", .string("signature_missing"))]))
        }
    }

    @Test(
        "pipedrive: v2 events are keyed by meta.id (two about one deal both land; a retry, attempt 2, is a duplicate); v1's meta.id is the object's, so v1 events are keyed by the body"
    )
    func pipedriveEventsOfOneObject() async throws {
        let config = """
            {"listen": {"host": "127.0.0.1", "port": 0},
             "sinks": {"archive": {"type": "file", "path": "{dir}/events.jsonl"}},
             "sources": {"pd": {"path": "/pd", "verify": {"scheme": "pipedrive", "secrets": ["hook:pd-password-0123"]}, "sinks": ["archive"]}}}
            """
        let authorization = ("Authorization", "Basic " + Base64.encode(Array("hook:pd-password-0123".utf8)))
        // As Pipedrive's v2 format: meta.id is the event's UUID, meta.entity_id the deal's.
        func v2(_ action: String, id: String, attempt: Int) -> String {
            #"{"data":{"id":42,"title":"Big deal"},"previous":null,"meta":{"action":"\#(action)","entity":"deal","entity_id":"42","id":"\#(id)","timestamp":"2026-12-04T10:00:00.000Z","version":"2.0","attempt":\#(attempt)}}"#
        }
        // v1: meta.id is the object's id, the same for every change to it.
        func v1(_ title: String) -> String {
            #"{"v":1,"current":{"id":42,"title":"\#(title)"},"previous":null,"retry":0,"meta":{"v":1,"action":"updated","object":"deal","id":42}}"#
        }
        try await RunningBridge.with(config: config) { bridge in
            func post(_ body: String) async throws -> String? {
                let answer = try await bridge.post(
                    "/pd", headers: [("Content-Type", "application/json"), authorization], body: body)
                return answer.json?["status"]?.scalarText
            }
            let created = v2("create", id: "5b7c6a1e-0000-4000-8000-000000000001", attempt: 1)
            let changed = v2("change", id: "5b7c6a1e-0000-4000-8000-000000000002", attempt: 1)
            #expect(try await post(created) == "accepted")
            #expect(try await post(changed) == "accepted")
            #expect(
                try await post(v2("change", id: "5b7c6a1e-0000-4000-8000-000000000002", attempt: 2)) == "duplicate")
            #expect(try await post(v1("Big deal")) == "accepted")
            #expect(try await post(v1("Bigger deal")) == "accepted")
            let lines = try bridge.lines("events.jsonl")
            #expect(
                lines.compactMap { $0["type"]?.scalarText } == ["deal.create", "deal.change", "deal.updated", "deal.updated"])
            #expect(
                lines.prefix(2).compactMap { $0["id"]?.scalarText } == [
                    "5b7c6a1e-0000-4000-8000-000000000001", "5b7c6a1e-0000-4000-8000-000000000002",
                ])
        }
    }
}
