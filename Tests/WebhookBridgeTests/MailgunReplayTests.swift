import BridgeTestSupport
import Foundation
import Testing
import WebhookCore
import WebhookProviders

/// Mailgun signs a timestamp and a token, not the event: the token is single-use, claimed in
/// the idempotency store beside the event's id.
@Suite("Mailgun: a signature's token is used once, across reloads")
struct MailgunReplayTests {
    /// A Mailgun JSON body for `id`, signed with `secret` by the bridge's own signer.
    static func signed(id: String, secret: String = "key-signing") throws -> String {
        let body = #"{"event-data": {"id": "\#(id)", "event": "delivered"}}"#
        let output = try WebhookSigner.sign(
            scheme: "mailgun", .init(body: Array(body.utf8), secret: secret, timestamp: Int64(Date().timeIntervalSince1970)))
        return String(decoding: try #require(output.body), as: UTF8.self)
    }

    @Test("a captured signature block on another event is refused 401, also after a SIGHUP reload; the first event's retry is a duplicate")
    func tokenUsedOnce() throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let port = try RedisServer.freePort()
        let config = try writeConfig(
            """
            {"listen": {"host": "127.0.0.1", "port": \(port)},
             "sinks": {"archive": {"type": "file", "path": "\(directory.file("events.jsonl"))"}},
             "sources": {"mg": {"path": "/mg", "verify": {"scheme": "mailgun", "secrets": ["key-signing"]}, "sinks": ["archive"]}}}
            """, in: directory)
        let server = try BridgeProcess(config: config)
        defer { server.kill9() }
        let connection = try KeepAliveConnection(port: port)
        let json = [("Content-Type", "application/json")]
        let first = try Self.signed(id: "ev-1")
        #expect(try connection.post("/mg", headers: json, body: first).status == 200)
        // The same signature block (timestamp, token, signature) carrying another event.
        let replay = first.replacingOccurrences(of: "\"ev-1\"", with: "\"ev-forged\"")
        #expect(replay != first)
        let refused = try connection.post("/mg", headers: json, body: replay)
        #expect(refused.status == 401 && refused.body.contains("signature_invalid"), "\(refused)")
        // A reload builds the schemes anew; the claimed token is in the store, not in them.
        #expect(server.reload(), "\(server.logText)")
        let afterReload = try connection.post("/mg", headers: json, body: replay)
        #expect(afterReload.status == 401, "\(afterReload)")
        // The provider's own retry of the accepted event: a duplicate, as for any provider.
        let retry = try connection.post("/mg", headers: json, body: first)
        #expect(retry.status == 200 && retry.body.contains("duplicate"), "\(retry)")
        // A fresh signature is a fresh token.
        #expect(try connection.post("/mg", headers: json, body: try Self.signed(id: "ev-2")).status == 200)
        let lines = try String(contentsOfFile: directory.file("events.jsonl"), encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 2 && !lines.contains { $0.contains("ev-forged") }, "\(lines)")
    }

    @Test("a token whose delivery failed (503, no spool) is released: the provider's retry of the same signed body is accepted")
    func failedDeliveryReleasesToken() throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        // A file where the sink's folder should be: every write fails until it is removed.
        let blocker = directory.file("out")
        #expect(FileManager.default.createFile(atPath: blocker, contents: Data()))
        let port = try RedisServer.freePort()
        let config = try writeConfig(
            """
            {"listen": {"host": "127.0.0.1", "port": \(port)},
             "sinks": {"archive": {"type": "file", "path": "\(blocker)/{source}.jsonl"}},
             "sources": {"mg": {"path": "/mg", "verify": {"scheme": "mailgun", "secrets": ["key-signing"]}, "sinks": ["archive"]}}}
            """, in: directory)
        let server = try BridgeProcess(config: config)
        defer { server.kill9() }
        let connection = try KeepAliveConnection(port: port)
        let json = [("Content-Type", "application/json")]
        let signed = try Self.signed(id: "ev-retry")
        let failed = try connection.post("/mg", headers: json, body: signed)
        #expect(failed.status == 503, "\(failed)")
        try FileManager.default.removeItem(atPath: blocker)
        let retried = try connection.post("/mg", headers: json, body: signed)
        #expect(retried.status == 200 && retried.body.contains("accepted"), "\(retried)")
        #expect(try String(contentsOfFile: blocker + "/mg.jsonl", encoding: .utf8).contains("ev-retry"))
    }
}
