import ArgumentParser
import Logging
import WebhookBridge
import WebhookCore

/// `webhook-bridge replay`.
struct ReplayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract:
            "Re-delivers CloudEvents JSON lines (a file sink's output or the dead-letter file) into a configured sink, keeping their ids.",
        discussion: "Exit 0 when every line was delivered, 1 otherwise (each failure on its own line: FILE:LINE: reason)."
    )

    @Option(help: "The config file.")
    var config: String

    @Option(help: "The JSON lines to re-deliver.")
    var from: String

    @Option(help: "The configured sink to deliver into.")
    var sink: String

    func run() async throws {
        let bridgeConfig: BridgeConfig
        do {
            bridgeConfig = try loadConfig(path: config)
        } catch {
            for line in error.lines { printError(line) }
            throw ExitCode(1)
        }
        guard let bytes = readFile(from) else {
            printError("webhook-bridge: \(from): cannot read the file")
            throw ExitCode(1)
        }
        var logger = Logger(label: "webhook-bridge")
        logger.logLevel = .warning
        // Blank lines are kept (and skipped by the replay), so a failure names its line in the file.
        let lines = bytes.split(separator: 0x0A, omittingEmptySubsequences: false).map(Array.init)
        let report: Replay.Report
        do {
            report = try await Replay.run(config: bridgeConfig, sinkName: sink, lines: lines, logger: logger)
        } catch let error as BridgeSetupError {
            printError("webhook-bridge: \(config): \(error)")
            throw ExitCode(1)
        }
        for failure in report.failed { printError("\(from):\(failure.line): \(failure.reason)") }
        print(
            "replayed \(report.delivered) event(s) into \(sink)\(report.failed.isEmpty ? "" : ", \(report.failed.count) failed")")
        if !report.failed.isEmpty { throw ExitCode(1) }
    }
}
