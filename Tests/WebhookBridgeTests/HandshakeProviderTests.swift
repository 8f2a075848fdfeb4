import BridgeTestSupport
import WebhookCrypto
import Foundation
import NIOHTTP1
import Testing
import WebhookBridge
import WebhookCore
import WebhookEncoding
import WebhookProviders

/// The providers whose setup handshake is not a signed POST, over a real socket: each
/// handshake answered byte for byte as the provider requires and never forwarded, a signed
/// event accepted and landed, a tampered one refused.
@Suite("Providers with handshakes")
struct HandshakeProviderTests {
    static let config = """
        {"listen": {"host": "127.0.0.1", "port": 0},
         "sinks": {"archive": {"type": "file", "path": "{dir}/{source}.jsonl"}},
         "sources": {
           "wa": {"path": "/meta", "verify": {"scheme": "meta", "secrets": ["app-secret"], "verifyToken": "my-verify-token"},
                  "sinks": ["archive"]},
           "dbx": {"path": "/dropbox", "verify": {"scheme": "dropbox", "secrets": ["dbx-secret"]}, "sinks": ["archive"]},
           "okta": {"path": "/okta", "verify": {"scheme": "okta", "secrets": ["Bearer okta-secret"]}, "sinks": ["archive"]},
           "graph": {"path": "/graph", "verify": {"scheme": "microsoft-graph", "secrets": ["client-state"]}, "sinks": ["archive"]},
           "grid": {"path": "/grid", "verify": {"scheme": "event-grid", "secrets": ["grid-code"]}, "sinks": ["archive"]},
           "twitch": {"path": "/twitch", "verify": {"scheme": "twitch", "secrets": ["twitch-secret"]}, "sinks": ["archive"]},
           "trello": {"path": "/trello",
                      "verify": {"scheme": "trello", "secrets": ["trello-secret"], "publicUrl": "https://hooks.example.com/trello"},
                      "sinks": ["archive"]},
           "woo": {"path": "/woo", "verify": {"scheme": "woocommerce", "secrets": ["woo-secret"]}, "sinks": ["archive"]},
           "xero": {"path": "/xero", "verify": {"scheme": "xero", "secrets": ["xero-key"]}, "sinks": ["archive"]}}}
        """

    func request(
        _ bridge: RunningBridge, _ method: HTTPMethod, _ path: String, headers: [(String, String)] = [], body: String = ""
    ) async throws -> WebhookClient.Response {
        try await WebhookClient.send(
            host: "127.0.0.1", port: bridge.port, method: method, path: path, headers: headers, body: Array(body.utf8))
    }

    func signed(_ scheme: String, _ body: String, secret: String, url: String? = nil, type: String? = nil) throws -> [(
        String, String
    )] {
        try WebhookSigner.sign(
            scheme: scheme,
            .init(
                body: Array(body.utf8), secret: secret, timestamp: Int64(Date().timeIntervalSince1970), type: type, url: url)
        ).headers + [("Content-Type", "application/json")]
    }

    @Test("meta: the hub.challenge GET is echoed as text/plain for the right verify token, 403 otherwise; events are signed")
    func meta() async throws {
        try await RunningBridge.with(config: Self.config) { bridge in
            // The example request of Meta's "Getting Started with Webhooks" guide.
            let ok = try await request(
                bridge, .GET, "/meta?hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=my-verify-token")
            #expect(ok.status == .ok)
            #expect(ok.text == "1158201444")
            #expect(ok.headers.first(name: "Content-Type") == "text/plain; charset=utf-8")
            #expect(ok.headers.first(name: "X-Content-Type-Options") == "nosniff")
            let wrong = try await request(bridge, .GET, "/meta?hub.mode=subscribe&hub.challenge=1&hub.verify_token=nope")
            #expect(wrong.status == .forbidden)

            let body = #"{"object": "whatsapp_business_account", "entry": [{"id": "1"}]}"#
            let event = try await request(
                bridge, .POST, "/meta", headers: try signed("meta", body, secret: "app-secret"), body: body)
            #expect(event.status == .ok)
            let tampered = try await request(
                bridge, .POST, "/meta", headers: try signed("meta", body, secret: "app-secret"), body: body + " ")
            #expect(tampered.status == .unauthorized)
            let lines = try bridge.lines("wa.jsonl")
            #expect(lines.count == 1)
            #expect(lines.first?["type"] == .string("whatsapp_business_account"))
            // Other methods: 405 naming what the scheme answers.
            let put = try await request(bridge, .PUT, "/meta")
            #expect(put.status == .methodNotAllowed)
            #expect(put.headers.first(name: "Allow") == "POST, GET")
        }
    }

    @Test("dropbox: GET ?challenge= is echoed with nosniff; events signed; the type is list_folder")
    func dropbox() async throws {
        try await RunningBridge.with(config: Self.config) { bridge in
            let challenge = try await request(bridge, .GET, "/dropbox?challenge=a1b2c3")
            #expect(challenge.status == .ok)
            #expect(challenge.text == "a1b2c3")
            #expect(challenge.headers.first(name: "Content-Type") == "text/plain; charset=utf-8")
            #expect(challenge.headers.first(name: "X-Content-Type-Options") == "nosniff")
            let body = #"{"list_folder": {"accounts": ["dbid:1"]}, "delta": {"users": [1]}}"#
            let event = try await request(
                bridge, .POST, "/dropbox", headers: try signed("dropbox", body, secret: "dbx-secret"), body: body)
            #expect(event.status == .ok)
            #expect(try bridge.lines("dbx.jsonl").map { $0["type"] } == [.string("list_folder")])
            let forged = try await request(
                bridge, .POST, "/dropbox", headers: try signed("dropbox", body, secret: "other"), body: body)
            #expect(forged.status == .unauthorized)
        }
    }

    @Test("okta: the verification GET answers {verification} only with the right Authorization; events land")
    func okta() async throws {
        try await RunningBridge.with(config: Self.config) { bridge in
            let challenge = try await request(
                bridge, .GET, "/okta",
                headers: [("Authorization", "Bearer okta-secret"), ("X-Okta-Verification-Challenge", "vc-42")])
            #expect(challenge.status == .ok)
            #expect(challenge.text == #"{"verification":"vc-42"}"#)
            #expect(challenge.headers.first(name: "Content-Type") == "application/json")
            let unauthorized = try await request(bridge, .GET, "/okta", headers: [("X-Okta-Verification-Challenge", "vc-42")])
            #expect(unauthorized.status == .unauthorized)
            // An event hook delivers a batch: each element of data.events is an event of its own.
            let body =
                #"{"eventId": "evt-okta-1", "data": {"events": [{"uuid": "okta-uuid-1", "eventType": "user.session.start"}]}}"#
            let event = try await request(
                bridge, .POST, "/okta", headers: [("Authorization", "Bearer okta-secret"), ("Content-Type", "application/json")],
                body: body)
            #expect(event.json?["events"] == .number("1"))
            #expect(event.json?["accepted"] == .number("1"))
            let forged = try await request(
                bridge, .POST, "/okta", headers: [("Authorization", "Bearer guess"), ("Content-Type", "application/json")],
                body: body)
            #expect(forged.status == .unauthorized)
            #expect(try bridge.lines("okta.jsonl").map { $0["type"] } == [.string("user.session.start")])
            #expect(try bridge.lines("okta.jsonl").map { $0["id"] } == [.string("okta-uuid-1")])
        }
    }

    @Test("microsoft-graph: POST ?validationToken= echoes the decoded token unsigned; every clientState must match")
    func microsoftGraph() async throws {
        try await RunningBridge.with(config: Self.config) { bridge in
            let validation = try await request(
                bridge, .POST, "/graph?validationToken=Validation%3a+Testing+client+application+reachability",
                headers: [("Content-Type", "text/plain; charset=utf-8")])
            #expect(validation.status == .ok)
            #expect(validation.text == "Validation: Testing client application reachability")
            #expect(validation.headers.first(name: "Content-Type") == "text/plain; charset=utf-8")
            #expect(validation.headers.first(name: "X-Content-Type-Options") == "nosniff")
            let good =
                #"{"value": [{"clientState": "client-state", "changeType": "created"}, {"clientState": "client-state", "changeType": "updated"}]}"#
            #expect(
                try await request(bridge, .POST, "/graph", headers: [("Content-Type", "application/json")], body: good).status
                    == .ok)
            let bad =
                #"{"value": [{"clientState": "client-state", "changeType": "created"}, {"clientState": "guess", "changeType": "updated"}]}"#
            let refused = try await request(bridge, .POST, "/graph", headers: [("Content-Type", "application/json")], body: bad)
            #expect(refused.status == .unauthorized)
            let missing = #"{"value": [{"changeType": "created"}]}"#
            let unsigned = try await request(
                bridge, .POST, "/graph", headers: [("Content-Type", "application/json")], body: missing)
            #expect(unsigned.json == .object([("error", .string("signature_missing"))]))
            // Each notification of value[] is an event of its own.
            let lines = try bridge.lines("graph.jsonl")
            #expect(lines.map { $0["type"] } == [.string("created"), .string("updated")])
        }
    }

    @Test("event-grid: SubscriptionValidation answers validationResponse, OPTIONS answers the origin; the code is checked")
    func eventGrid() async throws {
        try await RunningBridge.with(config: Self.config) { bridge in
            // The validation event of Azure Event Grid's "Endpoint validation" docs.
            let validationBody = """
                [{"id": "2d1781af-3a4c-4d7c-bd0c-e34b19da4e66", "topic": "/subscriptions/x", "subject": "",
                  "data": {"validationCode": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6",
                           "validationUrl": "https://rp-eastus2.eventgrid.azure.net:553/eventsubscriptions/x/validate?id=512d38b6"},
                  "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent", "eventTime": "2018-01-25T22:12:19.4556811Z",
                  "metadataVersion": "1", "dataVersion": "1"}]
                """
            let validation = try await request(
                bridge, .POST, "/grid?code=grid-code",
                headers: [("aeg-event-type", "SubscriptionValidation"), ("Content-Type", "application/json")],
                body: validationBody)
            #expect(validation.status == .ok)
            #expect(validation.text == #"{"validationResponse":"512d38b6-c7b8-40c8-89fe-f46f9e9622b6"}"#)
            let wrongCode = try await request(
                bridge, .POST, "/grid?code=nope",
                headers: [("aeg-event-type", "SubscriptionValidation"), ("Content-Type", "application/json")],
                body: validationBody)
            #expect(wrongCode.status == .unauthorized)
            let options = try await request(
                bridge, .OPTIONS, "/grid", headers: [("WebHook-Request-Origin", "eventgrid.azure.net")])
            #expect(options.status == .ok)
            #expect(options.headers.first(name: "WebHook-Allowed-Origin") == "eventgrid.azure.net")
            #expect(options.headers.first(name: "Allow") == "POST")
            let event = #"[{"id": "evt-grid-1", "eventType": "Microsoft.Storage.BlobCreated", "data": {}}]"#
            let accepted = try await request(
                bridge, .POST, "/grid?code=grid-code",
                headers: [("aeg-event-type", "Notification"), ("Content-Type", "application/json")],
                body: event)
            #expect(accepted.json?["events"] == .number("1"))
            let lines = try bridge.lines("grid.jsonl")
            #expect(lines.map { $0["id"] } == [.string("evt-grid-1")])
            #expect(lines.first?["type"] == .string("Microsoft.Storage.BlobCreated"))
        }
    }

    @Test("twitch: the signed challenge is echoed as text/plain; notifications and revocations land; tampering is refused")
    func twitch() async throws {
        try await RunningBridge.with(config: Self.config) { bridge in
            let challengeBody = #"{"challenge": "pogchamp-kappa-360noscope-vohiyo", "subscription": {"type": "channel.follow"}}"#
            var headers = try signed("twitch", challengeBody, secret: "twitch-secret", type: "channel.follow")
            headers = headers.map { $0.0 == "Twitch-Eventsub-Message-Type" ? ($0.0, "webhook_callback_verification") : $0 }
            let challenge = try await request(bridge, .POST, "/twitch", headers: headers, body: challengeBody)
            #expect(challenge.status == .ok)
            #expect(challenge.text == "pogchamp-kappa-360noscope-vohiyo")
            #expect(challenge.headers.first(name: "Content-Type") == "text/plain; charset=utf-8")
            #expect(challenge.headers.first(name: "X-Content-Type-Options") == "nosniff")

            let body = #"{"subscription": {"type": "channel.follow"}, "event": {"user_id": "1"}}"#
            let event = try await request(
                bridge, .POST, "/twitch", headers: try signed("twitch", body, secret: "twitch-secret", type: "channel.follow"),
                body: body)
            #expect(event.status == .ok)
            let tampered = try await request(
                bridge, .POST, "/twitch", headers: try signed("twitch", body, secret: "twitch-secret"), body: body + " ")
            #expect(tampered.status == .unauthorized)
            let revocationBody = #"{"subscription": {"type": "channel.follow", "status": "authorization_revoked"}}"#
            let revocation = try signed("twitch", revocationBody, secret: "twitch-secret", type: "channel.follow").map {
                $0.0 == "Twitch-Eventsub-Message-Type" ? ($0.0, "revocation") : $0
            }
            #expect(try await request(bridge, .POST, "/twitch", headers: revocation, body: revocationBody).status == .ok)
            let lines = try bridge.lines("twitch.jsonl")
            #expect(lines.map { $0["type"] } == [.string("channel.follow"), .string("revocation")])
        }
    }

    @Test("trello: HEAD answers 200; events are signed over body + callback URL")
    func trello() async throws {
        try await RunningBridge.with(config: Self.config) { bridge in
            let head = try await request(bridge, .HEAD, "/trello")
            #expect(head.status == .ok)
            let body = #"{"action": {"id": "51f9424bcd6e040f3c002412", "type": "updateCard"}, "model": {"id": "1"}}"#
            let event = try await request(
                bridge, .POST, "/trello",
                headers: try signed("trello", body, secret: "trello-secret", url: "https://hooks.example.com/trello"), body: body)
            #expect(event.json?["id"] == .string("51f9424bcd6e040f3c002412"))
            let wrongURL = try await request(
                bridge, .POST, "/trello",
                headers: try signed("trello", body, secret: "trello-secret", url: "https://elsewhere.example.com/trello"),
                body: body)
            #expect(wrongURL.status == .unauthorized)
            #expect(try bridge.lines("trello.jsonl").map { $0["type"] } == [.string("updateCard")])
        }
    }

    @Test("woocommerce: the unsigned webhook_id ping is answered 200 and not forwarded; other unsigned posts are refused")
    func woocommerce() async throws {
        try await RunningBridge.with(config: Self.config) { bridge in
            let ping = try await request(
                bridge, .POST, "/woo", headers: [("Content-Type", "application/x-www-form-urlencoded")], body: "webhook_id=12")
            #expect(ping.status == .ok)
            let unsigned = try await request(
                bridge, .POST, "/woo", headers: [("Content-Type", "application/json")], body: #"{"id": 1}"#)
            #expect(unsigned.status == .unauthorized)
            let body = #"{"id": 73, "status": "processing"}"#
            let event = try await request(
                bridge, .POST, "/woo", headers: try signed("woocommerce", body, secret: "woo-secret", type: "order.created"),
                body: body)
            #expect(event.status == .ok)
            let tampered = try await request(
                bridge, .POST, "/woo", headers: try signed("woocommerce", body, secret: "woo-secret"), body: body + " ")
            #expect(tampered.status == .unauthorized)
            let lines = try bridge.lines("woo.jsonl")
            #expect(lines.count == 1)
            #expect(lines.first?["type"] == .string("order.created"))
        }
    }

    @Test("xero: intent to receive answers 200 with no body for a correct signature and 401 for a wrong one; nothing forwarded")
    func xero() async throws {
        try await RunningBridge.with(config: Self.config) { bridge in
            let body = #"{"events":[],"firstEventSequence": 0,"lastEventSequence": 0, "entropy": "S0m3r4Nd0mt3xt"}"#
            let intent = try await request(
                bridge, .POST, "/xero", headers: try signed("xero", body, secret: "xero-key"), body: body)
            #expect(intent.status == .ok)
            #expect(intent.body.isEmpty)
            let wrong = try await request(
                bridge, .POST, "/xero", headers: try signed("xero", body, secret: "not-the-key"), body: body)
            #expect(wrong.status == .unauthorized)
            #expect(try bridge.lines("xero.jsonl").isEmpty)
            let events =
                #"{"events":[{"resourceId": "1", "eventCategory": "INVOICE"}],"firstEventSequence": 1,"lastEventSequence": 1}"#
            let accepted = try await request(
                bridge, .POST, "/xero", headers: try signed("xero", events, secret: "xero-key"), body: events)
            #expect(accepted.status == .ok)
            #expect(try bridge.lines("xero.jsonl").first?["type"] == .string("xero.events"))
        }
    }

    @Test("basic: a 401 carries WWW-Authenticate: Basic realm=\"webhook-bridge\", also from the head; the right credentials land")
    func basic() async throws {
        let config = """
            {"listen": {"host": "127.0.0.1", "port": 0},
             "sinks": {"archive": {"type": "file", "path": "{dir}/{source}.jsonl"}},
             "sources": {"b": {"path": "/basic", "verify": {"scheme": "basic", "secrets": ["hooks:s3cret"], "idPointer": "/id"},
                               "sinks": ["archive"]}}}
            """
        try await RunningBridge.with(config: config) { bridge in
            let body = #"{"id": "b-1"}"#
            let missing = try await request(bridge, .POST, "/basic", headers: [("Content-Type", "application/json")], body: body)
            #expect(missing.status == .unauthorized)
            #expect(missing.headers.first(name: "WWW-Authenticate") == #"Basic realm="webhook-bridge""#)
            let wrong = try await request(
                bridge, .POST, "/basic", headers: [("Authorization", "Basic " + Base64.encode(Array("hooks:guess".utf8)))],
                body: body)
            #expect(wrong.status == .unauthorized)
            #expect(wrong.headers.first(name: "WWW-Authenticate") == #"Basic realm="webhook-bridge""#)
            let right = try await request(
                bridge, .POST, "/basic",
                headers: [
                    ("Authorization", "Basic " + Base64.encode(Array("hooks:s3cret".utf8))), ("Content-Type", "application/json"),
                ],
                body: body)
            #expect(right.json?["id"] == .string("b-1"))
            #expect(try bridge.lines("b.jsonl").count == 1)
        }
    }
}
