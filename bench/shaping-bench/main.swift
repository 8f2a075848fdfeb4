// The CPU a route's `match` and `transform` add to one request, by layer, measured in a loop
// in one process (`make bench` runs it; `swift run -c release shaping-bench`). The event is
// bench/standard-webhooks.lua's 1 KiB body; the match and transform are bench/bench.py's:
// five conditions that hold, a `remove` and an `add`. What the shaped path does that the
// plain one does not: parse the body (the plain path only scans it for its type), evaluate
// the filter, apply the patch, write the body back as compact JSON into a new buffer.
import Foundation
import NIOCore
import WebhookCore
import WebhookEncoding

let id = "msg_1764000000_1_000000001"
let head = #"{"type":"invoice.paid","id":""# + id + #"","data":{"object":"invoice","amount_due":4200,"currency":"eur","pad":""#
let tail = "\"}}"
let body = Array((head + String(repeating: "x", count: 1024 - head.utf8.count - tail.utf8.count) + tail).utf8)
let match = #"""
    {"body": {"type": "invoice.paid", "id": {"$startsWith": "msg_"},
              "data": {"object": "invoice", "amount_due": {"$gte": 100}, "currency": {"$in": ["eur", "usd"]}}}}
    """#
let patch = #"[{"op": "remove", "path": "/data/object"}, {"op": "add", "path": "/data/redacted", "value": true}]"#

let log = ProblemLog()
guard let filter = EventFilter.compile(try JSONParser.parse(Array(match.utf8)), path: "match", log: log),
    let transform = JSONPatch.read(try JSONParser.parse(Array(patch.utf8)), path: "transform", log: log)
else {
    fatalError("\(log.problems)")
}

let iterations = CommandLine.arguments.count > 1 ? Int(CommandLine.arguments[1]) ?? 200_000 : 200_000
let clock = ContinuousClock()

/// Microseconds per iteration of `work`, the best of three runs; what `work` returns is
/// summed and printed, so the optimizer can't drop it.
func measure(_ name: String, _ work: () throws -> Int) rethrows -> Double {
    var best = Double.infinity
    var sink = 0
    for _ in 0..<3 {
        let start = clock.now
        for _ in 0..<iterations { sink &+= try work() }
        let elapsed = clock.now - start
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        best = min(best, seconds * 1e6 / Double(iterations))
    }
    print("\(name): \(String(format: "%.2f", best)) us (\(sink % 10))")
    return best
}

let parsed = try JSONParser.parse(body)
let scan = measure("scan for the type (both paths)") { JSONParser.topLevelTexts(body, ["type"])?.count ?? 0 }
let parse = try measure("parse the body") {
    if case .object(let members) = try JSONParser.parse(body) { members.count } else { 0 }
}
let match5 = measure("five-condition match") { filter.matches(EventFilter.Input(body: parsed)) ? 1 : 0 }
let patched = transform.apply(to: parsed)
let apply = measure("two-operation transform") {
    if case .object(let members) = transform.apply(to: parsed) { members.count } else { 0 }
}
let write = measure("write the body back") {
    var bytes: [UInt8] = []
    bytes.reserveCapacity(body.count)
    JSONWriter.append(patched, to: &bytes)
    return ByteBuffer(bytes: bytes).readableBytes
}
print("added by match and transform: \(String(format: "%.2f", parse + match5 + apply + write)) us per request")
