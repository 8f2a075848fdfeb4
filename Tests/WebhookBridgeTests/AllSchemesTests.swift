import BridgeTestSupport
import WebhookCrypto
import Foundation
import Testing
import WebhookBridge
import WebhookCore
import WebhookEncoding
import WebhookProviders

@Suite("Every scheme over HTTP")
struct AllSchemesTests {
    struct Source {
        /// The source's name and path: its scheme's, numbered after the first.
        let name: String
        let scheme: String
        let verifySecret: String
        let signSecret: String
        var url: String? = nil
        var extra = ""
    }

    /// A source for every provider `sign` signs for (the registry's, through the signing
    /// fixtures), and one that checks nothing.
    static func sources() -> [Source] {
        var seen: [String: Int] = [:]
        var sources = SchemeFixture.all().map { fixture in
            let count = seen[fixture.scheme, default: 0]
            seen[fixture.scheme] = count + 1
            return Source(
                name: count == 0 ? fixture.scheme : "\(fixture.scheme)-\(count + 1)", scheme: fixture.scheme,
                verifySecret: fixture.verifySecret, signSecret: fixture.signSecret, url: fixture.url, extra: fixture.extra)
        }
        sources.append(Source(name: "none", scheme: "none", verifySecret: "", signSecret: ""))
        return sources
    }

    static func config(_ sources: [Source]) -> String {
        let entries = sources.map { source in
            let secrets = source.scheme == "none" ? "" : #", "secrets": ["\#(source.verifySecret)"]"#
            let url = source.url.map { #", "publicUrl": "\#($0)""# } ?? ""
            return
                #""\#(source.name)": {"path": "/\#(source.name)", "verify": {"scheme": "\#(source.scheme)"\#(secrets)\#(url)\#(source.extra)}, "sinks": ["archive"]}"#
        }
        return """
            {"listen": {"host": "127.0.0.1", "port": 0},
             "spool": {"directory": "{dir}/spool"},
             "sinks": {"archive": {"type": "file", "path": "{dir}/events.jsonl"}},
             "sources": {\(entries.joined(separator: ",\n"))}}
            """
    }

    /// Signs `body` for `source` and POSTs it to the source's path.
    func post(_ bridge: RunningBridge, _ source: Source, body: String, id: String, tamper: Bool = false) async throws
        -> WebhookClient.Response
    {
        var input = WebhookSigner.Input(
            body: Array(body.utf8), secret: source.signSecret, timestamp: Timestamp.now().secondsSince1970, id: id)
        input.url = source.url
        let output = try WebhookSigner.sign(scheme: source.scheme, input)
        let query = (output.url ?? "").firstIndex(of: "?").map { String(output.url![$0...]) } ?? ""
        let contentType = source.scheme == "twilio" ? "application/x-www-form-urlencoded" : "application/json"
        let sent = output.body ?? Array(body.utf8)
        return try await WebhookClient.send(
            host: "127.0.0.1", port: bridge.port, path: "/\(source.name)\(query)",
            headers: output.headers + [("Content-Type", contentType)], body: tamper ? sent + Array(" ".utf8) : sent)
    }

    func body(for source: Source, n: Int) -> String {
        if source.scheme == "twilio" { return "MessageSid=SM\(n)&MessageStatus=delivered" }
        let ms = Timestamp.now().millisecondsSince1970
        return
            #"{"id":"evt_\#(source.scheme)_\#(n)","event_id":"evt_\#(source.scheme)_\#(n)","type":"thing.happened","event_type":"thing.happened","event":"thing.happened","webhookTimestamp":\#(ms)}"#
    }

    @Test("what sign produces is accepted by every source; a tampered copy is refused and never written")
    func signedRoundTrip() async throws {
        let sources = Self.sources()
        try await RunningBridge.with(config: Self.config(sources)) { bridge in
            for source in sources {
                let payload = body(for: source, n: 1)
                let accepted = try await post(bridge, source, body: payload, id: "id-\(source.name)")
                #expect(accepted.status == .ok, "\(source.name): \(accepted.text)")
                #expect(accepted.json?["status"] == .string("accepted"), "\(source.name)")
                if source.scheme != "none" && !SchemeFixture.tokenSchemes.contains(source.scheme) {
                    let tampered = try await post(
                        bridge, source, body: body(for: source, n: 2), id: "t-\(source.name)", tamper: true)
                    #expect(tampered.status == .unauthorized, "\(source.name): \(tampered.text)")
                }
            }
            let lines = try bridge.lines("events.jsonl")
            #expect(lines.count == sources.count)
            #expect(Set(lines.compactMap { $0["source"]?.scalarText }) == Set(sources.map(\.name)))
            #expect(sources.count >= 40, "\(sources.map(\.name))")
            let schemes = Dictionary(uniqueKeysWithValues: sources.map { ($0.name, $0.scheme) })
            for line in lines {
                #expect(line["webhookscheme"]?.scalarText == schemes[line["source"]?.scalarText ?? ""])
                #expect(line["webhookkey"] == .number("0"))
            }
            let byScheme = Dictionary(uniqueKeysWithValues: lines.map { ($0["source"]?.scalarText ?? "", $0) })
            #expect(byScheme["stripe"]?["id"] == .string("evt_stripe_1"))
            #expect(byScheme["stripe"]?["type"] == .string("thing.happened"))
            #expect(byScheme["github"]?["id"] == .string("id-github"))
            #expect(byScheme["twilio"]?["type"] == .string("delivered"))
            #expect(byScheme["sendgrid"]?["type"] == .string("sendgrid.events"))
            #expect(byScheme["none"]?["type"] == .string("webhook"))
            #expect(byScheme["none"]?["id"]?.scalarText?.hasPrefix("sha256:") == true)
        }
    }

    @Test("handshakes are answered after verification and never forwarded")
    func handshakes() async throws {
        let sources = Self.sources().filter { ["slack", "zoom", "discord"].contains($0.scheme) }
        try await RunningBridge.with(config: Self.config(sources)) { bridge in
            let slack = try await post(
                bridge, sources[0], body: #"{"type":"url_verification","challenge":"ch-123","token":"x"}"#, id: "h1")
            #expect(slack.status == .ok)
            #expect(slack.json == .object([("challenge", .string("ch-123"))]))
            let zoom = try await post(
                bridge, sources[1], body: #"{"event":"endpoint.url_validation","payload":{"plainToken":"pt-1"},"event_ts":1}"#,
                id: "h2")
            let expected = Hex.encode(
                HashAlgorithm.sha256.authenticationCode(for: Array("pt-1".utf8), using: (Array("zm".utf8))))
            #expect(zoom.json == .object([("plainToken", .string("pt-1")), ("encryptedToken", .string(expected))]))
            let discord = try await post(bridge, sources[2], body: #"{"id":"1","type":1,"version":1}"#, id: "h3")
            #expect(discord.json == .object([("type", .number("1"))]))
            // An unsigned handshake is refused like anything else.
            let forged = try await bridge.post("/slack", headers: [], body: #"{"type":"url_verification","challenge":"x"}"#)
            #expect(forged.status == .unauthorized)
            #expect(try bridge.lines("events.jsonl").isEmpty)
        }
    }
}
