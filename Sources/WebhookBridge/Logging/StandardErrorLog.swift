import Dispatch
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Standard error, written off the caller's thread: a log line is appended to a buffer and a
/// serial queue of its own does the `write(2)`s, so a stalled reader of standard error (a
/// full pipe, a frozen log shipper) never stalls an event loop. Past `limit` bytes waiting,
/// lines are dropped and counted, and the count is logged once writing resumes.
public final class StandardErrorLog: Sendable {
    public static let shared = StandardErrorLog(descriptor: 2, limit: 4 << 20)

    private struct State {
        var pending: [UInt8] = []
        var dropped = 0
        /// A drain is queued or running: lines appended now are written by it.
        var draining = false
    }

    private let state = Mutex(State())
    private let queue = DispatchQueue(label: "webhook-bridge.stderr")
    private let descriptor: Int32
    private let limit: Int

    @_spi(Testing) public init(descriptor: Int32, limit: Int) {
        self.descriptor = descriptor
        self.limit = limit
    }

    /// Queues `line` (newline included) and returns at once.
    public func write(_ line: String) {
        let startDrain = state.withLock { state -> Bool in
            if state.pending.count + line.utf8.count > limit {
                state.dropped += 1
            } else {
                // The count of the lines dropped just before this one, where they were.
                Self.appendNotice(&state)
                state.pending.append(contentsOf: line.utf8)
            }
            defer { state.draining = true }
            return !state.draining
        }
        if startDrain { queue.async { self.drain() } }
    }

    private static func appendNotice(_ state: inout State) {
        guard state.dropped > 0 else { return }
        state.pending.append(
            contentsOf: "webhook-bridge: \(state.dropped) log lines dropped: standard error was not read fast enough\n".utf8)
        state.dropped = 0
    }

    /// Waits (at most `seconds`) until the lines queued so far are written: before the
    /// process exits, and before a message that bypasses the log must come after them.
    public func flush(seconds: Double = 2) {
        let done = DispatchSemaphore(value: 0)
        queue.async { done.signal() }
        _ = done.wait(timeout: .now() + seconds)
    }

    private func drain() {
        while true {
            let bytes = state.withLock { state -> [UInt8] in
                Self.appendNotice(&state)
                if state.pending.isEmpty { state.draining = false }
                defer { state.pending.removeAll(keepingCapacity: true) }
                return state.pending
            }
            if bytes.isEmpty { return }
            writeAll(bytes)
        }
    }

    private func writeAll(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = systemWrite(descriptor, buffer.baseAddress! + offset, buffer.count - offset)
                if written < 0 && errno == EINTR { continue }
                if written <= 0 { return }
                offset += written
            }
        }
    }
}

#if canImport(Glibc)
    private let systemWrite = Glibc.write
#elseif canImport(Darwin)
    private let systemWrite = Darwin.write
#endif
