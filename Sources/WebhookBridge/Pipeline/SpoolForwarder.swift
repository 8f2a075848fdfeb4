import Logging
import ServiceLifecycle
import Spool
import WebhookCore

/// Drains one sink's spool in order (SPEC section 6): each event is delivered with the usual
/// ack deadline; on success the cursor moves on, an event the sink refuses for good goes to
/// the dead letters, and anything else is retried with exponential backoff and jitter
/// (100 ms doubling up to 30 s). It resumes from the cursor after a restart or `kill -9`.
final class SpoolForwarder: Service {
    private let spool: Spool
    private let sink: any EventSink
    private let ackTimeoutMs: Int
    private let logger: Logger

    init(spool: Spool, sink: any EventSink, ackTimeoutMs: Int, logger: Logger) {
        self.spool = spool
        self.sink = sink
        self.ackTimeoutMs = ackTimeoutMs
        var logger = logger
        logger[metadataKey: "sink.name"] = "\(sink.name)"
        self.logger = logger
    }

    func run() async throws {
        await cancelWhenGracefulShutdown { await self.forward() }
    }

    private func forward() async {
        let metrics = SinkMetrics(sink: sink.name)
        var backoff: Duration = .milliseconds(100)
        var wakeups = spool.wakeups[sink.name]?.makeAsyncIterator()
        while !Task.isCancelled {
            let next: (WebhookEvent, Spool.Position)?
            do {
                next = try spool.next(for: sink.name)
            } catch {
                logger.error("cannot read the spool", metadata: ["spool.error": "\(error)"])
                try? await Task.sleep(for: .seconds(1))
                continue
            }
            guard let (event, position) = next else {
                // Caught up: wait until something is spooled.
                if await wakeups?.next() == nil { return }
                continue
            }
            switch await deliverWithDeadline(event, to: sink, milliseconds: ackTimeoutMs, metrics: metrics) {
            case .success:
                backoff = .milliseconds(100)
                try? spool.advance(sink.name, to: position)
            case .failure(let error) where error.isPermanent:
                do {
                    try await spool.deadLetter(event, sink: sink.name, reason: error.reason)
                    try spool.advance(sink.name, to: position)
                } catch {
                    logger.error("cannot write the dead letter", metadata: ["spool.error": "\(error)"])
                    try? await Task.sleep(for: backoff)
                }
            case .failure(let error):
                logger.debug("spooled delivery failed; retrying", metadata: ["sink.error": "\(error.reason)"])
                let jittered = backoff * Double.random(in: 0.5...1.0)
                try? await Task.sleep(for: jittered)
                backoff = min(backoff * 2, .seconds(30))
            }
        }
    }
}

/// Closes the spool's files once everything before it in the service group has stopped.
final class SpoolService: Service {
    let spool: Spool
    init(spool: Spool) { self.spool = spool }

    func run() async throws {
        try? await gracefulShutdown()
        await spool.shutdown()
    }
}
