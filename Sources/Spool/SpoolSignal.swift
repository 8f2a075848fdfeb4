import Synchronization

/// Wakes a forwarder when something was spooled for its sink, or after a timeout.
///
/// States: `idle` (no signal, nobody waiting), `signalled` (a signal came while nobody
/// waited: the next ``wait(timeout:)`` returns at once, so a signal between a forwarder's
/// last look at the spool and its wait is never lost), `waiting` (one forwarder parked with
/// its continuation, a wait number and its timer), and `finished` (the spool shut down:
/// every wait returns at once). A parked wait is resumed by exactly one of: a signal, its own
/// timeout (which checks the wait number, so a stale timer can't end a later wait), `finish`,
/// or the waiting task's cancellation. Whichever comes first takes the continuation and the
/// timer out of the state in one step, so each resumes once and no other wait's timer is hit.
final class SpoolSignal: Sendable {
    enum Wake: Sendable { case signalled, timedOut, finished }

    private struct Waiter {
        let continuation: CheckedContinuation<Wake, Never>
        let number: UInt64
        var timer: Task<Void, Never>?
    }

    private enum State {
        case idle
        case signalled
        case waiting(Waiter)
        case finished
    }

    private let state = Mutex<(state: State, waits: UInt64)>((.idle, 0))

    func signal() {
        let waiter = state.withLock { current -> Waiter? in
            switch current.state {
            case .idle:
                current.state = .signalled
                return nil
            case .waiting(let waiter):
                current.state = .idle
                return waiter
            case .signalled, .finished:
                return nil
            }
        }
        resume(waiter, with: .signalled)
    }

    func finish() {
        let waiter = state.withLock { current -> Waiter? in
            defer { current.state = .finished }
            if case .waiting(let waiter) = current.state { return waiter }
            return nil
        }
        resume(waiter, with: .finished)
    }

    /// Returns when signalled (or already signalled), after `timeout`, or when finished or
    /// cancelled (`.finished`).
    func wait(timeout: Duration) async -> Wake {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Wake, Never>) in
                let outcome = state.withLock { current -> (Wake?, UInt64) in
                    switch current.state {
                    case .signalled:
                        current.state = .idle
                        return (.signalled, 0)
                    case .finished:
                        return (.finished, 0)
                    case .idle, .waiting:
                        if Task.isCancelled { return (.finished, 0) }
                        current.waits &+= 1
                        current.state = .waiting(Waiter(continuation: continuation, number: current.waits))
                        return (nil, current.waits)
                    }
                }
                if let wake = outcome.0 {
                    continuation.resume(returning: wake)
                    return
                }
                let number = outcome.1
                let timer = Task {
                    try? await Task.sleep(for: timeout)
                    self.resumeWaiter(number: number, with: .timedOut)
                }
                // Kept so an early wake-up cancels it: a forwarder that keeps up wakes once per
                // spooled event, and each wait would otherwise leave a task sleeping.
                let stale = state.withLock { current -> Bool in
                    guard case .waiting(var waiter) = current.state, waiter.number == number else { return true }
                    waiter.timer = timer
                    current.state = .waiting(waiter)
                    return false
                }
                if stale { timer.cancel() }
            }
        } onCancel: {
            resumeWaiter(number: nil, with: .finished)
        }
    }

    /// Resumes the parked wait (only wait `number`, when given).
    private func resumeWaiter(number: UInt64?, with wake: Wake) {
        let waiter = state.withLock { current -> Waiter? in
            guard case .waiting(let waiter) = current.state, number == nil || number == waiter.number else { return nil }
            current.state = .idle
            return waiter
        }
        resume(waiter, with: wake)
    }

    private func resume(_ waiter: Waiter?, with wake: Wake) {
        guard let waiter else { return }
        if wake != .timedOut { waiter.timer?.cancel() }
        waiter.continuation.resume(returning: wake)
    }
}
