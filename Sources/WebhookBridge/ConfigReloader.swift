import Logging
import Synchronization
import ServiceLifecycle
import UnixSignals
import WebhookCore

/// Reloads sources, secrets and routes on SIGHUP (SPEC section 2) without touching the
/// listening socket or any connection. A config that fails validation is refused, with a
/// log line saying why, and the running one kept.
public final class ConfigReloader: Service {
    private let processor: WebhookProcessor
    /// The settings the process runs with, for telling which restart-only keys a reload changes.
    private let running: Mutex<BridgeConfig?>
    private let tls: TLSSettings?
    private let load: @Sendable () throws -> BridgeConfig
    private let logger: Logger

    /// `load` reads and validates the config file, throwing its problems.
    public init(
        processor: WebhookProcessor, tls: TLSSettings? = nil, running: BridgeConfig? = nil, logger: Logger,
        load: @escaping @Sendable () throws -> BridgeConfig
    ) {
        self.processor = processor
        self.running = Mutex(running)
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
            if let tls, let files = config.listen.tls { try tls.reload(files) }
            try processor.reload(config)
            // Sources, secrets and routes are applied; anything else waits for a restart, and
            // says so rather than being ignored in silence.
            let changed = running.withLock { running -> [String] in
                defer { running = running ?? config }
                return running?.restartOnlyChanges(to: config) ?? []
            }
            for key in changed {
                logger.warning(
                    "\(key) changed but needs a restart; the running value is kept",
                    metadata: ["config.key": "\(key)"])
            }
            logger.info("config reloaded", metadata: ["config.sources": "\(config.sources.count)"])
        } catch {
            logger.error("config reload refused; keeping the running config", metadata: ["config.error": "\(error)"])
        }
    }
}
