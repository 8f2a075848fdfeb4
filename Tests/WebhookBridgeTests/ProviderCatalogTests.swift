import BridgeTestSupport
import Foundation
import Testing
import WebhookBridge
import WebhookCore
import WebhookEncoding
import WebhookProviders

@Suite("The provider catalog: providers, the table in docs/providers.md, send --handshake")
struct ProviderCatalogTests {
    @Test("providers --json lists every provider of the registry with its handshake and aliases")
    func providersJSON() throws {
        let result = try CLI.run(["providers", "--json"])
        #expect(result.status == 0)
        let json = try JSONParser.parse(Array(result.stdout.utf8))
        #expect(json["count"]?.scalarText == String(ProviderRegistry.all.count))
        guard case .array(let entries)? = json["providers"] else {
            Issue.record("no providers array: \(result.stdout)")
            return
        }
        #expect(entries.compactMap { $0["name"]?.scalarText } == ProviderRegistry.all.map(\.name))
        let meta = entries.first { $0["name"]?.scalarText == "meta" }
        #expect(meta?["handshake"]?.scalarText?.contains("hub.challenge") == true)
        #expect(meta?["rehearseHandshake"] == .bool(true))
        #expect(entries.first { $0["name"]?.scalarText == "standard-webhooks" }?["aliases"] == .array([.string("svix"), .string("clerk"), .string("resend")]))
        let text = try CLI.run(["providers"])
        #expect(text.stdout.split(separator: "\n").count == ProviderRegistry.all.count)
    }

    @Test("the provider table of docs/providers.md is what providers --markdown prints")
    func readmeTable() throws {
        let page = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("docs/providers.md")
        let text = try String(contentsOf: page, encoding: .utf8)
        guard let begin = text.range(of: "<!-- providers:begin"), let end = text.range(of: "<!-- providers:end -->") else {
            Issue.record("docs/providers.md has no providers:begin/end markers")
            return
        }
        let afterMarker = text[begin.upperBound...].firstIndex(of: "\n").map { text.index(after: $0) } ?? begin.upperBound
        let table = String(text[afterMarker..<end.lowerBound])
        let generated = try CLI.run(["providers", "--markdown"]).stdout
        #expect(table == generated, "regenerate it with: webhook-bridge providers --markdown")
    }

    static let config = """
        {"listen": {"host": "127.0.0.1", "port": 0},
         "sinks": {"archive": {"type": "file", "path": "{dir}/{source}.jsonl"}},
         "sources": {
           "wa": {"path": "/meta", "verify": {"scheme": "meta", "secrets": ["app-secret"], "verifyToken": "vt"}, "sinks": ["archive"]},
           "dbx": {"path": "/dropbox", "verify": {"scheme": "dropbox", "secrets": ["d"]}, "sinks": ["archive"]},
           "okta": {"path": "/okta", "verify": {"scheme": "okta", "secrets": ["Bearer o"]}, "sinks": ["archive"]},
           "graph": {"path": "/graph", "verify": {"scheme": "microsoft-graph", "secrets": ["cs"]}, "sinks": ["archive"]},
           "grid": {"path": "/grid", "verify": {"scheme": "event-grid", "secrets": ["gc"]}, "sinks": ["archive"]}}}
        """

    @Test(
        "send --handshake rehearses each provider's setup request and accepts the bridge's answer",
        arguments: [("meta", "/meta", "vt"), ("dropbox", "/dropbox", "-"), ("okta", "/okta", "Bearer o"),
                    ("microsoft-graph", "/graph", "-"), ("event-grid", "/grid", "gc")])
    func rehearse(scheme: String, path: String, secret: String) async throws {
        try await RunningBridge.with(config: Self.config) { bridge in
            let url = "http://127.0.0.1:\(bridge.port)\(path)"
            let result = try await offThePool { try CLI.run(["send", url, "--scheme", scheme, "--secret", secret, "--handshake"]) }
            #expect(result.status == 0, "\(result.stdout) \(result.stderr)")
            #expect(result.stdout.hasSuffix("handshake accepted\n"), "\(result.stdout)")
            #expect(try bridge.lines("\(path.dropFirst()).jsonl").isEmpty)
        }
    }

    @Test("send --handshake with the wrong verify token says why Meta would not accept the answer")
    func rehearsalRefused() async throws {
        try await RunningBridge.with(config: Self.config) { bridge in
            let url = "http://127.0.0.1:\(bridge.port)/meta"
            let result = try await offThePool { try CLI.run(["send", url, "--scheme", "meta", "--secret", "wrong", "--handshake"]) }
            #expect(result.status == 1)
            #expect(result.stdout.hasPrefix("403"))
            #expect(result.stderr.contains("meta would not accept this answer: the answer is 403, not 200"), "\(result.stderr)")
        }
    }
}
