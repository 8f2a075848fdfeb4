import BridgeTestSupport
import NIOCore
import NIOPosix
import Synchronization
import Testing

@testable import WebhookBridge

/// The tasks that process requests are kept from one request to the next: a worker per
/// request in flight at most, and at most ``WorkerPool/maxIdle`` left idle per loop.
@Suite("Request workers: kept between requests, bounded when idle, ended on close")
struct WorkerPoolTests {
    /// Holds every piece of work in `run` until opened.
    final class Gate: Sendable {
        private let state = Mutex<(open: Bool, waiting: [CheckedContinuation<Void, Never>])>((false, []))
        func wait() async {
            await withCheckedContinuation { continuation in
                let open = state.withLock { state in
                    if !state.open { state.waiting.append(continuation) }
                    return state.open
                }
                if open { continuation.resume() }
            }
        }
        func open() {
            for waiter in state.withLock({ state in
                state.open = true
                defer { state.waiting = [] }
                return state.waiting
            }) { waiter.resume() }
        }
    }

    struct GatedWork: PooledWork {
        let number: Int
        let gate: Gate
        let started: AsyncStream<Int>.Continuation
        let finished: AsyncStream<Int>.Continuation

        func run(on executor: EventLoopTaskExecutor) async -> Int {
            started.yield(number)
            await gate.wait()
            return number
        }

        func finish(_ result: Int) { finished.yield(result) }
    }

    @Test("100 pieces of work at once take 100 workers; 64 stay idle; later work reuses them; close ends them all")
    func burstThenReuse() async throws {
        try await withPool(of: GatedWork.self) { pool, loop in try await burstThenReuse(pool, loop) }
    }

    func burstThenReuse(_ pool: WorkerPool<GatedWork>, _ loop: any EventLoop) async throws {
        let gate = Gate()
        let (started, startedIn) = AsyncStream.makeStream(of: Int.self)
        let (finished, finishedIn) = AsyncStream.makeStream(of: Int.self)
        @Sendable func work(_ number: Int) -> GatedWork {
            GatedWork(number: number, gate: gate, started: startedIn, finished: finishedIn)
        }

        try await loop.submit { for number in 0..<100 { pool.submit(work(number)) } }.get()
        var startedIterator = started.makeAsyncIterator()
        var running = Set<Int>()
        while running.count < 100, let number = await startedIterator.next() { running.insert(number) }
        #expect(pool.counts.made == 100)
        #expect(pool.counts.alive == 100)
        #expect(pool.counts.idle == 0)

        gate.open()
        var finishedIterator = finished.makeAsyncIterator()
        var done = Set<Int>()
        while done.count < 100, let number = await finishedIterator.next() { done.insert(number) }
        #expect(done == Set(0..<100))
        #expect(await eventually { pool.counts.alive == WorkerPool<GatedWork>.maxIdle })
        #expect(pool.counts.idle == 64)

        // One after another: every piece goes to a worker already there.
        for number in 100..<110 {
            try await loop.submit { pool.submit(work(number)) }.get()
            #expect(await finishedIterator.next() == number)
        }
        #expect(pool.counts.made == 100)
        #expect(await eventually { pool.counts.idle == 64 })
    }

    /// Runs `body` with a pool on a loop of its own; then closes the pool and checks that
    /// every worker ended.
    func withPool<Work: PooledWork>(
        of: Work.Type, _ body: (WorkerPool<Work>, any EventLoop) async throws -> Void
    ) async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        let pool = WorkerPool<Work>(eventLoop: loop)
        do {
            try await body(pool, loop)
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
        pool.close()
        #expect(await eventually { pool.counts.alive == 0 })
        #expect(pool.counts.idle == 0)
        try await group.shutdownGracefully()
    }

    final class Token: Sendable {}

    struct HeldWork: PooledWork {
        let token: Token
        let finished: AsyncStream<Int>.Continuation

        func run(on executor: EventLoopTaskExecutor) async -> Int { 0 }
        func finish(_ result: Int) { finished.yield(result) }
    }

    /// A token that can be watched for its release.
    final class Watched: @unchecked Sendable {
        weak var token: Token?
    }

    @Test("an idle worker holds none of the work it did: not its first (the one it was made for), not its last")
    func idleWorkerHoldsNothing() async throws {
        try await withPool(of: HeldWork.self) { pool, loop in
            let (finished, finishedIn) = AsyncStream.makeStream(of: Int.self)
            var finishedIterator = finished.makeAsyncIterator()
            /// Submits one piece of work and waits until it is done and its worker idle.
            func doOne() async throws -> Watched {
                let watched = Watched()
                let token = Token()
                watched.token = token
                try await loop.submit { pool.submit(HeldWork(token: token, finished: finishedIn)) }.get()
                _ = await finishedIterator.next()
                #expect(await eventually { pool.counts.idle == 1 })
                return watched
            }
            let first = try await doOne()
            let second = try await doOne()
            #expect(pool.counts.made == 1)
            #expect(await eventually { first.token == nil })
            #expect(await eventually { second.token == nil })
        }
    }

    static let config = """
        {"listen": {"host": "127.0.0.1", "port": 0},
         "sinks": {"archive": {"type": "file", "path": "{dir}/events.jsonl"}},
         "sources": {"github": {"path": "/webhooks/github", "verify": {"scheme": "github", "secrets": ["gh-secret"]},
                                "sinks": ["archive"]}}}
        """

    @Test("20 requests one after another on a connection are processed by one worker, kept idle after each")
    func oneConnection() async throws {
        try await RunningBridge.with(config: Self.config) { bridge in
            let connection = try KeepAliveConnection(port: bridge.port)
            for number in 0..<20 {
                let body = #"{"n": \#(number)}"#
                let answer = try await offThePool {
                    try connection.post("/webhooks/github", headers: githubHeaders(body, delivery: "w-\(number)"), body: body)
                }
                #expect(answer.status == 200)
                #expect(answer.body.contains(#""id":"w-\#(number)","status":"accepted""#))
            }
            #expect(await eventually { bridge.bridge.ingress.workers.counts.idle == 1 })
            #expect(bridge.bridge.ingress.workers.counts.made == 1)
            #expect(try bridge.lines("events.jsonl").count == 20)
        }
    }
}
