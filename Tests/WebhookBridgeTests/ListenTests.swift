import BridgeTestSupport
import Foundation
import Synchronization
import Testing
import WebhookBridge
import WebhookCore
import WebhookEncoding

/// `webhook-bridge listen` as a child process: what it prints, line by line.
final class ListenProcess: @unchecked Sendable {
    private let process = Process()
    private final class Output: Sendable {
        let text = Mutex("")
        let arrived = DispatchSemaphore(value: 0)
    }
    private let output = Output()

    init(_ arguments: [String]) throws {
        process.executableURL = CLI.binary
        process.arguments = ["listen"] + arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let handle = pipe.fileHandleForReading
        let output = self.output
        Thread {
            while true {
                let chunk = handle.availableData
                if chunk.isEmpty { break }
                output.text.withLock { $0 += String(decoding: chunk, as: UTF8.self) }
                output.arrived.signal()
            }
            output.arrived.signal()
        }.start()
    }

    var text: String { output.text.withLock { $0 } }

    /// Waits (up to 30 s) until the output holds `needle` `count` times.
    @discardableResult
    func waitFor(_ needle: String, count: Int = 1) -> Bool {
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            if text.components(separatedBy: needle).count - 1 >= count { return true }
            if !process.isRunning { return text.components(separatedBy: needle).count - 1 >= count }
            _ = output.arrived.wait(timeout: .now() + 1)
        }
        return false
    }

    /// Waits for the process to end by itself; its exit status.
    func exitStatus() -> Int32 {
        process.waitUntilExit()
        return process.terminationStatus
    }

    func stop() {
        process.terminate()
        process.waitUntilExit()
    }

    deinit { if process.isRunning { stop() } }
}

/// `listen --forward-to` against a real bridge and a real receiver (scripts/webhook-receiver.py,
/// which checks signatures with the official Standard Webhooks library): events arrive in
/// order, once, across restarts of `listen` and of the bridge.
@Suite(
    "listen: a bridge's events forwarded to a local app", .serialized,
    .enabled(
        if: WebhookReceiver.isInstalled, "standardwebhooks is not installed (scripts/install-test-tools.sh, run by make test)"))
struct ListenTests {
    static let token = "listen-token-0123456789"
    static let localSecret = "whsec_" + Base64.encode(Array("the-laptop-secret-0123456789".utf8))

    struct Setup {
        let directory: TemporaryDirectory
        let port: Int
        let adminPort: Int
        let config: String
    }

    func setUp() throws -> Setup {
        let directory = TemporaryDirectory()
        let port = try RedisServer.freePort()
        let adminPort = try RedisServer.freePort()
        let config = try writeConfig(
            """
            {"listen": {"host": "127.0.0.1", "port": \(port)},
             "admin": {"host": "127.0.0.1", "port": \(adminPort), "token": "\(Self.token)"},
             "sinks": {"archive": {"type": "file", "path": "\(directory.file("events.jsonl"))"}},
             "sources": {"gh": {"path": "/gh", "verify": {"scheme": "github", "secrets": ["gh-secret"]}, "sinks": ["archive"]}}}
            """, in: directory)
        return Setup(directory: directory, port: port, adminPort: adminPort, config: config)
    }

    static func body(_ id: String) -> String { #"{"delivery": "\#(id)", "amount": 4200}"# }

    func post(_ setup: Setup, _ id: String) throws {
        let connection = try KeepAliveConnection(port: setup.port)
        let answer = try connection.post("/gh", headers: githubHeaders(Self.body(id), delivery: id), body: Self.body(id))
        #expect(answer.status == 200, "\(id): \(answer)")
    }

    @Test(
        "events arrive at the local app in order and once, signed again for its secret, across a restart of listen and one of the bridge"
    )
    func forwards() throws {
        let setup = try setUp()
        defer { setup.directory.cleanup() }
        let receiver = try WebhookReceiver(secret: Self.localSecret)
        defer { receiver.stop() }
        var bridge: BridgeProcess? = try BridgeProcess(config: setup.config)
        let arguments = [
            "http://127.0.0.1:\(setup.adminPort)", "--token", Self.token,
            "--forward-to", "http://127.0.0.1:\(receiver.port)/local/hooks",
            "--scheme", "standard-webhooks", "--secret", Self.localSecret, "--state", setup.directory.file("listen-state"),
        ]
        var listen = try ListenProcess(arguments)
        #expect(listen.waitFor("connected"))
        for id in ["e-1", "e-2", "e-3"] { try post(setup, id) }
        receiver.waitFor { $0.count >= 3 }
        #expect(listen.waitFor("-> 204", count: 3))

        // listen stops; the bridge goes on taking events; a new listen resumes after e-3.
        listen.stop()
        for id in ["e-4", "e-5"] { try post(setup, id) }
        listen = try ListenProcess(arguments)
        #expect(listen.waitFor("after event") && listen.waitFor("connected"))
        receiver.waitFor { $0.count >= 5 }

        // The bridge restarts: listen reconnects, and the new process's events come through.
        _ = bridge?.terminate()
        bridge = nil
        #expect(listen.waitFor("reconnecting"))
        bridge = try BridgeProcess(config: setup.config)
        #expect(listen.waitFor("connected", count: 2))
        try post(setup, "e-6")
        let deliveries = receiver.waitFor { $0.count >= 6 }

        #expect(deliveries.map(\.id) == ["e-1", "e-2", "e-3", "e-4", "e-5", "e-6"])
        #expect(deliveries.map(\.body) == (1...6).map { Self.body("e-\($0)") })
        #expect(deliveries.allSatisfy { $0.verified && $0.path == "/local/hooks" }, "\(deliveries.map(\.error))")
        // The provider's signature is not passed on when signing again.
        #expect(deliveries.allSatisfy { $0.header("x-hub-signature-256") == nil })
        #expect(deliveries.allSatisfy { $0.header("x-github-event") == "push" })
        #expect(listen.waitFor("-> 204", count: 3))
        #expect(listen.text.contains("gh push e-6 -> 204 No Content"))
        _ = bridge?.terminate()
    }

    @Test("without --scheme, the provider's own headers and body are passed on as they came")
    func passesOn() throws {
        let setup = try setUp()
        defer { setup.directory.cleanup() }
        let receiver = try WebhookReceiver(secret: nil)
        defer { receiver.stop() }
        let bridge = try BridgeProcess(config: setup.config)
        let listen = try ListenProcess([
            "http://127.0.0.1:\(setup.adminPort)", "--token", Self.token, "--source", "gh",
            "--forward-to", "http://127.0.0.1:\(receiver.port)/app", "--state", setup.directory.file("state"),
        ])
        #expect(listen.waitFor("connected"))
        try post(setup, "p-1")
        let deliveries = receiver.waitFor { $0.count >= 1 }
        #expect(deliveries.first?.body == Self.body("p-1"))
        #expect(deliveries.first?.header("x-hub-signature-256") == githubSignature(Self.body("p-1"), secret: "gh-secret"))
        #expect(deliveries.first?.header("x-github-delivery") == "p-1")
        #expect(deliveries.first?.header("content-type") == "application/json")
        _ = bridge.terminate()
    }

    @Test(
        "an app that takes the request and does not answer in --timeout gets it once, not again; the next event goes through"
    )
    func timeoutNotRetried() throws {
        let setup = try setUp()
        defer { setup.directory.cleanup() }
        let receiver = try WebhookReceiver(secret: nil)
        defer { receiver.stop() }
        try receiver.answer(#"{"hang": 3}"#)
        let bridge = try BridgeProcess(config: setup.config)
        let listen = try ListenProcess([
            "http://127.0.0.1:\(setup.adminPort)", "--token", Self.token, "--timeout", "1",
            "--forward-to", "http://127.0.0.1:\(receiver.port)/app", "--state", setup.directory.file("state"),
        ])
        #expect(listen.waitFor("connected"))
        try post(setup, "t-1")
        #expect(listen.waitFor("t-1 -> failed"), "\(listen.text)")
        #expect(listen.text.contains("not sent again"))
        try post(setup, "t-2")
        #expect(listen.waitFor("t-2 -> 204"))
        #expect(receiver.waitFor { $0.count >= 2 }.map { $0.header("x-github-delivery") } == ["t-1", "t-2"])
        _ = bridge.terminate()
    }

    @Test("a wrong token: listen exits 1 with one line saying the bridge refused it")
    func wrongToken() throws {
        let setup = try setUp()
        defer { setup.directory.cleanup() }
        let bridge = try BridgeProcess(config: setup.config)
        let listen = try ListenProcess([
            "http://127.0.0.1:\(setup.adminPort)", "--token", "wrong", "--forward-to", "http://127.0.0.1:9/app",
            "--state", setup.directory.file("state"),
        ])
        #expect(listen.exitStatus() == 1)
        #expect(listen.text.contains("refused the stream: 401") && listen.text.contains("check --token"))
        _ = bridge.terminate()
    }
}
