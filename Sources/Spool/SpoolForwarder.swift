import DurableFile
import Logging
import ServiceLifecycle
import WebhookCore

/// Drains one sink's spool in order (SPEC sections 6 and 8).
///
/// Each event is delivered through `deliver` (the bridge passes its delivery with the ack
/// deadline). On success the cursor moves on; an event the sink refuses for good goes to the
/// dead letters at once and the cursor moves on, so one poison event never holds back the
/// events behind it; anything else is retried by the ``RetryPolicy`` (`spool.retry`:
/// exponential backoff with full jitter, a sink's `Retry-After` believed) until the event is
/// older than its horizon, when it goes to the dead letters too. The cursor is saved every
/// ``batch`` events, before each backoff and
/// whenever the forwarder is caught up, so a restart re-sends at most one batch. When caught
/// up it gives forwarded bytes back to the disk (``Spool/reclaim(_:)``) at most once per
/// `reclaimInterval`, and waits for the next spooled event.
public final class SpoolForwarder: Service {
    /// Delivers one event: `.success`, or the sink's error (``SinkError/isPermanent`` decides).
    public typealias Deliver = @Sendable (WebhookEvent) async -> Result<Void, SinkError>

    /// Events forwarded between two cursor saves at most.
    public static let batch = 64

    private let spool: Spool
    private let sink: String
    private let deliver: Deliver
    private let reclaimInterval: Duration
    private let retry: RetryPolicy
    private let logger: Logger
    private let throttle = LogThrottle()

    public init(
        spool: Spool, sink: String, reclaimInterval: Duration = .seconds(10), retry: RetryPolicy = RetryPolicy(),
        logger: Logger, deliver: @escaping Deliver
    ) {
        self.spool = spool
        self.sink = sink
        self.deliver = deliver
        self.reclaimInterval = reclaimInterval
        self.retry = retry
        var logger = logger
        logger[metadataKey: "sink.name"] = "\(sink)"
        self.logger = logger
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown { await self.forward() }
        await saveCursor()
    }

    private func forward() async {
        // Failures in a row: the backoff's exponent.
        var failures = 0
        var unsaved = 0
        var lastReclaim = ContinuousClock.now - reclaimInterval
        while !Task.isCancelled {
            let next: (WebhookEvent, Spool.Position)?
            do {
                next = try await spool.next(for: sink)
            } catch {
                logThrottled("read", "cannot read the spool", error: "\(error)")
                try? await Task.sleep(for: .seconds(1))
                continue
            }
            guard let (event, position) = next else {
                // Caught up with what is durable: save, give room back, wait for more.
                if unsaved > 0 {
                    await saveCursor()
                    unsaved = 0
                }
                if ContinuousClock.now - lastReclaim >= reclaimInterval {
                    lastReclaim = .now
                    do {
                        try await spool.reclaim(sink)
                    } catch {
                        logThrottled("cursor", "cannot save the spool cursor; keeping the previous one", error: "\(error)")
                    }
                }
                let remaining = max(.milliseconds(10), reclaimInterval - (ContinuousClock.now - lastReclaim))
                if await spool.signal(for: sink)?.wait(timeout: remaining) ?? .finished == .finished { return }
                continue
            }
            // Set when the event goes to the dead letters instead of being retried.
            var deadLetterReason: String?
            var details: [(name: String, value: String)] = []
            switch await deliver(event) {
            case .success:
                failures = 0
                spool.advance(sink, to: position)
                unsaved += 1
            case .failure(let error) where error.isPermanent:
                deadLetterReason = error.reason
                details = error.details
            case .failure(let error) where retry.isExpired(received: event.time, now: .now()):
                let seconds = Int(RetryPolicy.seconds(retry.maxAge))
                deadLetterReason = "not delivered within spool.retry.maxAgeSeconds (\(seconds)); last failure: \(error.reason)"
            case .failure(let error):
                logThrottled("deliver", "spooled delivery failed; retrying", error: error.reason, level: .warning)
                if unsaved > 0 {
                    await saveCursor()
                    unsaved = 0
                }
                failures += 1
                try? await Task.sleep(for: error.retryAfter ?? retry.delay(afterFailures: failures))
            }
            if let deadLetterReason {
                do {
                    try await spool.deadLetter(event, sink: sink, reason: deadLetterReason, details: details, moving: true)
                    failures = 0
                    spool.advance(sink, to: position)
                    unsaved += 1
                } catch {
                    logThrottled("dead-letter", "cannot write the dead letter; retrying", error: "\(error)")
                    await saveCursor()
                    unsaved = 0
                    failures += 1
                    try? await Task.sleep(for: retry.delay(afterFailures: failures))
                }
            }
            if unsaved >= Self.batch {
                await saveCursor()
                unsaved = 0
            }
        }
    }

    private func saveCursor() async {
        do {
            try await spool.saveCursor(sink)
        } catch {
            // The previous cursor stays: a restart re-sends a little more, and loses nothing.
            logThrottled("cursor", "cannot save the spool cursor; keeping the previous one", error: "\(error)")
        }
    }

    private func logThrottled(_ key: String, _ message: String, error: String, level: Logger.Level = .error) {
        guard let suppressed = throttle.admit(key) else { return }
        var metadata: Logger.Metadata = ["spool.error": "\(error)"]
        if suppressed > 0 { metadata["log.suppressed"] = "\(suppressed)" }
        logger.log(level: level, "\(message)", metadata: metadata)
    }
}

/// Closes the spool's files once everything before it in the service group has stopped.
public final class SpoolService: Service {
    let spool: Spool
    public init(spool: Spool) { self.spool = spool }

    public func run() async throws {
        try? await gracefulShutdown()
        await spool.shutdown()
    }
}
