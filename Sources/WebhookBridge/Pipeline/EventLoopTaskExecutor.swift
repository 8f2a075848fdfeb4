import NIOCore
import NIOPosix
import Synchronization

/// A task executor that runs its jobs on one NIO event loop. A request's task started with
/// this preference stays on the loop thread that read the request: no hop to the global
/// concurrent pool and back for every request, which on a 2-core machine costs more than
/// verifying it. Sinks keep their blocking work (fsync, librdkafka's I/O) on their own
/// threads, so nothing a task awaits blocks the loop; the Redis client's sockets are on
/// these loops, non-blocking, so a command and its reply stay on the request's thread; the
/// Kafka sink's delivery reports are drained by a loop, a bounded non-blocking poll.
///
/// Jobs wait in the executor's own queue, and the loop is handed one closure made once, which
/// runs the jobs queued when it starts: a closure per job (capturing the job) would be an
/// allocation every time a task resumes.
final class EventLoopTaskExecutor: TaskExecutor, Sendable {
    let eventLoop: any EventLoop
    private let jobs: JobQueue
    private let runJobs: @Sendable () -> Void

    init(_ eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
        let jobs = JobQueue(eventLoop)
        self.jobs = jobs
        // The closure holds the queue, not the executor: no reference cycle.
        self.runJobs = { jobs.run() }
        jobs.start(executor: asUnownedTaskExecutor())
    }

    func enqueue(_ job: consuming ExecutorJob) {
        if jobs.append(UnownedJob(job)) { eventLoop.execute(runJobs) }
    }

    /// For work that is not tied to a connection: the spool forwarders and `replay`.
    static let shared = EventLoopTaskExecutor(MultiThreadedEventLoopGroup.singleton.next())
}

/// The jobs an ``EventLoopTaskExecutor`` has not run yet, and whether the loop has been handed
/// the closure that runs them.
private final class JobQueue: Sendable {
    private struct State {
        var jobs = CircularBuffer<UnownedJob>(initialCapacity: 16)
        /// The loop has a run of the queue ahead of it.
        var scheduled = false
        var executor: UnownedTaskExecutor?
    }

    private let state = Mutex(State())
    private let eventLoop: any EventLoop

    init(_ eventLoop: any EventLoop) { self.eventLoop = eventLoop }

    func start(executor: UnownedTaskExecutor) { state.withLock { $0.executor = executor } }

    /// Queues `job`; true when the loop must be handed a run of the queue.
    func append(_ job: UnownedJob) -> Bool {
        state.withLock { state in
            state.jobs.append(job)
            if state.scheduled { return false }
            state.scheduled = true
            return true
        }
    }

    /// Runs the jobs queued when it starts. Jobs they queue wait for the next run, after the
    /// loop's I/O, as they would as closures of their own (that run's closure is the one
    /// allocation left, and only when a job queued another).
    func run() {
        guard let (count, executor) = state.withLock({ state in state.executor.map { (state.jobs.count, $0) } }) else {
            return
        }
        for _ in 0..<count {
            guard let job = state.withLock({ $0.jobs.popFirst() }) else { break }
            job.runSynchronously(on: executor)
        }
        let again = state.withLock { state in
            if state.jobs.isEmpty { state.scheduled = false }
            return state.scheduled
        }
        if again { eventLoop.execute { self.run() } }
    }
}
