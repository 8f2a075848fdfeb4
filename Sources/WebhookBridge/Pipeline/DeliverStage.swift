import Logging
import Spool
import WebhookCore

/// Deliver: the event goes to the sinks of the route that took it, all at once, each with
/// the `limits.ackTimeoutMs` deadline. A required sink that failed, or that has a spool
/// backlog (its events stay in order), gets the event through the spool; one that failed
/// permanently, into the dead letters. Sinks with `required: false` are not waited for.
struct DeliverStage: Sendable {
    enum Outcome: Equatable {
        /// Every required sink acknowledged it.
        case delivered
        /// Durable in the spool for at least one required sink.
        case queued
        /// Neither: the provider must retry.
        case unavailable
    }

    /// A sink as requests deliver to it, resolved once with its metrics, so a request
    /// looks up nothing but its route's sink names.
    struct Target: Sendable {
        let sink: any EventSink
        /// Its failure decides the answer (`required` is not false).
        let required: Bool
        let metrics: SinkMetrics
        var name: String { sink.name }
    }

    let sinks: [String: any EventSink]
    /// Sinks whose failure decides the answer (`required` is not false).
    let requiredSinks: Set<String>
    let spool: Spool?
    let ackTimeoutMs: Int
    let log: PipelineLog
    private let targets: [String: Target]

    init(sinks: [String: any EventSink], requiredSinks: Set<String>, spool: Spool?, ackTimeoutMs: Int, log: PipelineLog) {
        self.sinks = sinks
        self.requiredSinks = requiredSinks
        self.spool = spool
        self.ackTimeoutMs = ackTimeoutMs
        self.log = log
        targets = sinks.mapValues { sink in
            Target(sink: sink, required: requiredSinks.contains(sink.name), metrics: SinkMetrics(sink: sink.name))
        }
    }

    func run(
        _ event: WebhookEvent, to sinkNames: [String], on executor: EventLoopTaskExecutor, trace: RequestTrace,
        logger: RequestLogger
    ) async -> Outcome {
        // A route of one sink, the usual case, makes no list of its targets.
        if sinkNames.count == 1, let target = targets[sinkNames[0]] {
            return await run(event, to: CollectionOfOne(target), on: executor, trace: trace, logger: logger)
        }
        return await run(event, to: sinkNames.compactMap { targets[$0] }, on: executor, trace: trace, logger: logger)
    }

    private func run(
        _ event: WebhookEvent, to targets: some Collection<Target> & Sendable, on executor: EventLoopTaskExecutor,
        trace: RequestTrace, logger: RequestLogger
    ) async -> Outcome {
        let behindBacklog = spool.map { spool in targets.filter { $0.required && spool.hasBacklog(for: $0.name) } } ?? []
        let failures =
            behindBacklog.isEmpty
            ? await deliver(event, to: targets, on: executor, logger: logger, trace: trace)
            : await deliver(
                event, to: targets.filter { sink in !behindBacklog.contains { $0.name == sink.name } }, on: executor,
                logger: logger, trace: trace)
        if failures.isEmpty && behindBacklog.isEmpty { return .delivered }
        guard let spool else { return .unavailable }
        do {
            for sink in behindBacklog {
                try await spool.append(event, for: sink.name)
                trace.inspection?.noteFate(sink: sink.name, "queued")
            }
            for failure in failures {
                if failure.isPermanent {
                    try await spool.deadLetter(event, sink: failure.sink, reason: failure.reason, details: failure.details)
                    trace.inspection?.noteFate(sink: failure.sink, "dead-lettered")
                } else {
                    try await spool.append(event, for: failure.sink)
                    trace.inspection?.noteFate(sink: failure.sink, "queued")
                }
            }
        } catch {
            log.failure("spool", level: .error, "cannot spool the event", metadata: ["spool.error": "\(error)"], logger: logger)
            return .unavailable
        }
        return .queued
    }

    /// Delivers to every target at once and returns the failures of required sinks.
    private func deliver(
        _ event: WebhookEvent, to targets: some Collection<Target> & Sendable, on executor: EventLoopTaskExecutor,
        logger: RequestLogger, trace: RequestTrace
    ) async -> [SinkError] {
        let ackTimeoutMs = self.ackTimeoutMs
        for target in targets where !target.required {
            let sink = target.sink
            let metrics = target.metrics
            let span = trace.deliverySpan(sink: sink.name, required: false)
            Task(executorPreference: executor) {
                let result = await deliverWithDeadline(
                    event, to: sink, milliseconds: ackTimeoutMs, metrics: metrics, on: executor)
                trace.endDelivery(span, sink: sink.name, required: false, result)
                if case .failure(let error) = result { self.note(error, required: false, logger: logger) }
            }
        }
        let requiredCount = targets.count { $0.required }
        if requiredCount == 0 { return [] }
        if requiredCount == 1, let target = targets.first(where: \.required) {
            // The usual case: one required sink, awaited without a task group.
            let span = trace.deliverySpan(sink: target.name, required: true)
            let result = await deliverWithDeadline(
                event, to: target.sink, milliseconds: ackTimeoutMs, metrics: target.metrics, on: executor)
            trace.endDelivery(span, sink: target.name, required: true, result)
            guard case .failure(let error) = result else { return [] }
            note(error, required: true, logger: logger)
            return [error]
        }
        return await withTaskGroup(of: SinkError?.self) { group in
            for target in targets where target.required {
                let sink = target.sink
                let metrics = target.metrics
                let span = trace.deliverySpan(sink: sink.name, required: true)
                group.addTask(executorPreference: executor) {
                    let result = await deliverWithDeadline(
                        event, to: sink, milliseconds: ackTimeoutMs, metrics: metrics, on: executor)
                    trace.endDelivery(span, sink: sink.name, required: true, result)
                    if case .failure(let error) = result { return error }
                    return nil
                }
            }
            var failures: [SinkError] = []
            for await case let error? in group {
                note(error, required: true, logger: logger)
                failures.append(error)
            }
            return failures
        }
    }

    /// One line per sink and kind of failure per interval.
    private func note(_ error: SinkError, required: Bool, logger: RequestLogger) {
        log.failure(
            "\(error.sink) \(error.kind)", level: required ? .error : .warning, "delivery failed",
            metadata: ["sink.name": "\(error.sink)", "sink.error": "\(error.reason)", "sink.required": "\(required)"],
            logger: logger)
    }
}
