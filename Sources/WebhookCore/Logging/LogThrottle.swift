import Synchronization

/// Turns a burst of identical failure lines into one line per interval with a count: during
/// an outage every request fails the same way, and one error line each (13,000 in 3 s,
/// measured) buries everything else in the log.
///
/// The first occurrence of a key is logged; later ones within `interval` are only counted,
/// and the first one after it is logged with the count of those left out (`log.suppressed`).
public final class LogThrottle: Sendable {
    private struct Entry {
        var logged: ContinuousClock.Instant
        var suppressed: Int
    }

    private let interval: Duration
    private let entries = Mutex<[String: Entry]>([:])
    /// Keys kept at most: a key holds a sink name or a reason class, never request data, so
    /// this is only a guard.
    private static let maximumKeys = 1024

    public init(interval: Duration = .seconds(10)) { self.interval = interval }

    /// nil: stay quiet. Otherwise log, with the number of lines left out since the last one.
    public func admit(_ key: String) -> Int? {
        let now = ContinuousClock.now
        return entries.withLock { entries -> Int? in
            if var entry = entries[key] {
                guard now - entry.logged >= interval else {
                    entry.suppressed += 1
                    entries[key] = entry
                    return nil
                }
                entries[key] = Entry(logged: now, suppressed: 0)
                return entry.suppressed
            }
            if entries.count >= Self.maximumKeys { entries.removeAll() }
            entries[key] = Entry(logged: now, suppressed: 0)
            return 0
        }
    }
}
