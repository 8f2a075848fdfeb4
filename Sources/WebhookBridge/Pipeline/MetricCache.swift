import Synchronization

/// swift-metrics handles made once per key and reused. `Counter(label:dimensions:)` asks the
/// metrics factory every time (with Prometheus: sanitising the names and a registry lookup
/// under a lock), which per request cost more than the HMAC. Made on first use, so a cache
/// created before `MetricsSystem.bootstrap` still gets the bootstrapped factory's handles.
final class MetricCache<Key: Hashable & Sendable, Metric: Sendable>: Sendable {
    private let make: @Sendable (Key) -> Metric
    private let made = Mutex<[Key: Metric]>([:])

    init(_ make: @escaping @Sendable (Key) -> Metric) { self.make = make }

    subscript(key: Key) -> Metric {
        if let metric = made.withLock({ $0[key] }) { return metric }
        let metric = make(key)
        return made.withLock { made in
            if let existing = made[key] { return existing }
            made[key] = metric
            return metric
        }
    }
}
