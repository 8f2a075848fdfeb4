import Foundation

/// Runs the built `webhook-bridge` binary, which SwiftPM puts beside the test bundle.
public struct CLI {
    public static let binary: URL = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        .appendingPathComponent("webhook-bridge")

    public struct Result: Sendable {
        public let status: Int32
        public let stdout: String
        public let stderr: String
    }

    public static func run(_ arguments: [String], environment: [String: String] = [:]) throws -> Result {
        let process = Process()
        process.executableURL = binary
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Result(
            status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self),
            stderr: String(decoding: stderr, as: UTF8.self))
    }
}

/// Runs the tool at `path` to its end (in `directory`, with `input` on its standard input);
/// its exit status and what it printed on standard output and error together.
public func runTool(
    _ path: String, _ arguments: [String], in directory: URL? = nil, input: Data? = nil
) throws -> (status: Int32, output: String) {
    let tool = Process()
    tool.executableURL = URL(fileURLWithPath: path)
    tool.arguments = arguments
    if let directory { tool.currentDirectoryURL = directory }
    let output = Pipe()
    tool.standardOutput = output
    tool.standardError = output
    let stdin = Pipe()
    if input != nil { tool.standardInput = stdin }
    try tool.run()
    if let input {
        stdin.fileHandleForWriting.write(input)
        try stdin.fileHandleForWriting.close()
    }
    let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    tool.waitUntilExit()
    return (tool.terminationStatus, text)
}
