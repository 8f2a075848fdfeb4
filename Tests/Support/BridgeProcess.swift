import Foundation
import Synchronization

/// `webhook-bridge serve` as a child process, for tests that kill or signal it. Its log is
/// drained continuously (so it never blocks on a full pipe) and can be waited on.
public final class BridgeProcess: @unchecked Sendable {
    private let process = Process()
    private let log = Pipe()
    private final class Log: Sendable {
        let text = Mutex("")
        let arrived = DispatchSemaphore(value: 0)
    }
    private let collected = Log()
    private var arrived: DispatchSemaphore { collected.arrived }

    /// Starts the server on `config` (nil: no `--config`, so the environment or the default
    /// decides) and returns once it logs that it listens.
    ///
    /// - Parameter unprivileged: run it as user and group `nobody` (65534) through
    ///   `setpriv`, as a container or systemd would; needs root.
    public convenience init(config: String?, environment: [String: String] = [:], unprivileged: Bool = false) throws {
        let arguments = ["serve"] + (config.map { ["--config", $0] } ?? [])
        try self.init(
            command: (unprivileged ? ["/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] : [])
                + [CLI.binary.path] + arguments,
            environment: ProcessInfo.processInfo.environment.merging(environment) { $1 })
    }

    /// Starts `command` (a path and its arguments, which must run `webhook-bridge serve`) with
    /// exactly `environment`, in `directory`; returns once it logs that it listens.
    public init(command: [String], environment: [String: String], directory: String? = nil) throws {
        process.executableURL = URL(fileURLWithPath: command[0])
        process.arguments = Array(command.dropFirst())
        process.environment = environment
        if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
        process.standardError = log
        try process.run()
        let handle = log.fileHandleForReading
        let collected = self.collected
        Thread {
            while true {
                let chunk = handle.availableData
                if chunk.isEmpty { break }
                collected.text.withLock { $0 += String(decoding: chunk, as: UTF8.self) }
                collected.arrived.signal()
            }
            collected.arrived.signal()
        }.start()
        guard waitForLog("listening", after: 0) else { throw ServerError("webhook-bridge did not start: \(logText)") }
    }

    /// The server's process id.
    public var pid: Int32 { process.processIdentifier }

    /// The server's peak resident memory (VmHWM), in bytes.
    public var peakResidentBytes: Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
            let kilobytes = Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "")
        else { return nil }
        return kilobytes * 1024
    }

    /// Everything the server logged so far.
    public var logText: String { collected.text.withLock { $0 } }

    /// Waits (up to 30 s) until `needle` appears in the log after character `offset`.
    public func waitForLog(_ needle: String, after offset: Int) -> Bool {
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            let found = collected.text.withLock { String($0.dropFirst(offset)).contains(needle) }
            if found { return true }
            if !process.isRunning && !collected.text.withLock({ String($0.dropFirst(offset)).contains(needle) }) { return false }
            _ = arrived.wait(timeout: .now() + 1)
        }
        return false
    }

    /// Sends SIGHUP and returns once the server logged the outcome (true: reloaded).
    @discardableResult
    public func reload() -> Bool {
        let offset = collected.text.withLock { $0.count }
        kill(process.processIdentifier, SIGHUP)
        guard waitForLog("config reload", after: offset) else { return false }
        return collected.text.withLock { String($0.dropFirst(offset)).contains("config reloaded") }
    }

    /// Sends SIGHUP without waiting for the outcome (see ``reload()``).
    public func hangUp() { kill(process.processIdentifier, SIGHUP) }

    /// The length of the log so far, for ``waitForLog(_:after:)``.
    public var logLength: Int { collected.text.withLock { $0.count } }

    /// SIGTERM, then the exit status once the process ended.
    public func terminate() -> Int32 {
        process.terminate()
        process.waitUntilExit()
        return process.terminationStatus
    }

    /// SIGKILL: no graceful anything.
    public func kill9() {
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    deinit { if process.isRunning { kill9() } }
}

/// Writes `json` as `config.json` in `directory` and returns its path, for a `BridgeProcess`.
public func writeConfig(_ json: String, in directory: TemporaryDirectory) throws -> String {
    let path = directory.file("config.json")
    try Data(json.utf8).write(to: URL(fileURLWithPath: path))
    return path
}
