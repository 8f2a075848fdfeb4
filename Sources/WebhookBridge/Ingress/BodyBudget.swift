import Synchronization

/// The bytes of request bodies held at once across all connections (`limits.maxBufferedBytes`,
/// SPEC section 8). A request reserves its declared `Content-Length` from its head (a chunked
/// one reserves as its chunks arrive) and gives it back once answered, so a flood of large
/// bodies, signed or not, can't take more memory than the budget: the one that would pass it
/// gets 503 `busy` before its body is read.
final class BodyBudget: Sendable {
    private let limit: Int
    private let used = Atomic<Int>(0)

    init(limit: Int) { self.limit = limit }

    /// Bytes reserved now, across all connections.
    var reserved: Int { used.load(ordering: .relaxed) }

    /// Takes `bytes` when they fit; false (and nothing taken) when they don't.
    func reserve(_ bytes: Int) -> Bool {
        guard bytes > 0 else { return true }
        var current = used.load(ordering: .relaxed)
        while true {
            guard current + bytes <= limit else { return false }
            let (exchanged, original) = used.compareExchange(
                expected: current, desired: current + bytes, ordering: .relaxed)
            if exchanged { return true }
            current = original
        }
    }

    func release(_ bytes: Int) {
        if bytes > 0 { used.subtract(bytes, ordering: .relaxed) }
    }
}
