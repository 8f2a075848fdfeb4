import Metrics
import NIOCore
import Synchronization
import WebhookCore

/// Runs a delivery with the `limits.ackTimeoutMs` deadline (SPEC section 3): a sink that has
/// not acknowledged by then counts as failed for this request.
///
/// The delivery is not awaited past the deadline (a task group would have to wait for it),
/// so a stuck sink can't hold the provider's request; a late acknowledgement is only logged
/// by the sink, and the provider's retry carries the same event id. The delivery runs in a
/// task on `executor`'s event loop (a ``CallbackDeliveringSink`` needs none: it calls back on
/// that loop) and the deadline is a timer on that loop: both cheap when the caller runs there
/// too, as a request does.
func deliverWithDeadline(
    _ event: WebhookEvent, to sink: any EventSink, milliseconds: Int, metrics: SinkMetrics,
    on executor: EventLoopTaskExecutor = .shared
) async -> Result<DeliveryReceipt, SinkError> {
    await withUnsafeContinuation { (continuation: UnsafeContinuation<Result<DeliveryReceipt, SinkError>, Never>) in
        let pending = ResumeOnce(continuation)
        // nil only while the event loop shuts down: the delivery then has no deadline.
        let timer = try? executor.eventLoop.scheduleCallback(
            in: .milliseconds(Int64(milliseconds)),
            handler: TimeOut(pending: pending, sink: sink.name, milliseconds: milliseconds))
        if let sink = sink as? any CallbackDeliveringSink {
            // No task: the sink calls back on the loop, where the timer runs too.
            metrics.inFlight.increment()
            let started = ContinuousClock.now
            sink.deliver(event, on: executor.eventLoop) { result in
                metrics.inFlight.decrement()
                metrics.record(result, after: ContinuousClock.now - started)
                timer?.cancel()
                pending.take()?.resume(returning: result)
            }
            return
        }
        Task(executorPreference: executor) {
            metrics.inFlight.increment()
            let started = ContinuousClock.now
            let result: Result<DeliveryReceipt, SinkError>
            do {
                result = .success(try await sink.deliver(event))
            } catch let error as SinkError {
                result = .failure(error)
            } catch {
                result = .failure(.unavailable(sink: sink.name, reason: "\(error)"))
            }
            metrics.inFlight.decrement()
            metrics.record(result, after: ContinuousClock.now - started)
            timer?.cancel()
            pending.take()?.resume(returning: result)
        }
    }
}

/// The deadline's side of the race (a scheduled callback costs less than a scheduled task,
/// which carries a promise).
private struct TimeOut: NIOScheduledCallbackHandler, Sendable {
    let pending: ResumeOnce<Result<DeliveryReceipt, SinkError>>
    let sink: String
    let milliseconds: Int

    func handleScheduledCallback(eventLoop: some EventLoop) {
        pending.take()?.resume(returning: .failure(.timedOut(sink: sink, afterMilliseconds: milliseconds)))
    }
}

/// Holds a continuation that the first of several racers resumes: exactly once, which is
/// what a checked continuation would verify (at an allocation per request).
private final class ResumeOnce<T: Sendable>: Sendable {
    private let continuation: Mutex<UnsafeContinuation<T, Never>?>

    init(_ continuation: UnsafeContinuation<T, Never>) { self.continuation = Mutex(continuation) }

    func take() -> UnsafeContinuation<T, Never>? { continuation.withLock { $0.take() } }
}

/// Per-sink delivery metrics: `webhook.sink.deliveries` by result (`ok`, `failed`,
/// `rejected`), `webhook.sink.latency` and `webhook.sink.in_flight`. Deliveries are counted
/// when the sink answers, so one acknowledged after the deadline still counts as `ok`.
/// Made once per sink and owner: making the handles is the expensive part.
final class SinkMetrics: Sendable {
    let inFlight: Meter
    private let ok: Counter
    private let failed: Counter
    private let rejected: Counter
    private let latency: Timer

    init(sink: String) {
        self.inFlight = Meter(label: "webhook.sink.in_flight", dimensions: [("sink.name", sink)])
        self.ok = Counter(label: "webhook.sink.deliveries.total", dimensions: [("sink.name", sink), ("sink.result", "ok")])
        self.failed = Counter(label: "webhook.sink.deliveries.total", dimensions: [("sink.name", sink), ("sink.result", "failed")])
        self.rejected = Counter(
            label: "webhook.sink.deliveries.total", dimensions: [("sink.name", sink), ("sink.result", "rejected")])
        self.latency = Timer(label: "webhook.sink.latency.seconds", dimensions: [("sink.name", sink)])
    }

    func record(_ result: Result<DeliveryReceipt, SinkError>, after duration: Duration) {
        switch result {
        case .success: ok.increment()
        case .failure(let error): (error.isPermanent ? rejected : failed).increment()
        }
        latency.recordNanoseconds(duration.components.seconds * 1_000_000_000 + duration.components.attoseconds / 1_000_000_000)
    }
}
