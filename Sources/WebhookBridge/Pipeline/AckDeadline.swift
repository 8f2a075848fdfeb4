import Metrics
import Synchronization
import WebhookCore

/// Runs a delivery with the `limits.ackTimeoutMs` deadline (SPEC section 3): a sink that has
/// not acknowledged by then counts as failed for this request.
///
/// The delivery is not awaited past the deadline (a task group would have to wait for it),
/// so a stuck sink can't hold the provider's request; a late acknowledgement is only logged
/// by the sink, and the provider's retry carries the same event id.
func deliverWithDeadline(
    _ event: WebhookEvent, to sink: any EventSink, milliseconds: Int
) async -> Result<DeliveryReceipt, SinkError> {
    await withCheckedContinuation { (continuation: CheckedContinuation<Result<DeliveryReceipt, SinkError>, Never>) in
        let pending = ResumeOnce(continuation)
        let timer = Task {
            try? await Task.sleep(for: .milliseconds(milliseconds))
            if !Task.isCancelled, let waiting = pending.take() {
                waiting.resume(returning: .failure(.timedOut(sink: sink.name, afterMilliseconds: milliseconds)))
            }
        }
        Task {
            let metrics = SinkMetrics(sink: sink.name)
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
            timer.cancel()
            if let waiting = pending.take() { waiting.resume(returning: result) }
        }
    }
}

/// Holds a continuation that the first of several racers resumes.
private final class ResumeOnce<T: Sendable>: Sendable {
    private let continuation: Mutex<CheckedContinuation<T, Never>?>

    init(_ continuation: CheckedContinuation<T, Never>) { self.continuation = Mutex(continuation) }

    func take() -> CheckedContinuation<T, Never>? { continuation.withLock { $0.take() } }
}

/// Per-sink delivery metrics: `webhook.sink.deliveries` by result (`ok`, `failed`,
/// `rejected`), `webhook.sink.latency` and `webhook.sink.in_flight`. Deliveries are counted
/// when the sink answers, so one acknowledged after the deadline still counts as `ok`.
struct SinkMetrics {
    let sink: String
    let inFlight: Meter

    init(sink: String) {
        self.sink = sink
        self.inFlight = Meter(label: "webhook.sink.in_flight", dimensions: [("sink.name", sink)])
    }

    func record(_ result: Result<DeliveryReceipt, SinkError>, after duration: Duration) {
        let outcome: String
        switch result {
        case .success: outcome = "ok"
        case .failure(let error): outcome = error.isPermanent ? "rejected" : "failed"
        }
        Counter(label: "webhook.sink.deliveries", dimensions: [("sink.name", sink), ("sink.result", outcome)]).increment()
        Timer(label: "webhook.sink.latency", dimensions: [("sink.name", sink)]).recordNanoseconds(
            duration.components.seconds * 1_000_000_000 + duration.components.attoseconds / 1_000_000_000)
    }
}
