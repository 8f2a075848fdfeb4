import NIOCore
import NIOHTTP1
import Testing
import WebhookCore
import WebhookEncoding

@Suite("Routing and templates")
struct RoutingTests {
    @Test(
        "type globs: * spans dots, ? is one character, no match is no match",
        arguments: [
            ("payment_intent.*", "payment_intent.succeeded", true),
            ("payment_intent.*", "payment_intent.", true),
            ("payment_intent.*", "payment_intentX", false),
            ("*", "anything.at.all", true),
            ("charge.?", "charge.a", true),
            ("charge.?", "charge.ab", false),
            ("*.created", "customer.subscription.created", true),
            ("*.created", "customer.subscription.deleted", false),
            ("push", "push", true),
            ("push", "pushed", false),
            // Wildcards before the end are matched by the general matcher, not as a prefix.
            ("a*b*", "axbyy", true),
            ("a*b*", "axc", false),
            ("ch?rge.*", "charge.x", true),
            ("ch?rge.*", "chxrgx.x", false),
            ("**", "", true),
            ("*", "", true),
        ])
    func globs(pattern: String, type: String, matches: Bool) {
        #expect(TypeGlob(pattern).matches(type) == matches)
    }

    @Test("the first matching route wins; a route without types matches all")
    func firstRouteWins() {
        let table = RouteTable(routes: [
            .init(types: [TypeGlob("payment_intent.*"), TypeGlob("charge.*")], sinks: ["bus"]),
            .init(types: [TypeGlob("charge.failed")], sinks: ["alerts"]),
            .init(types: nil, sinks: ["archive"]),
        ])
        #expect(table.sinks(forType: "charge.failed") == ["bus"])
        #expect(table.sinks(forType: "payment_intent.created") == ["bus"])
        #expect(table.sinks(forType: "customer.created") == ["archive"])
        #expect(RouteTable(routes: [.init(types: [TypeGlob("a")], sinks: ["x"])]).sinks(forType: "b").isEmpty)
        #expect(RouteTable(sinks: ["a", "b"]).sinks(forType: "whatever") == ["a", "b"])
    }

    func event(id: String = "evt/1", type: String = "charge succeeded") -> WebhookEvent {
        let headers: TemplateHeaders = ["X-Shop-Domain": "shop one.example"]
        let body = #"{"data": {"object": {"id": "ch_9", "amount": 12}}, "tags": ["a b"]}"#
        return WebhookEvent(
            id: id, source: "stripe", type: type, time: Timestamp(secondsSince1970: 0), dataContentType: nil,
            scheme: "stripe", keyIndex: 0, data: ByteBuffer(string: body), requestHeaders: headers,
            bodyJSON: try? JSONParser.parse(Array(body.utf8)))
    }

    @Test("templates render every placeholder")
    func placeholders() throws {
        let template = try Template(
            parsing:
                "{source}|{type}|{id}|{header:x-shop-domain}|{json:/data/object/id}|{json:/data/object/amount}|{json:/missing}")
        #expect(template.render(event(), sanitizer: .verbatim) == "stripe|charge succeeded|evt/1|shop one.example|ch_9|12|")
        #expect(template.usesBodyJSON)
        #expect(try !Template(parsing: "webhooks.{source}").usesBodyJSON)
    }

    @Test("characters a Kafka topic or Redis key can't hold become _")
    func sanitizing() throws {
        let topic = try Template(parsing: "webhooks.{source}.{type}")
        #expect(topic.render(event(), sanitizer: .kafkaTopic) == "webhooks.stripe.charge_succeeded")
        let stream = try Template(parsing: "webhooks:{type}:{header:X-Shop-Domain}")
        #expect(stream.render(event(), sanitizer: .redisKey) == "webhooks:charge_succeeded:shop_one.example")
    }

    @Test("a placeholder value can't climb out of a file sink's directory")
    func pathTraversal() throws {
        let path = try Template(parsing: "/var/events/{id}/{type}.jsonl")
        #expect(
            path.render(event(id: "../../etc/passwd", type: ".."), sanitizer: .pathComponent)
                == "/var/events/.._.._etc_passwd/__.jsonl")
    }

    @Test("an http sink's path and query: a value is percent-encoded, so it never adds a segment, a parameter or a fragment")
    func urlComponents() throws {
        let target = try Template(parsing: "/hooks/{type}?id={id}&from={source}")
        #expect(
            target.render(event(id: "a&b=c#d", type: "../order created/é"), sanitizer: .urlComponent)
                == "/hooks/..%2Forder%20created%2F%C3%A9?id=a%26b%3Dc%23d&from=stripe")
        #expect(
            target.render(event(id: "evt_1-2.3~4", type: "order.created"), sanitizer: .urlComponent)
                == "/hooks/order.created?id=evt_1-2.3~4&from=stripe")
    }

    @Test("a rendered name the sink would refuse is made valid: cut with a hash of the whole value, never empty")
    func namesMadeValid() throws {
        let topic = try Template(parsing: "{type}")
        let long = String(repeating: "a", count: 300)
        let cut = topic.render(event(type: long), sanitizer: .kafkaTopic)
        #expect(cut.count == 249)
        #expect(cut.hasPrefix(String(repeating: "a", count: 232) + "-"))
        // Two long values that share their first 249 characters stay apart.
        #expect(topic.render(event(type: long + "b"), sanitizer: .kafkaTopic) != cut)
        #expect(topic.render(event(type: ""), sanitizer: .kafkaTopic) == "_")
        // A file name (one path component) stays within 255 bytes, even in the middle of a path.
        let path = try Template(parsing: "/var/events/{type}/{id}.jsonl")
        let rendered = path.render(event(id: "e", type: long), sanitizer: .pathComponent)
        let components = rendered.split(separator: "/")
        #expect(components.count == 4)
        #expect(components.allSatisfy { $0.utf8.count <= 255 })
        #expect(components[2].utf8.count == 255)
        #expect(path.render(event(id: "e", type: "ok"), sanitizer: .pathComponent) == "/var/events/ok/e.jsonl")
        // A name ending in the directory separator gets a file name.
        #expect(try Template(parsing: "/var/events/{type}/").render(event(), sanitizer: .pathComponent).hasSuffix("/_"))
    }

    @Test("a long value is shortened inside its name: the template's literal parts (prefix, suffix, extension) are kept")
    func literalPartsKept() throws {
        let long = String(repeating: "t", count: 300)
        let file = try Template(parsing: "/var/out/{type}.jsonl").render(event(type: long), sanitizer: .pathComponent)
        let name = try #require(file.split(separator: "/").last)
        #expect(file.hasPrefix("/var/out/ttt"))
        #expect(name.hasSuffix(".jsonl"), "\(name)")
        #expect(name.utf8.count == 255)
        let other = try Template(parsing: "/var/out/{type}.jsonl").render(event(type: long + "u"), sanitizer: .pathComponent)
        #expect(other != file)
        // Two placeholders in one name: the longer value gives way first.
        let two = try Template(parsing: "/o/{source}-{type}-{id}.jsonl").render(
            event(id: "e1", type: long), sanitizer: .pathComponent)
        #expect(two.hasPrefix("/o/stripe-ttt") && two.hasSuffix("-e1.jsonl") && two.utf8.count == 255 + 3, "\(two)")
        let topic = try Template(parsing: "{type}.events").render(event(type: long), sanitizer: .kafkaTopic)
        #expect(topic.hasSuffix(".events") && topic.count == 249, "\(topic)")
        // Literal text alone over the limit can't be kept whole: the name is still made valid.
        let literal = String(repeating: "l", count: 300)
        let overlong = try Template(parsing: "/o/\(literal){id}").render(event(id: "e"), sanitizer: .pathComponent)
        #expect(overlong.split(separator: "/").allSatisfy { $0.utf8.count <= 255 })
    }

    @Test(
        "unknown placeholders and unbalanced braces are refused",
        arguments: ["{nope}", "a{source", "a}b", "{header:}", "{json:x}"])
    func badTemplates(text: String) {
        #expect(throws: TemplateError.self) { try Template(parsing: text) }
    }
}
