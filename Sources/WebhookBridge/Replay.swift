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
        var report = Report()
        let metrics = SinkMetrics(sink: sink.name)
        for (index, line) in lines.enumerated() where !line.allSatisfy({ $0 == 0x20 || $0 == 0x0D }) {
            do {
                let event = try CloudEventJSON.decode(line)
                switch await deliverWithDeadline(
                    event, to: sink, milliseconds: config.limits.ackTimeoutMs, metrics: metrics)
                {
                case .success: report.delivered += 1
                case .failure(let error): report.failed.append((index + 1, error.reason))
                }
            } catch {
                report.failed.append((index + 1, "\(error)"))
            }
        }
        await group.triggerGracefulShutdown()
        try await running.value
        return report
    }
}
