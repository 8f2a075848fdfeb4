// The memory idempotency store filled to its default bound (a million keys), one accepted
// event after another as the pipeline does it (reserve, then commit), timing each: the
// longest single event tells how long a dictionary's growth holds its lock, which every
// request whose key falls under that lock waits for. `swift run -c release store-bench [KEYS]`.
import Foundation
import WebhookCore

let keys = CommandLine.arguments.count > 1 ? Int(CommandLine.arguments[1]) ?? 1_000_000 : 1_000_000
let store = MemoryIdempotencyStore(ttlSeconds: 86_400)
let ids = (0..<keys).map { IdempotencyKey(source: "bench", id: "evt_\($0)") }
let clock = ContinuousClock()
var longest = Duration.zero
var longestAt = 0
var over = 0
let started = clock.now
for (index, key) in ids.enumerated() {
    let before = clock.now
    guard await store.reserve(key) == .reserved else { fatalError("\(key.id) was not new") }
    await store.commit(key)
    let took = clock.now - before
    if took > .microseconds(500) { over += 1 }
    if took > longest { (longest, longestAt) = (took, index) }
}
let total = clock.now - started
func milliseconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) * 1e3 + Double(duration.components.attoseconds) / 1e15
}
print(
    String(
        format: "%d keys in %d shards: %.2f us an event on average; longest %.2f ms (key %d); %d events over 0.5 ms",
        keys, store.shardCount, milliseconds(total) * 1000 / Double(keys), milliseconds(longest), longestAt, over))
