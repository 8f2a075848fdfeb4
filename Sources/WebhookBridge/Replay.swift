import Logging
import ServiceLifecycle
import WebhookCore

/// `webhook-bridge replay`: re-delivers CloudEvents JSON lines (a file sink's output, the
/// dead-letter file) into one configured sink, keeping their ids.
public enum Replay {
    /// What a replay did.
    public struct Report: Sendable {
        public var delivered = 0
        /// Line number (from 1) and reason, for every line that was not delivered.
        public var failed: [(line: Int, reason: String)] = []
    }

    /// Delivers every line of `lines` to the sink named `sinkName` of `config`, in order.
    public static func run(config: BridgeConfig, sinkName: String, lines: [[UInt8]], logger: Logger) async throws -> Report {
        guard let settings = config.sinks[sinkName] else {
            throw BridgeSetupError(
                "--sink: no sink named \"\(sinkName)\" (sinks: \(config.sinks.keys.sorted().joined(separator: ", ")))")
        }
        let context = SinkContext(ackTimeoutMs: config.limits.ackTimeoutMs, logger: logger, shared: SharedClients())
        let sink = try Bridge.makeSink(settings, context: context)
        let services: [any Service] = context.shared.services + [sink]
        let group = ServiceGroup(services: services, logger: logger)
        let running = Task { try await group.run() }
        let report = await deliver(lines.enumerated().map { ($0.offset + 1, $0.element) }, into: sink, config: config)
        await group.triggerGracefulShutdown()
        try await running.value
        return report
    }

    /// Delivers each CloudEvents JSON line (numbered, for the report) to the running `sink`,
    /// in order, each with `limits.ackTimeoutMs`: what `webhook-bridge replay` and the
    /// inspector's replay of dead letters both do. Blank lines are skipped.
    static func deliver(_ lines: [(number: Int, line: [UInt8])], into sink: any EventSink, config: BridgeConfig) async
        -> Report
    {
        var report = Report()
        let metrics = SinkMetrics(sink: sink.name)
        for (number, line) in lines where !line.allSatisfy({ $0 == 0x20 || $0 == 0x0D }) {
            do {
                let event = try CloudEventJSON.decode(line)
                switch await deliverWithDeadline(
                    event, to: sink, milliseconds: config.limits.ackTimeoutMs, metrics: metrics)
                {
                case .success: report.delivered += 1
                case .failure(let error): report.failed.append((number, error.reason))
                }
            } catch {
                report.failed.append((number, "\(error)"))
            }
        }
        return report
    }
}
