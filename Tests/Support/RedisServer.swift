import Foundation

/// A real `redis-server` (Debian's package) on a free loopback port, started by the test and
/// stopped by it. Readiness is its own "Ready to accept connections" line, not a sleep.
/// With `tls`, the port speaks only TLS (`--port 0 --tls-port`), with the server certificate
/// of `tls`; `clientCertificates` makes it require one signed by `tls`'s CA.
public final class RedisServer: @unchecked Sendable {
    public let port: Int
    public let tls: TestCertificates?
    private let clientCertificates: Bool
    /// With a directory, Redis keeps an append-only file fsynced on every write, so what it
    /// acknowledged survives its own kill; without, it keeps nothing.
    private let persistentDirectory: String?
    private var process: Process?
    private var exited = DispatchSemaphore(value: 0)

    /// A URL the bridge can use: with TLS, trusting the test CA, with the client
    /// certificate when the server requires one.
    public var url: String {
        guard let tls else { return "redis://127.0.0.1:\(port)/0" }
        let client = clientCertificates ? "&cert=\(tls.clientCertificate)&key=\(tls.clientKey)" : ""
        return "rediss://127.0.0.1:\(port)/0?ca=\(tls.caFile)\(client)"
    }

    public init(persistentIn directory: String? = nil, tls: TestCertificates? = nil, clientCertificates: Bool = false) throws {
        self.port = try Self.freePort()
        self.persistentDirectory = directory
        self.tls = tls
        self.clientCertificates = clientCertificates
        try start()
    }

    deinit { stop() }

    /// Starts (or restarts) the server on the same port.
    public func start() throws {
        let process = Process()
        let candidates = ["/usr/bin/redis-server", "/usr/local/bin/redis-server"]
        guard let binary = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw ServerError("redis-server is not installed (scripts/install-deps.sh installs it)")
        }
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = [
            "--port", String(port), "--bind", "127.0.0.1", "--save", "", "--daemonize", "no", "--loglevel", "notice",
        ]
        if let tls {
            process.arguments! += [
                "--port", "0", "--tls-port", String(port), "--tls-cert-file", tls.serverCertificate,
                "--tls-key-file", tls.serverKey, "--tls-ca-cert-file", tls.caFile,
                "--tls-auth-clients", clientCertificates ? "yes" : "no",
            ]
        }
        if let persistentDirectory {
            process.arguments! += ["--dir", persistentDirectory, "--appendonly", "yes", "--appendfsync", "always"]
        } else {
            process.arguments! += ["--appendonly", "no"]
        }
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        let exited = DispatchSemaphore(value: 0)
        process.terminationHandler = { _ in exited.signal() }
        self.exited = exited
        try process.run()
        var seen = ""
        while !seen.contains("Ready to accept connections") {
            let chunk = output.fileHandleForReading.availableData
            if chunk.isEmpty { throw ServerError("redis-server exited: \(seen)") }
            seen += String(decoding: chunk, as: UTF8.self)
        }
        // Nothing more to read: redis ignores SIGPIPE, so its later log lines just go nowhere.
        try? output.fileHandleForReading.close()
        self.process = process
    }

    /// Stops the server (as abruptly as a crash) and waits for it to exit.
    public func stop() {
        guard let process, process.isRunning else { return }
        // SIGKILL: a child of the test process inherits its blocked signals, SIGTERM among
        // them, and this server keeps nothing worth a clean shutdown.
        kill(process.processIdentifier, SIGKILL)
        _ = exited.wait(timeout: .now() + 10)
        self.process = nil
    }

    /// A loopback port nothing listens on right now, below the kernel's range of ephemeral
    /// ports (32768 and up on Linux). A server a test stops and starts again on its port
    /// (Redis after a `kill -9`, a mock broker) can then find it taken only by another
    /// test's server, never by a client's connection that the kernel happened to give that
    /// port meanwhile (a restart failed so once: `redis-server exited`).
    public static func freePort() throws -> Int {
        for _ in 0..<200 {
            let port = Int.random(in: 20_000..<32_000)
            if canBind(port) { return port }
        }
        throw ServerError("no free port")
    }

    private static func canBind(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
    }
}

public struct ServerError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
