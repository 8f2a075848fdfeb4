import NIOCore
import NIOHTTP1
import Synchronization

/// Work a ``WorkerPool`` runs: an async part on a worker, then its result handed back on the
/// pool's event loop.
protocol PooledWork: Sendable {
    associatedtype Result: Sendable
    func run(on executor: EventLoopTaskExecutor) async -> Result
    /// Called by the worker once ``run(on:)`` returns, normally on the pool's loop.
    func finish(_ result: Result)
}

/// The tasks that do one event loop's work (its connections' requests), kept from one piece
/// of work to the next.
///
/// A task made for each request cost seven allocations: the task, its closure, and a slab of
/// the task's allocator for each of the four frames that did not fit the one before (three
/// of them over 1 KB, above glibc's per-thread cache). A task's allocator keeps its slabs
/// when its frames end, so a worker that takes request after request allocates nothing for
/// its frames after its first. Work goes to the worker that went idle last (its slabs are
/// the likeliest to be in the cache); a new worker is made only when none is idle, and a
/// worker that finds ``maxIdle`` others idle ends: at most that many idle tasks (about
/// 10 KB each) per loop stay behind a burst.
///
/// ``submit(_:)`` is called on the pool's loop. Every worker prefers the loop's
/// ``EventLoopTaskExecutor``, as a request's own task did.
final class WorkerPool<Work: PooledWork>: Sendable {
    static var maxIdle: Int { 64 }

    let executor: EventLoopTaskExecutor

    private struct State {
        /// Workers waiting for work, the one idle longest first.
        var idle: [UnsafeContinuation<Work?, Never>] = []
        /// Work submitted while a worker was handing back its result: that worker takes it
        /// next (a pipelined request taken in the wake of its predecessor's answer).
        var waiting = CircularBuffer<Work>()
        /// Workers handing back a result now.
        var finishing = 0
        /// Workers alive, busy or idle.
        var workers = 0
        /// Workers made since the pool was (for tests).
        var made = 0
        /// No worker waits any more (the ingress stopped).
        var closed = false
    }

    private let state: Mutex<State>

    /// Who takes submitted work.
    private enum Taker {
        case idle(UnsafeContinuation<Work?, Never>)
        case finishing
        case new
    }

    init(eventLoop: any EventLoop) {
        self.executor = EventLoopTaskExecutor(eventLoop)
        var initial = State()
        initial.idle.reserveCapacity(Self.maxIdle)
        self.state = Mutex(initial)
    }

    /// Hands `work` to the idle worker that went idle last, else to the worker handing back
    /// its result, else to a new worker.
    func submit(_ work: Work) {
        let taker = state.withLock { state -> Taker in
            if let worker = state.idle.popLast() { return .idle(worker) }
            // A new worker takes it from `waiting` too: a task's closure lives as long as the
            // task, so the work must not be one of its captures.
            state.waiting.append(work)
            if state.finishing > 0 { return .finishing }
            state.workers += 1
            state.made += 1
            return .new
        }
        switch taker {
        case .idle(let worker): worker.resume(returning: work)
        case .finishing: break
        case .new: Task(executorPreference: executor) { await self.work() }
        }
    }

    /// Ends the idle workers; busy ones end after their work.
    func close() {
        let idle = state.withLock { state in
            state.closed = true
            defer { state.idle.removeAll() }
            return state.idle
        }
        for worker in idle { worker.resume(returning: nil) }
    }

    /// Workers idle now, alive (busy or idle), and made so far (for tests).
    var counts: (idle: Int, alive: Int, made: Int) { state.withLock { ($0.idle.count, $0.workers, $0.made) } }

    private func work() async {
        // Each piece of work is released before the worker waits for the next: an idle worker
        // holds no request (its body, its connection).
        while let work = await take() { await run(work) }
        state.withLock { $0.workers -= 1 }
    }

    private func run(_ work: consuming Work) async {
        let result = await work.run(on: executor)
        state.withLock { $0.finishing += 1 }
        work.finish(result)
        state.withLock { $0.finishing -= 1 }
    }

    /// The next work for this worker; nil when it ends.
    private func take() async -> Work? {
        await withUnsafeContinuation { worker in
            let now = state.withLock { state -> Work?? in
                if let work = state.waiting.popFirst() { return .some(work) }
                if state.closed || state.idle.count >= Self.maxIdle { return .some(nil) }
                state.idle.append(worker)
                return .none
            }
            if let now { worker.resume(returning: now) }
        }
    }
}

/// A request received whole, for one of its loop's workers: the processor's answer goes back
/// to the connection it came on.
struct ConnectionRequest: PooledWork {
    let processor: WebhookProcessor
    let connection: NIOLoopBound<(handler: HTTPConnectionHandler, context: ChannelHandlerContext)>
    let head: HTTPRequestHead
    let source: ConfiguredSource
    let body: ByteBuffer
    let client: String?

    func run(on executor: EventLoopTaskExecutor) async -> BridgeAnswer {
        await processor.handle(source, uri: head.uri, headers: head.headers, body: body, client: client, on: executor)
    }

    func finish(_ answer: BridgeAnswer) {
        let (connection, head) = (self.connection, self.head)
        // The worker prefers the connection's loop, so this is normally already on it.
        guard connection.eventLoop.inEventLoop else {
            connection.eventLoop.execute { connection.value.handler.finish(answer, for: head, context: connection.value.context) }
            return
        }
        connection.value.handler.finish(answer, for: head, context: connection.value.context)
    }
}

typealias RequestWorkers = WorkerPool<ConnectionRequest>

/// The ingress's workers, one pool per event loop, made with the loop's first connection.
final class RequestWorkerSets: Sendable {
    private let sets = Mutex<[ObjectIdentifier: RequestWorkers]>([:])

    func workers(for eventLoop: any EventLoop) -> RequestWorkers {
        sets.withLock { sets in
            let id = ObjectIdentifier(eventLoop)
            if let workers = sets[id] { return workers }
            let workers = RequestWorkers(eventLoop: eventLoop)
            sets[id] = workers
            return workers
        }
    }

    /// Workers idle now and made so far, across the loops (for tests).
    var counts: (idle: Int, made: Int) {
        sets.withLock { $0.values.reduce((0, 0)) { ($0.0 + $1.counts.idle, $0.1 + $1.counts.made) } }
    }

    func close() {
        for workers in sets.withLock({ Array($0.values) }) { workers.close() }
    }
}
