import BridgeTestSupport
import Foundation
import NIOCore
import NIOHTTP1
import Synchronization
import Testing
import WebhookCore
import WebhookCrypto
import WebhookEncoding
import WebhookProviders

@testable import WebhookBridge

/// Asana's learned secret: the handshake's `X-Hook-Secret` echoed once it is kept, the
/// events checked with it, its window, and its file beside the spool surviving a restart.
/// No published vector: Asana's docs describe the handshake and the hex HMAC-SHA256 of the
/// body, which the requests here follow (the HMAC by WebhookCrypto's OpenSSL binding).
@Suite("Asana: a secret learned in the handshake, kept beside the spool")
struct AsanaTests {
    static let event =
        #"{"events":[{"user":{"gid":"1201","resource_type":"user"},"created_at":"2026-12-04T10:00:00.000Z","action":"changed","resource":{"gid":"1209","resource_type":"task","resource_subtype":"default_task"},"parent":null,"change":{"field":"completed","action":"changed"}}]}"#

    static func config(spool: String, verify: String = "") -> String {
        """
        {"listen": {"host": "127.0.0.1", "port": 0},
         "spool": {"directory": "\(spool)"},
         "sinks": {"archive": {"type": "file", "path": "{dir}/events.jsonl"}},
         "sources": {"asana": {"path": "/asana", "verify": {"scheme": "asana"\(verify)}, "sinks": ["archive"]}}}
        """
    }

    static func signed(_ body: String, secret: String) -> [(String, String)] {
        let mac = HashAlgorithm.sha256.authenticationCode(for: Array(body.utf8), using: Array(secret.utf8))
        return [("Content-Type", "application/json; charset=UTF-8"), ("X-Hook-Signature", Hex.encode(mac))]
    }

    static func handshake(_ bridge: RunningBridge, _ secret: String) async throws -> WebhookClient.Response {
        try await bridge.post("/asana", headers: [("X-Hook-Secret", secret)], body: "")
    }

    @Test(
        "the handshake is echoed once the secret is in a 0600 file; events signed with it land as task.changed, a heartbeat is not forwarded, a second handshake is refused but the first repeated is echoed; after a restart the secret still verifies"
    )
    func learnsAndKeeps() async throws {
        let spool = TemporaryDirectory()
        defer { spool.cleanup() }
        let secret = "b537207f20cbfa02357cf448134da559e8bd39d61597dcd5631b8012eae53e81"
        try await RunningBridge.with(config: Self.config(spool: spool.path)) { bridge in
            // Before any handshake nothing verifies.
            let early = try await bridge.post("/asana", headers: Self.signed(Self.event, secret: secret), body: Self.event)
            #expect(early.status == .unauthorized)

            let first = try await Self.handshake(bridge, secret)
            #expect(first.status == .ok, "\(first.text)")
            #expect(first.headers.first(name: "X-Hook-Secret") == secret)
            let file = spool.file("learned-secrets.json")
            let attributes = try FileManager.default.attributesOfItem(atPath: file)
            #expect((attributes[.posixPermissions] as? Int) == 0o600)
            #expect(
                try JSONParser.parse(Array(Data(contentsOf: URL(fileURLWithPath: file))))["asana"] == .array([.string(secret)]))

            let event = try await bridge.post("/asana", headers: Self.signed(Self.event, secret: secret), body: Self.event)
            #expect(event.status == .ok, "\(event.text)")
            let heartbeat = #"{"events":[]}"#
            let beat = try await bridge.post("/asana", headers: Self.signed(heartbeat, secret: secret), body: heartbeat)
            #expect(beat.status == .ok)
            let forged = try await bridge.post(
                "/asana", headers: Self.signed(Self.event + " ", secret: "guess"), body: Self.event + " ")
            #expect(forged.json == .object([("error", .string("signature_invalid"))]))

            let second = try await Self.handshake(bridge, "another-secret-0123456789")
            #expect(second.status == .unauthorized)
            #expect(second.headers.first(name: "X-Hook-Secret") == nil)
            let repeated = try await Self.handshake(bridge, secret)
            #expect(repeated.status == .ok)
            #expect(repeated.headers.first(name: "X-Hook-Secret") == secret)

            let lines = try bridge.lines("events.jsonl")
            #expect(lines.count == 1)
            #expect(lines.first?["type"] == .string("task.changed"))
            #expect(lines.first?["webhookscheme"] == .string("asana"))
        }
        // A new process on the same spool: the secret is still there, and the window still shut.
        try await RunningBridge.with(config: Self.config(spool: spool.path)) { bridge in
            let body = Self.event.replacingOccurrences(of: "1209", with: "1210")
            let event = try await bridge.post("/asana", headers: Self.signed(body, secret: secret), body: body)
            #expect(event.status == .ok, "\(event.text)")
            let second = try await Self.handshake(bridge, "another-secret-0123456789")
            #expect(second.status == .unauthorized)
        }
    }

    @Test("acceptHandshakeUntil in the past refuses the first handshake; acceptHandshakes 2 takes two secrets, both verify")
    func windows() async throws {
        let spool = TemporaryDirectory()
        defer { spool.cleanup() }
        try await RunningBridge.with(
            config: Self.config(spool: spool.path, verify: #", "acceptHandshakeUntil": "2026-01-01T00:00:00Z""#)
        ) { bridge in
            let late = try await Self.handshake(bridge, "late-secret-0123456789")
            #expect(late.json == .object([("error", .string("signature_invalid"))]))
            #expect(!FileManager.default.fileExists(atPath: spool.file("learned-secrets.json")))
        }
        try await RunningBridge.with(config: Self.config(spool: spool.path, verify: #", "acceptHandshakes": 2"#)) {
            bridge throws in
            for secret in ["first-secret-0123456789", "second-secret-0123456789"] {
                #expect(try await Self.handshake(bridge, secret).status == .ok)
            }
            #expect(try await Self.handshake(bridge, "third-secret-0123456789").status == .unauthorized)
            for (index, secret) in ["first-secret-0123456789", "second-secret-0123456789"].enumerated() {
                let body = Self.event.replacingOccurrences(of: "1209", with: "13\(index)")
                #expect(try await bridge.post("/asana", headers: Self.signed(body, secret: secret), body: body).status == .ok)
            }
        }
    }

    @Test(
        "with the learned secrets' file unreadable, an event signed with a configured secret still lands; one signed otherwise is 503 (it may be a learned secret), never 401"
    )
    func configuredSecretWithoutTheStore() async throws {
        let spool = TemporaryDirectory()
        defer { spool.cleanup() }
        try FileManager.default.createDirectory(atPath: spool.path, withIntermediateDirectories: true)
        try Data("not json".utf8).write(to: URL(fileURLWithPath: spool.file("learned-secrets.json")))
        let config = Self.config(spool: spool.path, verify: #", "secrets": ["configured-secret-0123456789"]"#)
        try await RunningBridge.with(config: config) { bridge in
            let configured = try await bridge.post(
                "/asana", headers: Self.signed(Self.event, secret: "configured-secret-0123456789"), body: Self.event)
            #expect(configured.status == .ok, "\(configured.text)")
            let other = try await bridge.post(
                "/asana", headers: Self.signed(Self.event, secret: "another-secret-0123456789"), body: Self.event)
            #expect(other.status == .serviceUnavailable, "\(other.text)")
            #expect(try bridge.lines("events.jsonl").count == 1)
        }
    }

    @Test("an asana source needs somewhere to keep its secret: without a spool or the redis store the config names the path")
    func needsAStore() throws {
        let text = """
            {"sinks": {"a": {"type": "file", "path": "./x.jsonl"}},
             "sources": {"asana": {"path": "/asana", "verify": {"scheme": "asana"}, "sinks": ["a"]}}}
            """
        let error = #expect(throws: ConfigError.self) { try Bridge.loadConfig(Array(text.utf8), environment: [:]) }
        #expect(
            error?.problems.contains { $0.description.hasPrefix("sources.asana.verify.scheme: asana learns its secret") } == true,
            "\(String(describing: error))")
    }

    @Test(
        "webhook-bridge verify checks a captured asana event with the secret given (no store needed); another secret is signature_invalid"
    )
    func verifyCommand() throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let body = directory.file("body.json")
        try Data(Self.event.utf8).write(to: URL(fileURLWithPath: body))
        let signed = try CLI.run(["sign", "--scheme", "asana", "--secret", "learned-0123456789", "--body", body])
        #expect(signed.status == 0, "\(signed.stderr)")
        let headers = directory.file("headers.txt")
        try Data(signed.stdout.utf8).write(to: URL(fileURLWithPath: headers))
        let ok = try CLI.run([
            "verify", "--scheme", "asana", "--secret", "learned-0123456789", "--headers", headers, "--body", body,
        ])
        #expect(ok.status == 0, "\(ok.stdout)\(ok.stderr)")
        #expect(ok.stdout.contains("type: task.changed"), "\(ok.stdout)")
        let wrong = try CLI.run([
            "verify", "--scheme", "asana", "--secret", "other-0123456789", "--headers", headers, "--body", body,
        ])
        #expect(wrong.status == 1 && wrong.stdout.contains("not verified: signature_invalid"), "\(wrong.stdout)")
    }

    @Test(
        "two events that miss the held secrets at once, while another replica learns one: the one whose store read lands second still matches the new secret (its read is compared with what it matched, not with what the other just cached)"
    )
    func replicaLearnsWhileTwoEventsMiss() async throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        try FileManager.default.createDirectory(atPath: directory.path, withIntermediateDirectories: true)
        let file = FileLearnedSecretStore(path: directory.file("learned-secrets.json"))
        let gate = GatedSecretStore(file)
        let scheme = AsanaScheme(secrets: [], acceptUntil: nil, acceptCount: nil)
        let services = VerificationServices(learnedSecrets: gate).for("asana")
        func verify(_ body: String, secret: String) async -> String? {
            let request = WebhookRequest(
                headers: HTTPHeaders(Self.signed(body, secret: secret)), body: ByteBuffer(string: body), uri: "/asana",
                receivedAt: Timestamp(secondsSince1970: 1_790_000_000))
            do {
                _ = try await scheme.verify(request, services: services)
                return nil
            } catch {
                return error.code
            }
        }
        let secret = "learned-by-another-replica-0123456789"
        // This replica has read the store: nothing learned yet.
        #expect(await verify(Self.event, secret: secret) == "signature_invalid")
        // Another replica answers the handshake (the same store, written directly).
        #expect(try await file.learn(secret, for: "asana", limit: 1) == .learned)
        // R1, signed with the new secret, misses the cached keyring and stops in its store read.
        let entered = gate.arm()
        async let first = verify(Self.event, secret: secret)
        await entered.value
        // R2, a forged event, misses too: its read caches the new secret.
        #expect(await verify(Self.event + " ", secret: "guess") == "signature_invalid")
        gate.release()
        #expect(await first == nil, "the event signed with the learned secret was refused")
    }
}

/// The file store, with one read that can be held: it signals when that read starts and
/// goes on once released, so a test orders two verifications' reads of the store.
final class GatedSecretStore: LearnedSecretStore {
    let store: any LearnedSecretStore
    private let state = Mutex<(armed: Bool, held: CheckedContinuation<Void, Never>?, released: Bool)>((false, nil, false))
    private let enteredSignal = Mutex<AsyncStream<Void>.Continuation?>(nil)

    init(_ store: any LearnedSecretStore) { self.store = store }

    var location: String { store.location }

    /// The next read waits for ``release()``; the task returned ends when it has started.
    func arm() -> Task<Void, Never> {
        let (stream, continuation) = AsyncStream<Void>.makeStream()
        enteredSignal.withLock { $0 = continuation }
        state.withLock { $0.armed = true }
        return Task {
            for await _ in stream { return }
        }
    }

    func release() {
        let held = state.withLock { state -> CheckedContinuation<Void, Never>? in
            state.released = true
            defer { state.held = nil }
            return state.held
        }
        held?.resume()
    }

    func secrets(for source: String) async throws -> [String] {
        let gated = state.withLock { state -> Bool in
            defer { state.armed = false }
            return state.armed
        }
        if gated {
            await withCheckedContinuation { continuation in
                let resumeNow = state.withLock { state -> Bool in
                    if state.released { return true }
                    state.held = continuation
                    return false
                }
                enteredSignal.withLock {
                    $0?.yield(); $0?.finish()
                }
                if resumeNow { continuation.resume() }
            }
        }
        return try await store.secrets(for: source)
    }

    func learn(_ secret: String, for source: String, limit: Int?) async throws -> LearnOutcome {
        try await store.learn(secret, for: source, limit: limit)
    }
}
