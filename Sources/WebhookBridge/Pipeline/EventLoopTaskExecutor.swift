import NIOCore
import NIOPosix

/// A task executor that runs its jobs on one NIO event loop. A request's task started with
/// this preference stays on the loop thread that read the request: no hop to the global
/// concurrent pool and back for every request, which on a 2-core machine costs more than
/// verifying it. Sinks keep their blocking work (fsync, librdkafka's I/O) on their own
/// threads, so nothing a task awaits blocks the loop; the Redis client's sockets are on
/// these loops, non-blocking, so a command and its reply stay on the request's thread; the
/// Kafka sink's delivery reports are drained by a loop, a bounded non-blocking poll.
final class EventLoopTaskExecutor: TaskExecutor, Sendable {
    let eventLoop: any EventLoop

    init(_ eventLoop: any EventLoop) { self.eventLoop = eventLoop }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        eventLoop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }

    /// For work that is not tied to a connection: the spool forwarders and `replay`.
    static let shared = EventLoopTaskExecutor(MultiThreadedEventLoopGroup.singleton.next())
}
