import WebhookCore
import Dispatch
import Logging
import ServiceLifecycle
import Synchronization

/// A small pool of Redis connections with pipelining.
///
/// Each connection has a worker (its own dispatch queue, so hiredis's blocking calls never
/// run on Swift's cooperative pool). Commands that arrive while a worker is busy are sent
/// together in one round trip by its next batch. A broken connection is re-opened on the
/// next batch, with exponential backoff between attempts; while backing off, commands fail
/// at once rather than queue behind a dead server.
public final class RedisClient: Service {
    /// Why a command got no reply.
    public struct Failure: Error, Sendable, CustomStringConvertible {
        public let description: String
    }

    private final class Worker: Sendable {
        struct Pending {
            let command: [[UInt8]]
            let continuation: CheckedContinuation<RedisReply, any Error>
            /// Past this a command is failed instead of sent: its caller has given up, and a
            /// late XADD would write an event the provider will send again.
            let deadline: ContinuousClock.Instant
        }

        struct State {
            var pending: [Pending] = []
            var draining = false
            var closed = false
            var retryAt: ContinuousClock.Instant?
            var backoff: Duration = .milliseconds(100)
            var lastError: String? = "not contacted yet"
        }

        let connection = RedisConnection()
        let queue: DispatchQueue
        let state = Mutex(State())

        init(label: String) { self.queue = DispatchQueue(label: label) }

        var load: Int { state.withLock { $0.pending.count + ($0.draining ? 1 : 0) } }
    }

    private let endpoint: RedisEndpoint
    private let timeoutMilliseconds: Int
    private let workers: [Worker]
    private let next = Atomic<Int>(0)
    private let logger: Logger
    /// Commands per round trip at most.
    private let maximumBatch = 256
    /// Commands waiting per connection at most.
    private let maximumQueue = 10_000

    public init(endpoint: RedisEndpoint, connections: Int = 2, timeoutMilliseconds: Int, logger: Logger) {
        self.endpoint = endpoint
        self.timeoutMilliseconds = timeoutMilliseconds
        self.workers = (0..<max(1, connections)).map { Worker(label: "webhook-bridge.redis.\($0)") }
        self.logger = logger
    }

    /// True unless the last attempt on every connection failed.
    public var isReachable: Bool { workers.contains { $0.state.withLock { $0.lastError == nil } } }

    /// Sends one command (arguments as bytes) and returns its reply; Redis error replies are
    /// returned as `.error`, transport problems thrown as ``Failure``.
    public func execute(_ command: [[UInt8]]) async throws -> RedisReply {
        let start = next.add(1, ordering: .relaxed).oldValue
        let worker = (0..<workers.count).map { workers[(start + $0) % workers.count] }.min { $0.load < $1.load }!
        return try await withCheckedThrowingContinuation { continuation in
            let outcome: Result<Bool, Failure> = worker.state.withLock { state in
                if state.closed { return .failure(Failure(description: "the Redis client is shut down")) }
                if let retryAt = state.retryAt, ContinuousClock.now < retryAt, !state.draining {
                    return .failure(Failure(description: "Redis at \(endpoint.display) is unreachable: \(state.lastError ?? "")"))
                }
                guard state.pending.count < maximumQueue else {
                    return .failure(Failure(description: "too many Redis commands waiting"))
                }
                state.pending.append(
                    .init(command: command, continuation: continuation, deadline: .now + .milliseconds(timeoutMilliseconds)))
                if state.draining { return .success(false) }
                state.draining = true
                return .success(true)
            }
            switch outcome {
            case .failure(let failure): continuation.resume(throwing: failure)
            case .success(true): worker.queue.async { self.drain(worker) }
            case .success(false): break
            }
        }
    }

    /// Convenience for textual arguments.
    public func execute(_ arguments: String...) async throws -> RedisReply {
        try await execute(arguments.map { Array($0.utf8) })
    }

    private func drain(_ worker: Worker) {
        while true {
            let batch: [Worker.Pending]? = worker.state.withLock { state in
                if state.pending.isEmpty {
                    state.draining = false
                    return nil
                }
                let batch = Array(state.pending.prefix(maximumBatch))
                state.pending.removeFirst(batch.count)
                return batch
            }
            guard var batch else { return }
            let now = ContinuousClock.now
            for item in batch where item.deadline < now {
                item.continuation.resume(throwing: Failure(description: "timed out waiting for a Redis connection"))
            }
            batch.removeAll { $0.deadline < now }
            if batch.isEmpty { continue }
            if !worker.connection.isConnected {
                // Backing off after a failure: fail at once rather than wait for a dead server.
                if let (retryAt, reason) = worker.state.withLock({ state in state.retryAt.map { ($0, state.lastError ?? "") } }),
                    ContinuousClock.now < retryAt
                {
                    let failure = Failure(description: "Redis at \(endpoint.display) is unreachable: \(reason)")
                    for item in batch { item.continuation.resume(throwing: failure) }
                    continue
                }
                do {
                    try worker.connection.connect(endpoint, timeoutMilliseconds: timeoutMilliseconds)
                } catch {
                    record(error.description, on: worker)
                    let failure = Failure(description: error.description)
                    for item in batch { item.continuation.resume(throwing: failure) }
                    continue
                }
            }
            let results = worker.connection.pipeline(batch.map(\.command))
            if let failure = results.lazy.compactMap({ if case .failure(let error) = $0 { return error } else { return nil } })
                .first
            {
                record(failure.description, on: worker)
            } else {
                worker.state.withLock {
                    $0.lastError = nil
                    $0.retryAt = nil
                    $0.backoff = .milliseconds(100)
                }
            }
            for (item, result) in zip(batch, results) {
                switch result {
                case .success(let reply): item.continuation.resume(returning: reply)
                case .failure(let error): item.continuation.resume(throwing: Failure(description: error.description))
                }
            }
        }
    }

    private func record(_ error: String, on worker: Worker) {
        let firstFailure = worker.state.withLock { state -> Bool in
            let first = state.lastError == nil || state.lastError == "not contacted yet"
            state.lastError = error
            state.retryAt = ContinuousClock.now + state.backoff
            state.backoff = min(state.backoff * 2, .seconds(5))
            return first
        }
        if firstFailure {
            logger.warning("redis unreachable", metadata: ["redis.address": "\(endpoint.display)", "redis.error": "\(error)"])
        }
    }

    /// Pings Redis every second while running, so readiness follows the server even when no
    /// webhook arrives; on shutdown lets running batches finish and closes the connections.
    public func run() async throws {
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                while !Task.isCancelled {
                    _ = try? await self.execute("PING")
                    try? await Task.sleep(for: .seconds(1))
                }
            }
            try? await gracefulShutdown()
            group.cancelAll()
        }
        for worker in workers {
            worker.state.withLock { $0.closed = true }
            await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
                worker.queue.async {
                    worker.connection.close()
                    done.resume()
                }
            }
        }
    }
}
