import Synchronization

/// Counts requests being processed, so a graceful stop can wait for them to be answered.
final class InFlightRequests: Sendable {
    private struct State {
        var count = 0
        var waiters: [Int: CheckedContinuation<Bool, Never>] = [:]
        var nextWaiter = 0
    }

    private let state = Mutex(State())

    func begin() { state.withLock { $0.count += 1 } }

    func end() {
        let waiters = state.withLock { state -> [CheckedContinuation<Bool, Never>] in
            state.count -= 1
            guard state.count == 0 else { return [] }
            defer { state.waiters = [:] }
            return Array(state.waiters.values)
        }
        for waiter in waiters { waiter.resume(returning: true) }
    }

    /// Returns true once no request is in flight, false when `timeout` passes first.
    func waitUntilIdle(timeout: Duration) async -> Bool {
        let id = state.withLock { state -> Int in
            state.nextWaiter += 1
            return state.nextWaiter
        }
        let timer = Task {
            try? await Task.sleep(for: timeout)
            if !Task.isCancelled { self.resume(waiter: id, idle: false) }
        }
        defer { timer.cancel() }
        return await withCheckedContinuation { continuation in
            let idle = state.withLock { state -> Bool in
                if state.count == 0 { return true }
                state.waiters[id] = continuation
                return false
            }
            if idle { continuation.resume(returning: true) }
        }
    }

    private func resume(waiter id: Int, idle: Bool) {
        state.withLock { $0.waiters.removeValue(forKey: id) }?.resume(returning: idle)
    }
}
