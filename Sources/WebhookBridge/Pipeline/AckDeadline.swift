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
        let race = DeliveryRace(continuation, sink: sink.name, milliseconds: milliseconds, metrics: metrics)
        // nil only while the event loop shuts down: the delivery then has no deadline.
        race.arm(
            try? executor.eventLoop.scheduleCallback(in: .milliseconds(Int64(milliseconds)), handler: TimeOut(race: race)))
        if let sink = sink as? any CallbackDeliveringSink {
            // No task: the sink calls back on the loop, where the timer runs too.
            sink.deliver(event, on: executor.eventLoop) { result in race.finish(result) }
            return
        }
        Task(executorPreference: executor) {
            let result: Result<DeliveryReceipt, SinkError>
            do {
                result = .success(try await sink.deliver(event))
            } catch let error as SinkError {
                result = .failure(error)
            } catch {
                result = .failure(.unavailable(sink: sink.name, reason: "\(error)"))
            }
            race.finish(result)
        }
    }
}

/// The deadline's side of the race (a scheduled callback costs less than a scheduled task,
/// which carries a promise). It holds only the race, so NIO keeps it without a box of its own.
private struct TimeOut: NIOScheduledCallbackHandler, Sendable {
    let race: DeliveryRace

    func handleScheduledCallback(eventLoop: some EventLoop) { race.timeOut() }
}

/// One delivery racing its deadline: the continuation the first of the two resumes (exactly
/// once, which is what a checked continuation would verify at an allocation of its own), the
/// timer the delivery cancels, and what its metrics need. Everything the racers share is
/// here, so the sink's callback and the timer's handler each hold one reference and need no
/// allocation of their own.
private final class DeliveryRace: Sendable {
    private struct State {
        var continuation: UnsafeContinuation<Result<DeliveryReceipt, SinkError>, Never>?
        var timer: NIOScheduledCallback?
    }

    private let state: Mutex<State>
    private let sink: String
    private let milliseconds: Int
    private let metrics: SinkMetrics
    private let started = ContinuousClock.now

    init(
        _ continuation: UnsafeContinuation<Result<DeliveryReceipt, SinkError>, Never>, sink: String, milliseconds: Int,
        metrics: SinkMetrics
    ) {
        self.state = Mutex(State(continuation: continuation))
        self.sink = sink
        self.milliseconds = milliseconds
        self.metrics = metrics
        metrics.inFlight.increment()
    }

    /// The deadline's timer, cancelled when the delivery ends first.
    func arm(_ timer: NIOScheduledCallback?) { state.withLock { $0.timer = timer } }

    /// The sink answered: counted whenever it answers, even after the deadline.
    func finish(_ result: Result<DeliveryReceipt, SinkError>) {
        metrics.inFlight.decrement()
        metrics.record(result, after: ContinuousClock.now - started)
        let (continuation, timer) = state.withLock { ($0.continuation.take(), $0.timer.take()) }
        timer?.cancel()
        continuation?.resume(returning: result)
    }

    func timeOut() {
        state.withLock { $0.continuation.take() }?.resume(
            returning: .failure(.timedOut(sink: sink, afterMilliseconds: milliseconds)))
    }
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
        self.failed = Counter(
            label: "webhook.sink.deliveries.total", dimensions: [("sink.name", sink), ("sink.result", "failed")])
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
