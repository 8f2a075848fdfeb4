// The CPU the inspector (config `admin`) adds to one request, measured in a loop in one
// process (`make bench` runs it; `swift run -c release inspector-bench`): the record made and
// noted as the pipeline notes it, written to a ring of 1,000, and the accepted event kept for
// the event stream, with bench/standard-webhooks.lua's 1 KiB body. Without `admin` the
// request path does none of it. Best of five rounds (the VM's speed drifts between rounds).
import Foundation
@_spi(Benchmark) import WebhookBridge

let iterations = CommandLine.arguments.count > 1 ? Int(CommandLine.arguments[1]) ?? 200_000 : 200_000
let body = Array(String(repeating: "x", count: 1024).utf8)
let clock = ContinuousClock()
var best = Duration.seconds(1_000)
var checksum = 0
for _ in 0..<5 {
    let started = clock.now
    checksum &+= InspectorBenchmark.run(iterations: iterations, body: body)
    best = min(best, clock.now - started)
}
let nanoseconds = Double(best.components.seconds) * 1e9 + Double(best.components.attoseconds) / 1e9
print(String(format: "inspector on: record, ring and event stream: %.2f us/request (%d)", nanoseconds / 1000 / Double(iterations), checksum))
