import Foundation

/// A throwaway PKI made with Debian's `openssl` for TLS tests: a CA, a server certificate it
/// signed (for `localhost` and 127.0.0.1 unless told otherwise) and a client certificate it
/// signed. Two instances are two unrelated CAs.
public struct TestCertificates: Sendable {
    public let directory: TemporaryDirectory
    public var caFile: String { directory.file("ca.pem") }
    public var serverCertificate: String { directory.file("server.pem") }
    public var serverKey: String { directory.file("server.key") }
    public var clientCertificate: String { directory.file("client.pem") }
    public var clientKey: String { directory.file("client.key") }

    /// - Parameter serverNames: the server certificate's subjectAltName.
    public init(serverNames: String = "DNS:localhost,IP:127.0.0.1") throws {
        directory = TemporaryDirectory()
        let d = directory
        try Data("subjectAltName=\(serverNames)\n".utf8).write(to: URL(fileURLWithPath: d.file("server.ext")))
        try Self.openssl(
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", d.file("ca.key"),
            "-out", caFile, "-days", "1", "-subj", "/CN=webhook-bridge test CA")
        try sign("server", subject: "/CN=localhost", extensions: d.file("server.ext"))
        try sign("client", subject: "/CN=webhook-bridge test client")
    }

    /// A key and a certificate for it signed by the CA: `NAME.key`, `NAME.pem`.
    public func sign(_ name: String, subject: String, extensions: String? = nil) throws {
        let d = directory
        try Self.openssl(
            "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", d.file("\(name).key"),
            "-out", d.file("\(name).csr"), "-subj", subject)
        try Self.openssl(
            [
                "x509", "-req", "-in", d.file("\(name).csr"), "-CA", caFile, "-CAkey", d.file("ca.key"), "-CAcreateserial",
                "-out", d.file("\(name).pem"), "-days", "1",
            ] + (extensions.map { ["-extfile", $0] } ?? []))
    }

    public func cleanup() { directory.cleanup() }

    /// Runs `/usr/bin/openssl` with `arguments`; throws when it fails.
    public static func openssl(_ arguments: String...) throws { try openssl(arguments) }

    /// What the openssl tool writes to standard output, given `input` on standard input.
    public static func opensslOutput(_ arguments: [String], input: [UInt8]) throws -> [UInt8] {
        try output("/usr/bin/openssl", arguments, input: input)
    }

    /// What `tool` writes to standard output, given `input` on standard input; throws when it fails.
    public static func output(_ tool: String, _ arguments: [String], input: [UInt8]) throws -> [UInt8] {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = arguments
        let stdin = Pipe()
        let stdout = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = FileHandle.nullDevice
        try process.run()
        try stdin.fileHandleForWriting.write(contentsOf: input)
        try stdin.fileHandleForWriting.close()
        let output = stdout.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw ServerError("\(tool) \(arguments.prefix(2).joined(separator: " ")) failed")
        }
        return Array(output)
    }

    public static func openssl(_ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw ServerError("openssl \(arguments.prefix(2).joined(separator: " ")) failed")
        }
    }
}
