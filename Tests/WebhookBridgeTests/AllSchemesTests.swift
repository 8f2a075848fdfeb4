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
        let scheme: String
        let verifySecret: String
        let signSecret: String
        var url: String? = nil
    }

    static func sources() -> [Source] {
        let sendgrid = P256PrivateKey()
        let discord = Ed25519PrivateKey()
        return [
            Source(scheme: "stripe", verifySecret: "whsec_s", signSecret: "whsec_s"),
            Source(scheme: "github", verifySecret: "g", signSecret: "g"),
            Source(scheme: "standard-webhooks", verifySecret: "whsec_c2VjcmV0", signSecret: "whsec_c2VjcmV0"),
            Source(scheme: "svix", verifySecret: "whsec_c2VjcmV0", signSecret: "whsec_c2VjcmV0"),
            Source(scheme: "slack", verifySecret: "sl", signSecret: "sl"),
            Source(scheme: "shopify", verifySecret: "sh", signSecret: "sh"),
            Source(scheme: "twilio", verifySecret: "tw", signSecret: "tw", url: "https://hooks.example.com/twilio"),
            Source(scheme: "paddle", verifySecret: "pd", signSecret: "pd"),
            Source(scheme: "square", verifySecret: "sq", signSecret: "sq", url: "https://hooks.example.com/square"),
            Source(scheme: "gitlab", verifySecret: "gl", signSecret: "gl"),
            Source(scheme: "linear", verifySecret: "ln", signSecret: "ln"),
            Source(scheme: "zoom", verifySecret: "zm", signSecret: "zm"),
            Source(
                scheme: "sendgrid", verifySecret: Base64.encode(Array(sendgrid.publicKey.derRepresentation)),
                signSecret: Base64.encode(Array(sendgrid.derRepresentation))),
            Source(
                scheme: "discord", verifySecret: Hex.encode(discord.publicKey.rawRepresentation),
                signSecret: Hex.encode(discord.seed)),
            Source(scheme: "none", verifySecret: "", signSecret: ""),
        ]
    }

    static func config(_ sources: [Source]) -> String {
        let entries = sources.map { source in
            let secrets = source.scheme == "none" ? "" : #", "secrets": ["\#(source.verifySecret)"]"#
            let url = source.url.map { #", "publicUrl": "\#($0)""# } ?? ""
            return
                #""\#(source.scheme)": {"path": "/\#(source.scheme)", "verify": {"scheme": "\#(source.scheme)"\#(secrets)\#(url)}, "sinks": ["archive"]}"#
        }
        return """
            {"listen": {"host": "127.0.0.1", "port": 0},
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
        return try await WebhookClient.send(
            host: "127.0.0.1", port: bridge.port, path: "/\(source.scheme)\(query)",
            headers: output.headers + [("Content-Type", contentType)], body: Array((tamper ? body + " " : body).utf8))
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
                let accepted = try await post(bridge, source, body: payload, id: "id-\(source.scheme)")
                #expect(accepted.status == .ok, "\(source.scheme): \(accepted.text)")
                #expect(accepted.json?["status"] == .string("accepted"), "\(source.scheme)")
                if source.scheme != "none" && source.scheme != "gitlab" {
                    let tampered = try await post(
                        bridge, source, body: body(for: source, n: 2), id: "t-\(source.scheme)", tamper: true)
                    #expect(tampered.status == .unauthorized, "\(source.scheme): \(tampered.text)")
                }
            }
            let lines = try bridge.lines("events.jsonl")
            #expect(lines.count == sources.count)
            #expect(Set(lines.compactMap { $0["source"]?.scalarText }) == Set(sources.map(\.scheme)))
            for line in lines {
                #expect(line["webhookscheme"] == line["source"])  // each source is named after its scheme
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
