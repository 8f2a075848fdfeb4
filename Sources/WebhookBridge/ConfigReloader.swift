import Logging
import ServiceLifecycle
import UnixSignals
import WebhookCore

/// Reloads sources, secrets and routes on SIGHUP (SPEC section 2) without touching the
/// listening socket or any connection. A config that fails validation is refused, with a
/// log line saying why, and the running one kept.
public final class ConfigReloader: Service {
    private let processor: WebhookProcessor
    private let tls: TLSSettings?
    private let load: @Sendable () throws -> BridgeConfig
    private let logger: Logger

    /// `load` reads and validates the config file, throwing its problems.
    public init(
        processor: WebhookProcessor, tls: TLSSettings? = nil, logger: Logger, load: @escaping @Sendable () throws -> BridgeConfig
    ) {
        self.processor = processor
        self.tls = tls
        self.load = load
        self.logger = logger
    }

    public func run() async throws {
        let signals = await UnixSignalsSequence(trapping: .sighup)
        await cancelWhenGracefulShutdown {
            for await _ in signals {
                self.reload()
            }
        }
    }

    /// One reload attempt; the outcome is logged.
    public func reload() {
        do {
            let config = try load()
            let problems = Bridge.sinkProblems(config)
            if let problem = problems.first { throw BridgeSetupError(problem) }
            if let tls, let files = config.listen.tls { try tls.reload(files) }
            try processor.reload(config)
            logger.info("config reloaded", metadata: ["config.sources": "\(config.sources.count)"])
        } catch {
            logger.error("config reload refused; keeping the running config", metadata: ["config.error": "\(error)"])
        }
    }
}
