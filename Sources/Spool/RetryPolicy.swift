import WebhookCore

/// When a spooled event is tried again (`spool.retry`): exponential backoff with full
/// jitter, and a horizon after which an event that still was not delivered goes to the dead
/// letters.
///
/// After the `n`th failure in a row the forwarder waits a random time between 0 and
/// `min(maximum, initial × multiplier^(n-1))` ("full jitter": replicas that failed together
/// do not retry together). A sink that says when to come back (`Retry-After`) is believed
/// instead.
public struct RetryPolicy: Sendable, Equatable {
    /// `initialMs`: the ceiling of the first wait.
    public var initial: Duration
    /// `maxMs`: the ceiling no wait exceeds.
    public var maximum: Duration
    /// `multiplier`: how the ceiling grows with each failure in a row.
    public var multiplier: Double
    /// `maxAgeSeconds`: how long after its receipt an event may still be retried.
    public var maxAge: Duration

    public init(
        initial: Duration = .milliseconds(500), maximum: Duration = .seconds(300), multiplier: Double = 2,
        maxAge: Duration = .seconds(259_200)
    ) {
        self.initial = initial
        self.maximum = maximum
        self.multiplier = multiplier
        self.maxAge = maxAge
    }

    /// The longest wait after `failures` failures in a row (1 or more).
    public func ceiling(afterFailures failures: Int) -> Duration {
        let initialSeconds = Self.seconds(initial)
        let maximumSeconds = Self.seconds(maximum)
        var ceiling = initialSeconds
        var step = 1
        while step < failures, ceiling < maximumSeconds {
            ceiling *= multiplier
            step += 1
        }
        return .milliseconds(Int64((min(ceiling, maximumSeconds) * 1000).rounded()))
    }

    /// The wait after `failures` failures in a row: `fraction` (0 to 1, random in use) of
    /// the ceiling.
    public func delay(afterFailures failures: Int, fraction: Double = Double.random(in: 0..<1)) -> Duration {
        ceiling(afterFailures: failures) * fraction
    }

    /// Whether an event received at `received` is past the horizon at `now`.
    public func isExpired(received: Timestamp, now: Timestamp) -> Bool {
        let age = now.millisecondsSince1970 - received.millisecondsSince1970
        return age >= Int64(Self.seconds(maxAge) * 1000)
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }
}
