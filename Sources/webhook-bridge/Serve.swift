import ArgumentParser
import Logging
import WebhookBridge
import WebhookCore

/// `webhook-bridge serve`.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Runs the server until SIGTERM or SIGINT.",
        discussion:
            "--config defaults to $WEBHOOK_BRIDGE_CONFIG, then config.json. Log level: $LOG_LEVEL (default info); LOG_FORMAT=json for one JSON object a line."
    )

    @Option(name: .long, help: "The config file.")
    var config: String?

    func run() async throws {
        let path = config ?? ProcessEnvironment.current["WEBHOOK_BRIDGE_CONFIG"] ?? "config.json"
        LoggingSystem.bootstrap { label in
            var handler = EscapingLogHandler.standardError(label: label)
            handler.format = ProcessEnvironment.current["LOG_FORMAT"]?.lowercased() == "json" ? .json : .text
            handler.logLevel = ProcessEnvironment.current["LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .info
            return handler
        }
        let logger = Logger(label: "webhook-bridge")

        let bridgeConfig: BridgeConfig
        do {
            bridgeConfig = try loadConfig(path: path)
        } catch {
            var more =
                error.lines.count > 1 ? " (and \(error.lines.count - 1) more: run webhook-bridge check-config \(path))" : ""
            if config == nil && ProcessEnvironment.current["WEBHOOK_BRIDGE_CONFIG"] == nil && readFile(path) == nil {
                // The first run in a fresh directory: say where a config comes from.
                more =
                    " (no --config and no $WEBHOOK_BRIDGE_CONFIG, so config.json is read: pass --config PATH, or start from config.example.json)"
            }
            printError("webhook-bridge: \(error.lines[0])\(more)")
            throw ExitCode(1)
        }
        for warning in bridgeConfig.warnings {
            logger.warning("config: \(warning.path): \(warning.message)", metadata: ["config.path": "\(path)"])
        }
        do {
            let bridge = try await Bridge.start(config: bridgeConfig, logger: logger, metrics: PrometheusExport.bootstrap())
            let reloader = ConfigReloader(processor: bridge.processor, tls: bridge.tls, running: bridgeConfig, logger: logger) {
                do throws(ConfigFileError) {
                    return try loadConfig(path: path)
                } catch {
                    throw BridgeSetupError(error.lines.joined(separator: "; "))
                }
            }
            try await bridge.run(reloader: reloader)
            StandardErrorLog.shared.flush()
        } catch let error as BridgeSetupError {
            StandardErrorLog.shared.flush()
            printError("webhook-bridge: \(path): \(error)")
            throw ExitCode(1)
        } catch {
            StandardErrorLog.shared.flush()
            throw error
        }
    }
}
