import Foundation

/// `webhook-bridge serve` as a child process, for tests that kill it.
public final class BridgeProcess {
    private let process = Process()
    private let log = Pipe()

    /// Starts the server on `config` and returns once it logs that it listens.
    public init(config: String, environment: [String: String] = [:]) throws {
        process.executableURL = CLI.binary
        process.arguments = ["serve", "--config", config]
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        process.standardError = log
        try process.run()
        var seen = ""
        while !seen.contains("listening") {
            let chunk = log.fileHandleForReading.availableData
            if chunk.isEmpty { throw ServerError("webhook-bridge exited: \(seen)") }
            seen += String(decoding: chunk, as: UTF8.self)
        }
        log.fileHandleForReading.readabilityHandler = { handle in _ = handle.availableData }
    }

    /// SIGKILL: no graceful anything.
    public func kill9() {
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        log.fileHandleForReading.readabilityHandler = nil
    }

    deinit { if process.isRunning { kill9() } }
}
