import ArgumentParser
import Logging
import WebhookBridge
import WebhookCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// `webhook-bridge`: the command line of SPEC section 2.
@main
struct WebhookBridgeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "webhook-bridge",
        abstract: "Receives webhooks, verifies them and writes them durably to Kafka, Redis Streams or files.",
        subcommands: [
            Serve.self, CheckConfig.self, Sign.self, Send.self, ReplayCommand.self, ProvidersCommand.self, RouteCommand.self,
            VerifyCommand.self, ListenCommand.self,
        ]
    )

    /// As ArgumentParser's own, except that every failure exits 1 (SPEC section 2 gives each
    /// command 0 or 1; ArgumentParser would exit 64 for a usage or validation error, such as
    /// `send` with a bad URL or an unreadable `--body`). `--help` still exits 0.
    static func main() async {
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            if exitCode(for: error) == .success { exit(withError: error) }
            let message = fullMessage(for: error)
            if !message.isEmpty { printError(message) }
            systemExit(1)
        }
    }
}

// The C functions by module name: inside types the names `exit` and `write` are
// ArgumentParser's and TextOutputStream's.
#if canImport(Glibc)
    private let systemExit = Glibc.exit
    private let systemWrite = Glibc.write
#elseif canImport(Darwin)
    private let systemExit = Darwin.exit
    private let systemWrite = Darwin.write
#endif

/// Prints one line to standard error.
func printError(_ line: String) {
    var stream = StandardError()
    print(line, to: &stream)
}

struct StandardError: TextOutputStream {
    mutating func write(_ string: String) {
        var text = string
        text.withUTF8 { bytes in
            var offset = 0
            while offset < bytes.count {
                let written = systemWrite(2, bytes.baseAddress! + offset, bytes.count - offset)
                if written <= 0 { return }
                offset += written
            }
        }
    }
}

/// Reads and validates a config file, as `serve` and `check-config` both do.
func loadConfig(path: String) throws(ConfigFileError) -> BridgeConfig {
    guard let bytes = readFile(path) else {
        throw ConfigFileError(
            path: path, problems: [ConfigProblem(path: "", message: "cannot read the file: \(String(cString: strerror(errno)))")])
    }
    do {
        return try Bridge.loadConfig(bytes, environment: ProcessEnvironment.current)
    } catch {
        throw ConfigFileError(path: path, problems: error.problems)
    }
}

/// A config file's problems, each printed as `PATH: json.path: what is wrong`.
struct ConfigFileError: Error {
    let path: String
    let problems: [ConfigProblem]

    var lines: [String] { problems.map { "\(path): \($0)" } }
}

/// A `--body` option's bytes: the file, or standard input for `-`.
func readBody(_ path: String) throws -> [UInt8] {
    if path == "-" { return readStandardInput() }
    guard let bytes = readFile(path) else { throw ValidationError("--body: cannot read \(path)") }
    return bytes
}

func readFile(_ path: String) -> [UInt8]? {
    guard let file = fopen(path, "rb") else { return nil }
    defer { fclose(file) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        let count = fread(&chunk, 1, chunk.count, file)
        if count > 0 { bytes.append(contentsOf: chunk[0..<count]) }
        if count < chunk.count { break }
    }
    return ferror(file) == 0 ? bytes : nil
}

enum ProcessEnvironment {
    static var current: [String: String] {
        var result: [String: String] = [:]
        var pointer = environ
        while let entry = pointer.pointee {
            let text = String(cString: entry)
            if let equals = text.firstIndex(of: "=") {
                result[String(text[..<equals])] = String(text[text.index(after: equals)...])
            }
            pointer += 1
        }
        return result
    }
}

/// `--header 'Name: value'` options as name and value.
func parseHeaderOptions(_ options: [String]) throws -> [(String, String)] {
    try options.map { header in
        guard let colon = header.firstIndex(of: ":") else { throw ValidationError("--header: '\(header)' is not 'Name: value'") }
        return (String(header[..<colon]), String(header[header.index(after: colon)...].drop { $0 == " " }))
    }
}
