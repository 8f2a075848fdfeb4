import BridgeTestSupport
import Foundation
import Testing
import WebhookCore
import WebhookCrypto
import WebhookEncoding

/// Filters, batches, transforms and answers on the serve path of the real binary (SPEC
/// section 10): what the provider is answered and what lands in the file sinks.
@Suite("Shaping what flows: filtered events, batches, transforms, custom answers")
struct ShapingTests {
    /// A file sink's lines, parsed.
    static func lines(_ path: String) throws -> [JSONValue] {
        guard FileManager.default.fileExists(atPath: path) else { return [] }
        return try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map {
            try JSONParser.parse(Array($0.utf8))
        }
    }

    static func json(_ text: String) -> JSONValue? { try? JSONParser.parse(Array(text.utf8)) }

    /// The fixture of `scheme`: its config secret, how to sign, its public URL.
    static func fixture(_ scheme: String) throws -> SchemeFixture {
        try #require(SchemeFixture.all().first { $0.scheme == scheme })
    }

    static func verify(_ fixture: SchemeFixture) -> String {
        let publicUrl = fixture.url.map { #", "publicUrl": "\#($0)""# } ?? ""
        return #"{"scheme": "\#(fixture.scheme)", "secrets": ["\#(fixture.verifySecret)"]\#(publicUrl)\#(fixture.extra)}"#
    }

    @Test("an event no route takes: 200 filtered, written nowhere, counted; its retry is a duplicate")
    func filtered() throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let port = try RedisServer.freePort()
        let config = try writeConfig(
            """
            {"listen": {"host": "127.0.0.1", "port": \(port)},
             "sinks": {"big": {"type": "file", "path": "\(directory.file("big.jsonl"))"},
                       "pushes": {"type": "file", "path": "\(directory.file("pushes.jsonl"))"}},
             "sources": {"s": {"path": "/s", "verify": {"scheme": "none"},
                "routes": [{"match": {"body": {"amount": {"$gte": 100}}}, "sinks": ["big"]},
                           {"match": {"headers": {"x-event": "push"}, "query": {"env": "prod"}}, "sinks": ["pushes"]}]}}}
            """, in: directory)
        let server = try BridgeProcess(config: config)
        defer { _ = server.terminate() }
        let connection = try KeepAliveConnection(port: port)
        let json = [("Content-Type", "application/json")]
        #expect(try connection.post("/s", headers: json, body: #"{"amount": 250}"#).status == 200)
        #expect(try connection.post("/s?env=prod", headers: json + [("X-Event", "push")], body: #"{"amount": 1}"#).status == 200)
        let small = #"{"amount": 5}"#
        let answer = try connection.post("/s?env=dev", headers: json + [("X-Event", "push")], body: small)
        #expect(answer.status == 200)
        let id = bodyHash(small)
        #expect(Self.json(answer.body) == .object([("id", .string(id)), ("status", .string("filtered"))]), "\(answer.body)")
        let retry = try connection.post("/s?env=dev", headers: json + [("X-Event", "push")], body: small)
        #expect(Self.json(retry.body) == .object([("id", .string(id)), ("status", .string("duplicate"))]), "\(retry.body)")
        #expect(try Self.lines(directory.file("big.jsonl")).map { $0["data"] } == [Self.json(#"{"amount": 250}"#)])
        #expect(try Self.lines(directory.file("pushes.jsonl")).map { $0["data"] } == [Self.json(#"{"amount": 1}"#)])
        let metrics = try connection.get("/metrics").body
        #expect(metrics.contains(#"webhook_events_filtered_total{source="s"} 1"#), "\(metrics)")
    }

    /// `sha256:` and the hex digest of `text`.
    func bodyHash(_ text: String) -> String {
        "sha256:" + Hex.encode(HashAlgorithm.sha256.hash(Array(text.utf8)))
    }

    @Test("batches in the providers' documented shapes split into events with their own ids and types")
    func presets() throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let port = try RedisServer.freePort()
        let sendgrid = try Self.fixture("sendgrid")
        let hubspot = try Self.fixture("hubspot")
        let sinks = ["grid", "okta", "graph", "sendgrid", "hubspot"].map {
            #""\#($0)": {"type": "file", "path": "\#(directory.file("\($0).jsonl"))"}"#
        }
        let config = try writeConfig(
            """
            {"listen": {"host": "127.0.0.1", "port": \(port)},
             "sinks": {\(sinks.joined(separator: ", "))},
             "sources": {
               "grid": {"path": "/grid", "verify": {"scheme": "event-grid", "secrets": ["grid-code"]}, "sinks": ["grid"]},
               "okta": {"path": "/okta", "verify": {"scheme": "okta", "secrets": ["Bearer okta-secret"]}, "sinks": ["okta"]},
               "graph": {"path": "/graph", "verify": {"scheme": "microsoft-graph", "secrets": ["client-state"]}, "sinks": ["graph"]},
               "sendgrid": {"path": "/sendgrid", "verify": \(Self.verify(sendgrid)), "sinks": ["sendgrid"]},
               "hubspot": {"path": "/hubspot", "verify": \(Self.verify(hubspot)), "sinks": ["hubspot"]}}}
            """, in: directory)
        let server = try BridgeProcess(config: config)
        defer { _ = server.terminate() }
        let connection = try KeepAliveConnection(port: port)
        let json = ("Content-Type", "application/json")
        let now = Timestamp.now().secondsSince1970

        // Azure Event Grid's event schema: a top-level array.
        let grid = """
            [{"topic": "/subscriptions/s/resourceGroups/Storage/providers/Microsoft.Storage/storageAccounts/x",
              "subject": "/blobServices/default/containers/c/blobs/a", "eventType": "Microsoft.Storage.BlobCreated",
              "eventTime": "2017-06-26T18:41:00.9584103Z", "id": "831e1650-001e-001b-66ab-eeb76e069631",
              "data": {"api": "PutBlockList", "contentLength": 524288}, "dataVersion": "", "metadataVersion": "1"},
             {"topic": "/subscriptions/s/resourceGroups/Storage/providers/Microsoft.Storage/storageAccounts/x",
              "subject": "/blobServices/default/containers/c/blobs/b", "eventType": "Microsoft.Storage.BlobDeleted",
              "eventTime": "2017-06-26T18:41:01.0000000Z", "id": "831e1650-001e-001b-66ab-eeb76e069632",
              "data": {"api": "DeleteBlob"}, "dataVersion": "", "metadataVersion": "1"}]
            """
        let gridAnswer = try connection.post(
            "/grid?code=grid-code", headers: [json, ("aeg-event-type", "Notification")], body: grid)
        #expect(gridAnswer.status == 200)
        #expect(
            Self.json(gridAnswer.body)
                == Self.json(#"{"status": "accepted", "events": 2, "accepted": 2, "duplicates": 0, "filtered": 0}"#),
            "\(gridAnswer.body)")
        let gridLines = try Self.lines(directory.file("grid.jsonl"))
        #expect(
            gridLines.map { $0["id"] }
                == [.string("831e1650-001e-001b-66ab-eeb76e069631"), .string("831e1650-001e-001b-66ab-eeb76e069632")])
        #expect(
            gridLines.map { $0["type"] } == [.string("Microsoft.Storage.BlobCreated"), .string("Microsoft.Storage.BlobDeleted")])
        #expect(gridLines.first?["data"]?["subject"] == .string("/blobServices/default/containers/c/blobs/a"))

        // Okta's event hook: data.events[].
        let okta = """
            {"eventType": "com.okta.event_hook", "eventTypeVersion": "1.0", "cloudEventsVersion": "0.1",
             "source": "https://example.okta.com/api/v1/eventHooks/whlrowdsdIehrGp2c0g3",
             "eventId": "b5a188b9-5ece-4636-b041-482ffda96311",
             "data": {"events": [
               {"uuid": "643d382f-e7ef-11ea-bce2-c5b1a0c6b4d6", "published": "2020-08-26T17:25:53.925Z",
                "eventType": "user.session.start", "version": "0", "displayMessage": "User login to Okta", "severity": "INFO"},
               {"uuid": "7a8a6a80-e7ef-11ea-bce2-c5b1a0c6b4d6", "published": "2020-08-26T17:26:03.925Z",
                "eventType": "user.session.end", "version": "0", "displayMessage": "User logout from Okta", "severity": "INFO"}]},
             "eventTime": "2020-08-26T17:26:04.089Z", "contentType": "application/json"}
            """
        #expect(try connection.post("/okta", headers: [json, ("Authorization", "Bearer okta-secret")], body: okta).status == 200)
        let oktaLines = try Self.lines(directory.file("okta.jsonl"))
        #expect(
            oktaLines.map { $0["id"] }
                == [.string("643d382f-e7ef-11ea-bce2-c5b1a0c6b4d6"), .string("7a8a6a80-e7ef-11ea-bce2-c5b1a0c6b4d6")])
        #expect(oktaLines.map { $0["type"] } == [.string("user.session.start"), .string("user.session.end")])

        // Microsoft Graph change notifications: value[]; a lifecycle notification has no changeType.
        let first =
            #"{"subscriptionId": "sub-1", "clientState": "client-state", "changeType": "created", "resource": "users/u/messages/m1", "tenantId": "t"}"#
        let second =
            #"{"subscriptionId": "sub-1", "clientState": "client-state", "lifecycleEvent": "reauthorizationRequired", "resource": "users/u/messages", "tenantId": "t"}"#
        let graph = #"{"value": [\#(first), \#(second)]}"#
        #expect(try connection.post("/graph", headers: [json], body: graph).status == 200)
        let graphLines = try Self.lines(directory.file("graph.jsonl"))
        #expect(graphLines.map { $0["type"] } == [.string("created"), .string("reauthorizationRequired")])
        // No id in a notification: the hash of the element, as stored.
        var compact: [UInt8] = []
        JSONWriter.append(try JSONParser.parse(Array(first.utf8)), to: &compact)
        #expect(graphLines.first?["id"] == .string(bodyHash(String(decoding: compact, as: UTF8.self))))

        // SendGrid's Event Webhook: a top-level array, sg_event_id and event.
        let events = """
            [{"email": "example@test.com", "timestamp": 1513299569, "smtp-id": "<14c5d75ce93.dfd.64b469@ismtpd-555>",
              "event": "processed", "category": "cat facts", "sg_event_id": "sg_event_id", "sg_message_id": "sg_message_id"},
             {"email": "example@test.com", "timestamp": 1513299569, "smtp-id": "<14c5d75ce93.dfd.64b469@ismtpd-555>",
              "event": "deferred", "category": "cat facts", "sg_event_id": "sg_event_id2", "sg_message_id": "sg_message_id",
              "response": "400 try again later", "attempt": "5"}]
            """
        let signedSendgrid = try sendgrid.signed(body: Array(events.utf8), at: now)
        #expect(try connection.post("/sendgrid", headers: signedSendgrid.headers + [json], body: events).status == 200)
        let sendgridLines = try Self.lines(directory.file("sendgrid.jsonl"))
        #expect(sendgridLines.map { $0["id"] } == [.string("sg_event_id"), .string("sg_event_id2")])
        #expect(sendgridLines.map { $0["type"] } == [.string("processed"), .string("deferred")])

        // HubSpot's webhooks: a top-level array, eventId and subscriptionType.
        let changes = """
            [{"objectId": 1246965, "propertyName": "lifecyclestage", "propertyValue": "subscriber", "changeSource": "ACADEMY",
              "eventId": 3816279340, "subscriptionId": 25, "portalId": 33, "appId": 1160452, "occurredAt": 1462216307945,
              "subscriptionType": "contact.propertyChange", "attemptNumber": 0},
             {"objectId": 1246978, "changeSource": "IMPORT", "eventId": 3816279480, "subscriptionId": 22, "portalId": 33,
              "appId": 1160452, "occurredAt": 1462216307945, "subscriptionType": "contact.creation", "attemptNumber": 0}]
            """
        let signedHubspot = try hubspot.signed(body: Array(changes.utf8), at: now)
        #expect(try connection.post("/hubspot", headers: signedHubspot.headers + [json], body: changes).status == 200)
        let hubspotLines = try Self.lines(directory.file("hubspot.jsonl"))
        #expect(hubspotLines.map { $0["id"] } == [.string("3816279340"), .string("3816279480")])
        #expect(hubspotLines.map { $0["type"] } == [.string("contact.propertyChange"), .string("contact.creation")])
    }

    @Test("a re-batched delivery is deduplicated per element; routes and filters apply per element")
    func rebatched() throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let port = try RedisServer.freePort()
        let config = try writeConfig(
            """
            {"listen": {"host": "127.0.0.1", "port": \(port)},
             "sinks": {"mail": {"type": "file", "path": "\(directory.file("mail.jsonl"))"}},
             "sources": {"s": {"path": "/s", "verify": {"scheme": "none"},
                "split": {"pointer": "/batch", "id": ["/uuid", "/id"], "type": "/kind"},
                "routes": [{"types": ["mail.*"], "sinks": ["mail"]}]}}}
            """, in: directory)
        let server = try BridgeProcess(config: config)
        defer { _ = server.terminate() }
        let connection = try KeepAliveConnection(port: port)
        func post(_ elements: String) throws -> JSONValue? {
            Self.json(
                try connection.post("/s", headers: [("Content-Type", "application/json")], body: #"{"batch": [\#(elements)]}"#)
                    .body)
        }
        let a = #"{"uuid": "a", "kind": "mail.sent"}"#
        let b = #"{"id": "b", "kind": "mail.opened"}"#
        let c = #"{"uuid": "c", "kind": "sms.sent"}"#
        #expect(
            try post("\(a), \(b)")
                == Self.json(#"{"status": "accepted", "events": 2, "accepted": 2, "duplicates": 0, "filtered": 0}"#))
        // The provider re-batches: b again, with c (which no route takes).
        #expect(
            try post("\(c), \(b)")
                == Self.json(#"{"status": "accepted", "events": 2, "accepted": 0, "duplicates": 1, "filtered": 1}"#))
        #expect(try post("") == Self.json(#"{"status": "accepted", "events": 0, "accepted": 0, "duplicates": 0, "filtered": 0}"#))
        // The same element twice in one batch: the second is a duplicate, not a 409.
        let d = #"{"uuid": "d", "kind": "mail.sent"}"#
        #expect(
            try post("\(d), \(d)")
                == Self.json(#"{"status": "accepted", "events": 2, "accepted": 1, "duplicates": 1, "filtered": 0}"#))
        let lines = try Self.lines(directory.file("mail.jsonl"))
        #expect(lines.map { $0["id"] } == [.string("a"), .string("b"), .string("d")])
        #expect(lines.map { $0["data"] } == [Self.json(a), Self.json(b), Self.json(d)])
        // Not a batch (no array at /batch): one event, as without a split.
        let single = try connection.post("/s", headers: [("Content-Type", "application/json")], body: #"{"kind": "x"}"#)
        #expect(Self.json(single.body)?["status"] == .string("filtered"), "\(single.body)")
    }

    @Test("a transform keeps a field out of the file sink; attributes set the CloudEvent's subject and type")
    func transformAndAttributes() throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let port = try RedisServer.freePort()
        let config = try writeConfig(
            """
            {"listen": {"host": "127.0.0.1", "port": \(port)},
             "sinks": {"archive": {"type": "file", "path": "\(directory.file("archive.jsonl"))"}},
             "sources": {"s": {"path": "/s", "verify": {"scheme": "none"},
                "transform": [{"op": "remove", "path": "/customer/email"}, {"op": "remove", "path": "/not/there"},
                              {"op": "move", "from": "/legacy_id", "path": "/id"}],
                "attributes": {"subject": "{json:/id}", "type": "{header:X-Topic}"},
                "routes": [{"types": ["orders/*"], "sinks": ["archive"],
                            "transform": [{"op": "add", "path": "/tags/-", "value": "routed"},
                                          {"op": "copy", "from": "/customer/name", "path": "/name"}],
                            "attributes": {"routedby": "orders"}}]}}}
            """, in: directory)
        let server = try BridgeProcess(config: config)
        defer { _ = server.terminate() }
        let connection = try KeepAliveConnection(port: port)
        let body = #"{"legacy_id": 42, "customer": {"name": "Ada", "email": "ada@example.com"}, "tags": ["new"]}"#
        let answer = try connection.post(
            "/s", headers: [("Content-Type", "application/json"), ("X-Topic", "orders/create")], body: body)
        #expect(answer.status == 200, "\(answer.body)")
        let lines = try Self.lines(directory.file("archive.jsonl"))
        #expect(lines.count == 1)
        #expect(
            lines.first?["data"]
                == Self.json(#"{"customer": {"name": "Ada"}, "tags": ["new", "routed"], "id": 42, "name": "Ada"}"#))
        #expect(lines.first?["type"] == .string("orders/create"))
        #expect(lines.first?["subject"] == .string("42"))
        #expect(lines.first?["routedby"] == .string("orders"))
        #expect(!(try String(contentsOfFile: directory.file("archive.jsonl"), encoding: .utf8)).contains("ada@example.com"))
    }

    @Test("Twilio gets TwiML back; answers per outcome render {id} and {status}; errors keep the bridge's answers")
    func customAnswers() throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let port = try RedisServer.freePort()
        let twilio = try Self.fixture("twilio")
        let config = try writeConfig(
            """
            {"listen": {"host": "127.0.0.1", "port": \(port)},
             "sinks": {"archive": {"type": "file", "path": "\(directory.file("archive.jsonl"))"}},
             "sources": {
               "sms": {"path": "/s", "verify": \(Self.verify(twilio)), "sinks": ["archive"],
                       "respond": {"status": 200, "contentType": "text/xml", "body": "<?xml version=\\"1.0\\" encoding=\\"UTF-8\\"?><Response></Response>"}},
               "tok": {"path": "/tok", "verify": {"scheme": "token", "secrets": ["t"], "idHeader": "X-Id"}, "sinks": ["archive"],
                       "respond": {"contentType": "application/json", "body": "{\\"id\\": \\"{id}\\", \\"s\\": \\"{status}\\"}",
                                   "headers": {"X-Id": "{id}"}}},
               "sf": {"path": "/sf", "verify": {"scheme": "none"}, "routes": [{"types": ["never"], "sinks": ["archive"]}],
                      "respond": {"filtered": {"status": 202, "contentType": "application/json", "body": "{\\"ack\\": \\"{id}\\", \\"was\\": \\"{status}\\"}",
                                               "headers": {"X-Ack": "{status}"}}}}}}
            """, in: directory)
        let server = try BridgeProcess(config: config)
        defer { _ = server.terminate() }
        let connection = try KeepAliveConnection(port: port)
        let form = "MessageSid=SM1234&From=%2B15550001111&Body=hello"
        let signed = try twilio.signed(body: Array(form.utf8), at: Timestamp.now().secondsSince1970)
        func exchange(_ path: String, _ headers: [(String, String)], _ body: String) throws -> (
            status: Int, head: String, body: String
        ) {
            var request = "POST \(path) HTTP/1.1\r\nHost: localhost\r\nContent-Length: \(body.utf8.count)\r\n"
            for (name, value) in headers { request += "\(name): \(value)\r\n" }
            try connection.sendRaw(request + "\r\n" + body)
            return try connection.readAnswer()
        }
        let formType = ("Content-Type", "application/x-www-form-urlencoded")
        let twiml = try exchange(signed.uri, signed.headers + [formType], form)
        #expect(twiml.status == 200)
        #expect(twiml.body == #"<?xml version="1.0" encoding="UTF-8"?><Response></Response>"#)
        #expect(twiml.head.lowercased().contains("content-type: text/xml"), "\(twiml.head)")
        // The provider's retry is a duplicate: the same TwiML.
        #expect(try exchange(signed.uri, signed.headers + [formType], form).body == twiml.body)
        // A bad signature keeps the bridge's own 401.
        let forged = try exchange(signed.uri, [("X-Twilio-Signature", "AAAA"), formType], form)
        #expect(forged.status == 401)
        #expect(forged.body.contains("signature_invalid"))

        // {id} and {status} are replaced in one pass: an id holding "{status}" stays as it is;
        // in the body it is escaped for JSON, in a header it is as it came.
        let tricky = try exchange("/tok", [("Authorization", "t"), ("X-Id", #"a"{status}"#)], "{}")
        #expect(tricky.status == 200)
        #expect(
            Self.json(tricky.body) == .object([("id", .string(#"a"{status}"#)), ("s", .string("accepted"))]), "\(tricky.body)")
        #expect(tricky.head.contains(#"X-Id: a"{status}"#), "\(tricky.head)")

        // Only `filtered` has an answer of its own; the id is escaped for JSON.
        let filtered = try exchange("/sf", [("Content-Type", "application/json")], #"{"a": "\""}"#)
        #expect(filtered.status == 202)
        #expect(Self.json(filtered.body) == .object([("ack", .string(bodyHash(#"{"a": "\""}"#))), ("was", .string("filtered"))]))
        #expect(filtered.head.contains("X-Ack: filtered"), "\(filtered.head)")
        let duplicate = try exchange("/sf", [("Content-Type", "application/json")], #"{"a": "\""}"#)
        #expect(Self.json(duplicate.body)?["status"] == .string("duplicate"), "\(duplicate.body)")
    }

    @Test(
        "SIGHUP applies a changed match, split and respond; a reload with an invalid $regex is refused and the running config kept"
    )
    func reload() throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let port = try RedisServer.freePort()
        func config(_ match: String, respond: String = "") -> String {
            """
            {"listen": {"host": "127.0.0.1", "port": \(port)},
             "sinks": {"archive": {"type": "file", "path": "\(directory.file("archive.jsonl"))"}},
             "sources": {"s": {"path": "/s", "verify": {"scheme": "none"}\(respond),
                               "routes": [{"match": \(match), "sinks": ["archive"]}]}}}
            """
        }
        let path = try writeConfig(config(#"{"body": {"kind": "a"}}"#), in: directory)
        let server = try BridgeProcess(config: path)
        defer { _ = server.terminate() }
        let connection = try KeepAliveConnection(port: port)
        func status(_ body: String) throws -> String? {
            Self.json(try connection.post("/s", headers: [("Content-Type", "application/json")], body: body).body)?["status"]?
                .scalarText
        }
        #expect(try status(#"{"kind": "b", "n": 1}"#) == "filtered")
        _ = try writeConfig(
            config(#"{"body": {"kind": {"$in": ["a", "b"]}}}"#, respond: #", "respond": {"body": "ok {status}"}"#), in: directory)
        #expect(server.reload())
        let answer = try connection.post("/s", headers: [("Content-Type", "application/json")], body: #"{"kind": "b", "n": 2}"#)
        #expect(answer.body == "ok accepted")
        _ = try writeConfig(config(#"{"body": {"kind": {"$regex": "(a"}}}"#), in: directory)
        #expect(!server.reload())
        #expect(server.logText.contains("sources.s.routes[0].match.body.kind.$regex"), "\(server.logText)")
        let kept = try connection.post("/s", headers: [("Content-Type", "application/json")], body: #"{"kind": "a", "n": 3}"#)
        #expect(kept.body == "ok accepted")
        #expect(try Self.lines(directory.file("archive.jsonl")).count == 2)
    }
}
