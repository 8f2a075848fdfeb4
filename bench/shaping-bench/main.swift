// The CPU a route's `match` and `transform` add to one request, by layer, measured in a loop
// in one process (`make bench` runs it; `swift run -c release shaping-bench`). The event is
// bench/standard-webhooks.lua's 1 KiB body; the match and transform are bench/bench.py's:
// five conditions that hold, a `remove` and an `add`. What the shaped path does instead of
// the plain one: parse the body where the plain path only scans it for its type (the
// shaped path reads its type from the parse), evaluate the filter, apply the patch, write
// the body back as compact JSON into a new buffer.
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
let rounds = 5
let clock = ContinuousClock()
let parsed = try JSONParser.parse(body)
let patched = transform.apply(to: parsed)

/// One layer: what it does once; what it returns is summed and printed, so the optimizer
/// can't drop the work.
struct Layer {
    let name: String
    let work: () throws -> Int
}

let layers = [
    Layer(name: "scan for the type (the plain path)") { JSONParser.topLevelTexts(body, ["type"])?.count ?? 0 },
    Layer(name: "parse the body (the shaped path, its type read from it)") {
        if case .object(let members) = try JSONParser.parse(body) { members.count } else { 0 }
    },
    Layer(name: "five-condition match") { filter.matches(EventFilter.Input(body: parsed)) ? 1 : 0 },
    Layer(name: "two-operation transform") {
        if case .object(let members) = transform.apply(to: parsed) { members.count } else { 0 }
    },
    Layer(name: "write the body back") {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(body.count)
        JSONWriter.append(patched, to: &bytes)
        return ByteBuffer(bytes: bytes).readableBytes
    },
]

// The layers take turns, round after round, and each keeps its best round: the VM's speed
// drifts by tens of percent within minutes, and layers timed one after the other would
// each see a different machine. `LAYER=transform` times only the layers whose names
// contain the text (for `perf record`).
let only = ProcessInfo.processInfo.environment["LAYER"] ?? ""
var best = [Double](repeating: .infinity, count: layers.count)
var sink = 0
for _ in 0..<rounds {
    for (index, layer) in layers.enumerated() where only.isEmpty || layer.name.contains(only) {
        let start = clock.now
        for _ in 0..<iterations { sink &+= try layer.work() }
        let elapsed = clock.now - start
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        best[index] = min(best[index], seconds * 1e6 / Double(iterations))
    }
}
for (index, layer) in layers.enumerated() where best[index].isFinite {
    print("\(layer.name): \(String(format: "%.2f", best[index])) us")
}
if only.isEmpty {
    let added = best[1] - best[0] + best[2] + best[3] + best[4]
    let figure = String(format: "%.2f", added)
    print("added by match and transform (parse - scan + match + transform + write): \(figure) us per request (\(sink % 10))")
}
