import BridgeTestSupport
import Foundation
import Testing

/// One `match` and a request it is tried on, with whether the route should take it.
struct MatchCase: Sendable, CustomTestStringConvertible {
    let name: String
    let match: String
    let body: String
    var headers: [String] = []
    var query: String? = nil
    var type: String? = nil
    let taken: Bool

    var testDescription: String { "\(name): \(taken ? "taken" : "skipped")" }
}

/// Each operator of a route's `match`, alone and nested, over each scope, through the real
/// binary's dry run (`webhook-bridge route`), which runs the serve path's own routing.
@Suite("Route matches: each operator and scope, through webhook-bridge route", .serialized)
struct RouteMatchTests {
    static let cases: [MatchCase] = [
        // Plain values.
        .init(name: "plain value equal", match: #"{"body": {"type": "a"}}"#, body: #"{"type": "a"}"#, taken: true),
        .init(name: "plain value different", match: #"{"body": {"type": "a"}}"#, body: #"{"type": "b"}"#, taken: false),
        .init(name: "plain value in an array", match: #"{"body": {"tags": "x"}}"#, body: #"{"tags": ["y", "x"]}"#, taken: true),
        .init(
            name: "array wants all its values", match: #"{"body": {"tags": ["x", "y"]}}"#, body: #"{"tags": ["y", "z", "x"]}"#,
            taken: true),
        .init(
            name: "array missing one value", match: #"{"body": {"tags": ["x", "y"]}}"#, body: #"{"tags": ["x"]}"#, taken: false),
        .init(
            name: "nested object on one array element",
            match: #"{"body": {"items": {"sku": "A", "qty": 2}}}"#,
            body: #"{"items": [{"sku": "B", "qty": 1}, {"sku": "A", "qty": 2}]}"#,
            taken: true),
        .init(
            name: "nested object split over two elements",
            match: #"{"body": {"items": {"sku": "A", "qty": 2}}}"#,
            body: #"{"items": [{"sku": "A", "qty": 1}, {"sku": "B", "qty": 2}]}"#,
            taken: false),
        .init(name: "missing path", match: #"{"body": {"a": {"b": 1}}}"#, body: #"{"a": {}}"#, taken: false),
        .init(name: "null is a value", match: #"{"body": {"a": null}}"#, body: #"{"a": null}"#, taken: true),
        // Comparisons.
        .init(name: "$eq numbers by value", match: #"{"body": {"n": {"$eq": 10}}}"#, body: #"{"n": 10.0}"#, taken: true),
        .init(
            name: "$eq objects deep", match: #"{"body": {"o": {"$eq": {"a": [1, 2]}}}}"#, body: #"{"o": {"a": [1, 2]}}"#,
            taken: true),
        .init(name: "$eq type mismatch", match: #"{"body": {"n": {"$eq": 10}}}"#, body: #"{"n": "10"}"#, taken: false),
        .init(name: "$neq", match: #"{"body": {"n": {"$neq": 1}}}"#, body: #"{"n": 2}"#, taken: true),
        .init(name: "$neq on a missing path", match: #"{"body": {"n": {"$neq": 1}}}"#, body: #"{}"#, taken: false),
        .init(name: "$neq type mismatch", match: #"{"body": {"n": {"$neq": 0}}}"#, body: #"{"n": "0"}"#, taken: false),
        .init(name: "$nin type mismatch", match: #"{"body": {"c": {"$nin": [1, 2]}}}"#, body: #"{"c": "x"}"#, taken: false),
        .init(
            name: "integers beyond 2^53 stay apart", match: #"{"body": {"id": 9007199254740993}}"#,
            body: #"{"id": 9007199254740992}"#, taken: false),
        .init(
            name: "$gt on integers beyond 2^53", match: #"{"body": {"id": {"$gt": 9007199254740992}}}"#,
            body: #"{"id": 9007199254740993}"#, taken: true),
        .init(
            name: "$lt on integers beyond 2^64", match: #"{"body": {"id": {"$lt": 18446744073709551617}}}"#,
            body: #"{"id": 18446744073709551616}"#, taken: true),
        .init(
            name: "$gte on a 64-bit integer and a larger one", match: #"{"body": {"id": {"$gte": 18446744073709551616}}}"#,
            body: #"{"id": 9223372036854775807}"#, taken: false),
        .init(name: "$eq 1 and 1.0e0", match: #"{"body": {"n": {"$eq": 1}}}"#, body: #"{"n": 1.0e0}"#, taken: true),
        .init(name: "$gt", match: #"{"body": {"n": {"$gt": 5}}}"#, body: #"{"n": 5.5}"#, taken: true),
        .init(name: "$gt equal", match: #"{"body": {"n": {"$gt": 5}}}"#, body: #"{"n": 5}"#, taken: false),
        .init(name: "$gte", match: #"{"body": {"n": {"$gte": 5}}}"#, body: #"{"n": 5}"#, taken: true),
        .init(name: "$lt", match: #"{"body": {"n": {"$lt": -1}}}"#, body: #"{"n": -2}"#, taken: true),
        .init(name: "$lte", match: #"{"body": {"n": {"$lte": 1e3}}}"#, body: #"{"n": 1001}"#, taken: false),
        .init(
            name: "$gt on ISO dates", match: #"{"body": {"t": {"$gt": "2026-01-01"}}}"#, body: #"{"t": "2026-06-01T00:00:00Z"}"#,
            taken: true),
        .init(name: "$gt type mismatch", match: #"{"body": {"n": {"$gt": 5}}}"#, body: #"{"n": "10"}"#, taken: false),
        .init(name: "$gt and $lt together", match: #"{"body": {"n": {"$gt": 1, "$lt": 3}}}"#, body: #"{"n": 3}"#, taken: false),
        // Sets and strings.
        .init(name: "$in a list", match: #"{"body": {"c": {"$in": ["usd", "eur"]}}}"#, body: #"{"c": "eur"}"#, taken: true),
        .init(
            name: "$in not in the list", match: #"{"body": {"c": {"$in": ["usd", "eur"]}}}"#, body: #"{"c": "gbp"}"#, taken: false
        ),
        .init(
            name: "$in a substring", match: #"{"body": {"s": {"$in": "needle"}}}"#, body: #"{"s": "a needle here"}"#, taken: true),
        .init(name: "$nin", match: #"{"body": {"c": {"$nin": ["usd"]}}}"#, body: #"{"c": "eur"}"#, taken: true),
        .init(name: "$nin on a missing path", match: #"{"body": {"c": {"$nin": ["usd"]}}}"#, body: #"{}"#, taken: false),
        .init(
            name: "$startsWith", match: #"{"body": {"r": {"$startsWith": "refs/heads/"}}}"#, body: #"{"r": "refs/heads/main"}"#,
            taken: true),
        .init(
            name: "$startsWith one of several", match: #"{"body": {"r": {"$startsWith": ["a/", "b/"]}}}"#, body: #"{"r": "b/x"}"#,
            taken: true),
        .init(name: "$endsWith", match: #"{"body": {"f": {"$endsWith": ".pdf"}}}"#, body: #"{"f": "a.PDF"}"#, taken: false),
        .init(name: "$exist true", match: #"{"body": {"a": {"$exist": true}}}"#, body: #"{"a": null}"#, taken: true),
        .init(name: "$exist false", match: #"{"body": {"a": {"$exist": false}}}"#, body: #"{"b": 1}"#, taken: true),
        .init(
            name: "$regex", match: #"{"body": {"email": {"$regex": "@example\\.(com|org)$"}}}"#,
            body: #"{"email": "a@example.org"}"#,
            taken: true),
        .init(
            name: "$regex no match", match: #"{"body": {"email": {"$regex": "^admin@"}}}"#, body: #"{"email": "a@example.org"}"#,
            taken: false),
        // Logic, nested.
        .init(
            name: "$and over an array of conditions", match: #"{"body": {"$and": [{"a": 1}, {"b": {"$gt": 1}}]}}"#,
            body: #"{"a": 1, "b": 2}"#, taken: true),
        .init(
            name: "$and with one failing", match: #"{"body": {"$and": [{"a": 1}, {"b": {"$gt": 1}}]}}"#,
            body: #"{"a": 1, "b": 0}"#,
            taken: false),
        .init(
            name: "$or across scopes", match: #"{"$or": [{"body": {"a": 1}}, {"headers": {"x-kind": "special"}}]}"#,
            body: #"{"a": 2}"#, headers: ["X-Kind: special"], taken: true),
        .init(
            name: "$or with none holding", match: #"{"$or": [{"body": {"a": 1}}, {"headers": {"x-kind": "special"}}]}"#,
            body: #"{"a": 2}"#, taken: false),
        .init(
            name: "$or of values", match: #"{"body": {"n": {"$or": [{"$lt": 0}, {"$gt": 100}]}}}"#, body: #"{"n": 101}"#,
            taken: true),
        .init(
            name: "$not of $in", match: #"{"body": {"status": {"$not": {"$in": ["draft", "deleted"]}}}}"#,
            body: #"{"status": "draft"}"#, taken: false),
        .init(
            name: "$not at the top", match: #"{"$not": {"body": {"test": true}}}"#, body: #"{"test": false}"#, taken: true),
        .init(
            name: "$and of $or and $not over array elements",
            match: #"{"body": {"items": {"$and": [{"$or": [{"sku": "A"}, {"sku": "B"}]}, {"$not": {"qty": 0}}]}}}"#,
            body: #"{"items": [{"sku": "B", "qty": 3}]}"#, taken: true),
        // Scopes other than the body.
        .init(
            name: "headers, by any case", match: #"{"headers": {"X-GitHub-Event": "push"}}"#, body: "{}",
            headers: ["x-github-event: push"], taken: true),
        .init(
            name: "header names inside $or, by any case", match: #"{"headers": {"$or": [{"X-Shop": "a"}, {"X-Other": "b"}]}}"#,
            body: "{}", headers: ["x-shop: a"], taken: true),
        .init(
            name: "headers missing", match: #"{"headers": {"x-github-event": {"$exist": true}}}"#, body: "{}", taken: false),
        .init(
            name: "query", match: #"{"query": {"shop": {"$endsWith": ".myshopify.com"}}}"#, body: "{}",
            query: "shop=a.myshopify.com&x=1", taken: true),
        .init(name: "query repeated", match: #"{"query": {"tag": "b"}}"#, body: "{}", query: "tag=a&tag=b", taken: true),
        .init(name: "path", match: #"{"path": "/s"}"#, body: "{}", taken: true),
        .init(name: "path prefix", match: #"{"path": {"$startsWith": "/other"}}"#, body: "{}", taken: false),
        .init(
            name: "event type", match: #"{"event": {"type": {"$startsWith": "order."}}}"#, body: "{}", type: "order.created",
            taken: true),
        .init(name: "event source", match: #"{"event": {"source": "s", "specversion": "1.0"}}"#, body: "{}", taken: true),
        .init(
            name: "body that is not JSON", match: #"{"body": {"$startsWith": "<?xml"}}"#, body: "<?xml version='1.0'?><a/>",
            taken: true),
    ]

    @Test("the route is taken exactly when its match holds", arguments: cases)
    func operatorCase(_ test: MatchCase) throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let config = try writeConfig(
            """
            {"sinks": {"hits": {"type": "file", "path": "\(directory.file("hits.jsonl"))"}},
             "sources": {"s": {"path": "/s", "verify": {"scheme": "none"},
                               "routes": [{"match": \(test.match), "sinks": ["hits"]}]}}}
            """, in: directory)
        try Data(test.body.utf8).write(to: URL(fileURLWithPath: directory.file("body")))
        var arguments = ["route", "--config", config, "--source", "s", "--body", directory.file("body")]
        for header in test.headers { arguments += ["--header", header] }
        if let query = test.query { arguments += ["--query", query] }
        if let type = test.type { arguments += ["--type", type] }
        let result = try CLI.run(arguments)
        #expect(result.status == 0, "\(result.stderr)")
        let took = result.stdout.contains("routes[0]: taken: sinks hits")
        let filtered = result.stdout.contains("filtered: no route takes it")
        #expect(took == test.taken && filtered == !test.taken, "\(result.stdout)\(result.stderr)")
    }

    @Test("the dry run shows each event after its transform, the route taken, and each skipped route's failing condition")
    func dryRunNamesTheCondition() throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let config = try writeConfig(
            """
            {"sinks": {"bus": {"type": "file", "path": "\(directory.file("bus.jsonl"))"},
                       "archive": {"type": "file", "path": "\(directory.file("archive.jsonl"))"}},
             "sources": {"stripe": {"path": "/stripe", "verify": {"scheme": "stripe", "secrets": ["whsec_x"]},
                "transform": [{"op": "remove", "path": "/data/object/card"}],
                "routes": [
                  {"types": ["payment_intent.*"],
                   "match": {"body": {"data": {"object": {"amount": {"$gte": 10000}, "currency": {"$in": ["usd", "eur"]}}}}},
                   "sinks": ["bus"]},
                  {"types": ["charge.*"], "sinks": ["bus"]},
                  {"match": {"body": {"livemode": false}}, "sinks": ["archive"]}]}}}
            """, in: directory)
        let body =
            #"{"id": "evt_1", "type": "payment_intent.created", "livemode": false, "data": {"object": {"amount": 500, "currency": "usd", "card": {"last4": "4242"}}}}"#
        try Data(body.utf8).write(to: URL(fileURLWithPath: directory.file("body")))
        let result = try CLI.run(["route", "--config", config, "--source", "stripe", "--body", directory.file("body")])
        #expect(result.status == 0)
        let lines = result.stdout.split(separator: "\n").map(String.init)
        #expect(
            lines == [
                "event 1 of 1: id evt_1, type payment_intent.created",
                #"  data: {"id":"evt_1","type":"payment_intent.created","livemode":false,"data":{"object":{"amount":500,"currency":"usd"}}}"#,
                "  routes[0]: skipped: body.data.object.amount $gte 10000: found 500",
                #"  routes[1]: skipped: type "payment_intent.created" matches none of "charge.*""#,
                "  routes[2]: taken: sinks archive",
            ], "\(result.stdout)")

        try Data(#"{"id": "evt_2", "type": "invoice.paid", "livemode": true}"#.utf8).write(
            to: URL(fileURLWithPath: directory.file("body")))
        let filtered = try CLI.run(["route", "--config", config, "--source", "stripe", "--body", directory.file("body")])
        #expect(filtered.stdout.contains("  routes[2]: skipped: body.livemode $eq false: found true"), "\(filtered.stdout)")
        #expect(filtered.stdout.hasSuffix("  filtered: no route takes it\n"), "\(filtered.stdout)")

        let unknown = try CLI.run(["route", "--config", config, "--source", "nope", "--body", directory.file("body")])
        #expect(unknown.status == 1)
        #expect(unknown.stderr.contains(#"no source named "nope" (sources: stripe)"#), "\(unknown.stderr)")
    }

    @Test("an unknown operator, an invalid $regex, a bad operand or scope: config errors naming their JSON path")
    func configErrors() throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let config = try writeConfig(
            """
            {"sinks": {"a": {"type": "file", "path": "\(directory.file("a.jsonl"))"}},
             "sources": {"s": {"path": "/s", "verify": {"scheme": "none"},
                "transform": [{"op": "test", "path": "/a", "value": 1}, {"op": "remove", "path": "a"}],
                "routes": [
                  {"match": {"body": {"amount": {"$gtt": 5}}}, "sinks": ["a"]},
                  {"match": {"body": {"name": {"$regex": "(unclosed"}}}, "sinks": ["a"]},
                  {"match": {"headers": {"x": {"$exist": "yes"}}, "bodies": {}}, "sinks": ["a"]},
                  {"match": {"$or": [{"body": {"a": {"$in": 5}}}]}, "sinks": ["a"]}]},
               "t": {"path": "/t", "verify": {"scheme": "none"}, "sinks": ["a"],
                     "respond": {"status": 204, "contentType": "text/plain\\r\\nX-Injected: 1", "headers": {"X-Ack": "a\\nb"}}}}}
            """, in: directory)
        let result = try CLI.run(["check-config", config])
        #expect(result.status == 1)
        let expected = [
            "sources.s.routes[0].match.body.amount.$gtt: unknown operator $gtt",
            "sources.s.routes[1].match.body.name.$regex: is not a valid regular expression",
            "sources.s.routes[2].match.headers.x.$exist: must be true or false, not a string",
            "sources.s.routes[2].match.bodies: is not a scope: use body, headers, query, path or event (or $and, $or, $not)",
            "sources.s.routes[3].match.$or[0].body.a.$in: must be an array of values or a string, not a number",
            #"sources.s.transform[0].op: "test" is not supported"#,
            "sources.t.respond.status: can't be 204",
            "sources.t.respond.contentType: must not hold control characters",
            "sources.t.respond.headers.X-Ack: must not hold control characters",
            #"sources.s.transform[1].path: must be a JSON Pointer: empty or starting with /, not "a""#,
        ]
        for line in expected { #expect(result.stderr.contains("\(config): \(line)"), "\(line)\n\(result.stderr)") }
    }
}
