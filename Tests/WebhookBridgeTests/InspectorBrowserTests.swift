import BridgeTestSupport
import Foundation
import Testing
import WebhookBridge
import WebhookCore
import WebhookEncoding

/// Debian's `chromium`, when installed.
enum Chromium {
    static let path: String? = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].first {
        FileManager.default.isExecutableFile(atPath: $0)
    }
}

/// The inspector page in Debian's headless Chromium (scripts/inspector-browser-check.py, over
/// the DevTools protocol): what a person sees and does, against the real binary.
@Suite(
    "Inspector: the page in a browser", .serialized,
    .enabled(if: Chromium.path != nil, "chromium is not installed (scripts/install-test-tools.sh)"),
    .enabled(
        if: WebhookReceiver.isInstalled, "standardwebhooks is not installed (scripts/install-test-tools.sh, run by make test)"))
struct InspectorBrowserTests {
    static let token = "browser-token-0123456789"
    static let secret = "whsec_" + Base64.encode(Array("receiver-key-0123456789abcdef".utf8))

    @Test(
        "live rows with outcomes and the rejection's cause, no reload; the detail masks the signature; the rejected filter; a dead letter replayed into its sink; a phone's width"
    )
    func page() throws {
        let receiver = try WebhookReceiver(secret: Self.secret)
        defer { receiver.stop() }
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let port = try RedisServer.freePort()
        let adminPort = try RedisServer.freePort()
        let config = try writeConfig(
            """
            {"listen": {"host": "127.0.0.1", "port": \(port)},
             "admin": {"host": "127.0.0.1", "port": \(adminPort), "token": "\(Self.token)"},
             "spool": {"directory": "\(directory.file("spool"))", "retry": {"initialMs": 20, "maxMs": 100}},
             "sinks": {"archive": {"type": "file", "path": "\(directory.file("events.jsonl"))"},
                       "orders": {"type": "http", "url": "http://127.0.0.1:\(receiver.port)/orders", "sign": {"secrets": ["\(Self.secret)"]}}},
             "sources": {"github": {"path": "/webhooks/github", "verify": {"scheme": "github", "secrets": ["gh-secret"]}, "sinks": ["archive"]},
                         "shop": {"path": "/webhooks/shop", "verify": {"scheme": "github", "secrets": ["gh-secret"]}, "sinks": ["orders"]}}}
            """, in: directory)
        let bridge = try BridgeProcess(config: config)
        defer { _ = bridge.terminate() }

        // A dead letter to replay: the receiver refuses the first delivery for good (400).
        try receiver.answer(#"{"status": 400, "body": "unknown customer"}"#)
        let body = #"{"order": "o-77", "total": 4200}"#
        let connection = try KeepAliveConnection(port: port)
        let queued = try connection.post("/webhooks/shop", headers: githubHeaders(body, delivery: "o-77"), body: body)
        #expect(queued.status == 202, "\(queued)")
        receiver.waitFor { $0.contains { $0.answered == 400 } }
        try receiver.answer("")

        let screenshot = directory.file("inspector.png")
        let run = try runTool(
            "/usr/bin/python3",
            [
                DeployTests.root.appendingPathComponent("scripts/inspector-browser-check.py").path,
                "--admin", "http://127.0.0.1:\(adminPort)", "--token", Self.token,
                "--webhook", "http://127.0.0.1:\(port)/webhooks/github", "--secret", "gh-secret",
                "--screenshot", screenshot, "--phone-screenshot", directory.file("phone.png"),
            ])
        // The report is the last line (the browser may print before it).
        let report = run.output.split(separator: "\n").last.map(String.init) ?? ""
        guard let seen = try? JSONParser.parse(Array(report.utf8)) else {
            Issue.record("no report: \(run.output)")
            return
        }
        #expect(seen["ok"] == .bool(true), "\(run.output)")
        #expect(seen["fragmentGone"] == .bool(true))  // the token is not left in the address bar
        #expect(seen["statuses"] == .array([.number("200"), .number("401")]))
        #expect(seen["sameLoad"] == .bool(true))
        #expect(seen["signed"]?["outcome"]?.scalarText == "accepted")
        #expect(seen["forged"]?["outcome"]?.scalarText == "rejected")
        #expect(seen["forged"]?["cause"]?.scalarText == "signature_invalid")
        #expect(seen["headers"]?["X-Hub-Signature-256"]?.scalarText == "(masked, 71 bytes)")
        #expect(seen["headers"]?["X-Github-Event"]?.scalarText == "issues")
        #expect(seen["body"]?.scalarText?.contains("\n  \"action\": \"opened\"") == true)  // pretty-printed
        #expect(seen["filtered"] == .array([.string("rejected")]))
        #expect(seen["deadLetter"]?["text"]?.scalarText?.contains("o-77") == true)
        #expect(seen["replay"]?.scalarText == "replay delivered")
        #expect(seen["phoneOverflow"]?.scalarText == "0")
        // The replayed dead letter landed in its sink: the receiver has it, signed, with its id.
        let delivered = receiver.waitFor { $0.contains { $0.answered == 204 } }.filter { $0.answered == 204 }
        #expect(delivered.count == 1 && delivered.first?.body == body && delivered.first?.verified == true)
        #expect(FileManager.default.fileExists(atPath: screenshot))
        if let keep = ProcessInfo.processInfo.environment["INSPECTOR_SCREENSHOT"] {
            try? FileManager.default.removeItem(atPath: keep)
            try FileManager.default.copyItem(atPath: screenshot, toPath: keep)
            try? FileManager.default.removeItem(atPath: keep + ".phone.png")
            try FileManager.default.copyItem(atPath: directory.file("phone.png"), toPath: keep + ".phone.png")
        }
    }
}
