import NIOCore
import Synchronization

/// The open connections and the requests being processed, so a graceful stop can ask every
/// connection to wind down and wait for the answers still owed.
final class InFlightRequests: Sendable {
    private struct State {
        var count = 0
        var waiters: [Int: CheckedContinuation<Bool, Never>] = [:]
        var nextID = 0
        var connections: [ObjectIdentifier: any Channel] = [:]
    }

    private let state = Mutex(State())

    func begin() { state.withLock { $0.count += 1 } }

    /// Requests being processed now.
    var count: Int { state.withLock { $0.count } }

    func end() {
        let waiters = state.withLock { state -> [CheckedContinuation<Bool, Never>] in
            state.count -= 1
            guard state.count == 0 else { return [] }
            defer { state.waiters = [:] }
            return Array(state.waiters.values)
        }
        for waiter in waiters { waiter.resume(returning: true) }
    }

    /// Tracks `channel` until it closes.
    func track(_ channel: any Channel) {
        let id = ObjectIdentifier(channel)
        state.withLock { $0.connections[id] = channel }
        channel.closeFuture.whenComplete { _ in self.state.withLock { _ = $0.connections.removeValue(forKey: id) } }
    }

    /// Asks every connection to close once its current request is answered (the connection
    /// handler adds `Connection: close` to that answer; idle ones close at once).
    func quiesceConnections() {
        for channel in state.withLock({ Array($0.connections.values) }) {
            channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        }
    }

    /// Closes whatever connection is still open.
    func closeConnections() {
        for channel in state.withLock({ Array($0.connections.values) }) { channel.close(promise: nil) }
    }

    /// Returns true once no request is in flight, false when `timeout` passes first.
    func waitUntilIdle(timeout: Duration) async -> Bool {
        await withCheckedContinuation { continuation in
            let id = state.withLock { state -> Int? in
                guard state.count > 0 else { return nil }
                state.nextID += 1
                state.waiters[state.nextID] = continuation
                return state.nextID
            }
            guard let id else {
                continuation.resume(returning: true)
                return
            }
            // Registered before the timer starts, so the timeout can't be missed.
            Task {
                try? await Task.sleep(for: timeout)
                self.state.withLock { $0.waiters.removeValue(forKey: id) }?.resume(returning: false)
            }
        }
    }
}
