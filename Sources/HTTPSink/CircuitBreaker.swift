import NIOCore
import Synchronization

/// An HTTP sink's circuit breaker: after `failures` transient failures in a row the sink
/// opens for `open`: deliveries fail at once, without a request (the bridge spools them,
/// 202), until one request probes. A probe that succeeds closes it; one that fails opens it
/// again for twice as long, up to ``maximumOpen``.
final class CircuitBreaker: Sendable {
    /// The longest the breaker stays open before a probe.
    static let maximumOpen: TimeAmount = .minutes(10)

    enum State: Equatable {
        /// Requests go through; `failures` transient failures in a row so far.
        case closed(failures: Int)
        /// No request until `until`; then one probe. `period` is how long it was opened for.
        case open(until: NIODeadline, period: TimeAmount)
        /// The probe is in flight; other deliveries still fail at once.
        case probing(period: TimeAmount)
    }

    /// What a delivery may do now.
    enum Admission: Equatable {
        case pass
        case probe
        /// Fail at once: the breaker is open.
        case refuse
    }

    let threshold: Int
    let initialOpen: TimeAmount
    private let state = Mutex(State.closed(failures: 0))
    /// Called with true when the breaker opens and false when it closes (the gauge, the log).
    private let onChange: @Sendable (Bool) -> Void

    init(threshold: Int, open: TimeAmount, onChange: @escaping @Sendable (Bool) -> Void = { _ in }) {
        self.threshold = threshold
        self.initialOpen = open
        self.onChange = onChange
    }

    var current: State { state.withLock { $0 } }

    /// True while deliveries fail without a request.
    var isOpen: Bool {
        if case .closed = current { return false }
        return true
    }

    func admit(now: NIODeadline = .now()) -> Admission {
        state.withLock { state in
            switch state {
            case .closed: return .pass
            case .open(let until, let period):
                guard now >= until else { return .refuse }
                state = .probing(period: period)
                return .probe
            case .probing: return .refuse
            }
        }
    }

    /// The receiver answered (2xx, or a 4xx that is the event's fault, not the receiver's).
    func recordAnswer() {
        let closed = state.withLock { state -> Bool in
            let wasOpen = !state.isClosed
            state = .closed(failures: 0)
            return wasOpen
        }
        if closed { onChange(false) }
    }

    /// A transient failure (5xx, 408, 429, timeout, connection failure).
    func recordFailure(now: NIODeadline = .now()) {
        let opened = state.withLock { state -> Bool in
            switch state {
            case .closed(let failures):
                guard failures + 1 >= threshold else {
                    state = .closed(failures: failures + 1)
                    return false
                }
                state = .open(until: now + initialOpen, period: initialOpen)
                return true
            case .probing(let period):
                let next = TimeAmount.nanoseconds(min(period.nanoseconds * 2, Self.maximumOpen.nanoseconds))
                state = .open(until: now + next, period: next)
                return false
            case .open:
                return false  // a delivery that started before it opened
            }
        }
        if opened { onChange(true) }
    }
}

extension CircuitBreaker.State {
    var isClosed: Bool {
        if case .closed = self { return true }
        return false
    }
}
