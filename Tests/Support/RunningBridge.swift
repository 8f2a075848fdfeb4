import WebhookCrypto
import Foundation
import Logging
import NIOCore
import WebhookBridge
import WebhookCore
import WebhookEncoding

/// A fresh directory under the system temp dir, removed by `cleanup`.
public struct TemporaryDirectory: Sendable {
    public let path: String

    public init() {
        var template = Array((NSTemporaryDirectory() + "/webhook-bridge-test.XXXXXX").utf8CString)
        let created = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        precondition(created != nil, "mkdtemp failed")
        path = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    public func file(_ name: String) -> String { "\(path)/\(name)" }

    public func cleanup() { try? FileManager.default.removeItem(atPath: path) }
}

/// A bridge running on a free loopback port, on a config given as JSON text with `{dir}`
/// replaced by a temporary directory.
public struct RunningBridge: Sendable {
    public let port: Int
    public let directory: TemporaryDirectory
    public let bridge: Bridge

    public static func with<T>(
        config: String, environment: [String: String] = [:], _ body: (RunningBridge) async throws -> T
    ) async throws -> T {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let text = config.replacingOccurrences(of: "{dir}", with: directory.path)
        let loaded = try Bridge.loadConfig(Array(text.utf8), environment: environment)
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let bridge = try await Bridge.start(config: loaded, logger: logger)
        let port = bridge.ingress.localAddress!.port!
        let task = Task { try await bridge.run(handleSignals: false) }
        defer { task.cancel() }
        let running = RunningBridge(port: port, directory: directory, bridge: bridge)
        let result = try await body(running)
        task.cancel()
        _ = await task.result
        return result
    }

    public func post(_ path: String, headers: [(String, String)], body: String) async throws -> WebhookClient.Response {
        try await WebhookClient.send(host: "127.0.0.1", port: port, path: path, headers: headers, body: Array(body.utf8))
    }

    public func get(_ path: String) async throws -> WebhookClient.Response {
        try await WebhookClient.send(host: "127.0.0.1", port: port, method: .GET, path: path)
    }

    /// The lines of a file sink's output, each parsed.
    public func lines(_ name: String) throws -> [JSONValue] {
        guard let data = FileManager.default.contents(atPath: directory.file(name)) else { return [] }
        return try data.split(separator: 0x0A).map { try JSONParser.parse(Array($0)) }
    }
}

/// GitHub's signature header for `body`.
public func githubSignature(_ body: String, secret: String) -> String {
    let mac = HashAlgorithm.sha256.authenticationCode(for: Array(body.utf8), using: (Array(secret.utf8)))
    return "sha256=" + Hex.encode(mac)
}

/// Headers of a signed GitHub delivery.
public func githubHeaders(_ body: String, delivery: String, event: String = "push", secret: String = "gh-secret") -> [(
    String, String
)] {
    [
        ("X-Hub-Signature-256", githubSignature(body, secret: secret)), ("X-GitHub-Delivery", delivery),
        ("X-GitHub-Event", event), ("Content-Type", "application/json"),
    ]
}

extension WebhookClient.Response {
    public var json: JSONValue? { try? JSONParser.parse(body) }
}

/// Waits (bounded) for a condition only background work can make true (a forwarder
/// draining the spool), polling it; returns whether it became true in time.
public func eventually(_ seconds: Double = 15, _ condition: () throws -> Bool) async rethrows -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if try condition() { return true }
        try? await Task.sleep(for: .milliseconds(20))
    }
    return try condition()
}
