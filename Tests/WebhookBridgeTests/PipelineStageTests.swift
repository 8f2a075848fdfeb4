import BridgeTestSupport
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import Spool
import Testing
import WebhookCore
import WebhookEncoding
import WebhookProviders

@testable import WebhookBridge

/// The request path's stages one at a time, each with real parts (a config read as the bridge
/// reads it, the memory idempotency store, the file sink and the spool on real files).
@Suite("Pipeline stages: verify, event, dedupe, deliver")
struct PipelineStageTests {
    static let quiet = Logger(label: "stage-tests") { _ in SwiftLogNoOpLogHandler() }
    let log = PipelineLog(logger: quiet)

    /// The source at `/gh` of a config with `verify` and the file sinks of `directory`.
    func source(
        verify: String = #"{"scheme": "github", "secrets": ["gh-secret"]}"#, extra: String = "", sinks: String = #"["archive"]"#,
        directory: String = "/nonexistent"
    ) throws -> (ConfiguredSource, BridgeConfig) {
        let text = """
            {"sinks": {"archive": {"type": "file", "path": "\(directory)/archive-{header:X-Tenant}.jsonl"},
                       "other": {"type": "file", "path": "\(directory)/blocked/{type}.jsonl"}},
             "sources": {"gh": {"path": "/gh", "verify": \(verify), "sinks": \(sinks)\(extra)}}}
            """
        let config = try Bridge.loadConfig(Array(text.utf8), environment: [:])
        return (try #require(SourceTable(config).source(atPath: "/gh")), config)
    }

    func request(_ body: String, delivery: String, secret: String = "gh-secret", extra: [(String, String)] = []) -> WebhookRequest
    {
        var headers = HTTPHeaders(
            [
                ("X-Hub-Signature-256", githubSignature(body, secret: secret)), ("X-GitHub-Delivery", delivery),
                ("X-GitHub-Event", "push"),
            ])
        headers.add(contentsOf: extra)
        return WebhookRequest(
            headers: headers, body: ByteBuffer(string: body), uri: "/gh", receivedAt: .now(), client: "192.0.2.1")
    }

    func verify(_ source: ConfiguredSource, _ request: WebhookRequest) async -> VerifyStage.Outcome {
        let stage = VerifyStage(services: VerificationServices(), confirmer: SubscriptionConfirmer(fetcher: nil), log: log)
        return await stage.run(source, request, trace: .none, logger: log.request(source: source.name, headers: request.headers))
    }

    @Test("verify: a signed request verifies; a forged one is 401; once verified requests spend the rate limit, 429")
    func verifyStage() async throws {
        let (source, _) = try source(extra: #", "rateLimit": {"perSecond": 0.001, "burst": 1}"#)
        guard case .verified(let verified) = await verify(source, request(#"{"a":1}"#, delivery: "d-1")) else {
            Issue.record("a signed request did not verify")
            return
        }
        #expect(verified.id == "d-1" && verified.type == "push" && verified.keyIndex == 0)
        guard case .answered(let forged) = await verify(source, request(#"{"a":1}"#, delivery: "d-2", secret: "guess")) else {
            Issue.record("a forged request verified")
            return
        }
        #expect(forged.status == .unauthorized)
        #expect(forged.body == Array(#"{"error":"signature_invalid"}"#.utf8))
        // The forgery spent its client's bucket, not the source's: a signed request still had
        // the source's one token until it took it.
        guard case .answered(let limited) = await verify(source, request(#"{"a":2}"#, delivery: "d-3")) else {
            Issue.record("the second verified request was not rate limited")
            return
        }
        #expect(limited.status == .tooManyRequests)
    }

    @Test("verify: a signed handshake is answered here and goes no further")
    func verifyHandshake() async throws {
        let (source, _) = try source(verify: #"{"scheme": "slack", "secrets": ["sl"]}"#)
        let body = #"{"type":"url_verification","challenge":"ch-1"}"#
        let signed = try WebhookSigner.sign(
            scheme: "slack", .init(body: Array(body.utf8), secret: "sl", timestamp: Timestamp.now().secondsSince1970))
        let request = WebhookRequest(
            headers: HTTPHeaders(signed.headers), body: ByteBuffer(string: body), uri: "/gh", receivedAt: .now())
        guard case .answered(let answer) = await verify(source, request) else {
            Issue.record("the handshake was not answered")
            return
        }
        #expect(answer.status == .ok)
        #expect(answer.body == Array(#"{"challenge":"ch-1"}"#.utf8))
    }

    @Test("event: the provider's id and type, else the body's hash and webhook; only the headers templates read")
    func eventStage() throws {
        let (source, _) = try source()
        #expect(source.templateHeaders == ["X-Tenant"])
        let event = WebhookProcessor.event(
            VerifiedWebhook(id: "d-1", type: "push", keyIndex: 1),
            request(#"{"a":1}"#, delivery: "d-1", extra: [("x-tenant", "acme"), ("Content-Type", "application/json")]),
            source: source)
        #expect(event.id == "d-1" && event.type == "push" && event.keyIndex == 1 && event.source == "gh")
        #expect(event.dataContentType == "application/json")
        #expect(event.requestHeaders.first(name: "X-Tenant") == "acme")
        #expect(event.requestHeaders.first(name: "X-GitHub-Delivery") == nil)
        let anonymous = WebhookProcessor.event(
            VerifiedWebhook(id: nil, type: nil, keyIndex: 0), request("{}", delivery: "ignored"), source: source)
        #expect(anonymous.id == bodyHashID(ByteBuffer(string: "{}")))
        #expect(anonymous.type == "webhook")
    }

    func event(_ id: String) -> WebhookEvent {
        WebhookEvent(
            id: id, source: "gh", type: "push", time: .now(), dataContentType: "application/json", scheme: "github", keyIndex: 0,
            data: ByteBuffer(string: #"{"n":1}"#), requestHeaders: ["X-Tenant": "acme"])
    }

    func dedupe(_ stage: DedupeStage, _ event: WebhookEvent, token: String? = nil, source: ConfiguredSource) async
        -> DedupeStage.Outcome
    {
        await stage.run(
            event, singleUseToken: token, source: source, headers: [:], client: nil, trace: .none,
            logger: log.request(source: "gh", headers: [:]))
    }

    @Test("dedupe: new, duplicate after commit, in progress before it, free again after a release")
    func dedupeStage() async throws {
        let (source, _) = try source()
        let stage = DedupeStage(store: MemoryIdempotencyStore(ttlSeconds: 3600, maximumKeys: 100), log: log)
        guard case .reserved(let first) = await dedupe(stage, event("e-1"), source: source) else {
            Issue.record("a new id was not reserved")
            return
        }
        guard case .answered(let busy) = await dedupe(stage, event("e-1"), source: source) else {
            Issue.record("an id being processed was reserved twice")
            return
        }
        #expect(busy.status == .conflict)
        await first.release()
        guard case .reserved(let again) = await dedupe(stage, event("e-1"), source: source) else {
            Issue.record("a released id was not free again")
            return
        }
        await again.commit(logger: log.request(source: "gh", headers: [:]))
        guard case .duplicate = await dedupe(stage, event("e-1"), source: source) else {
            Issue.record("a committed id was reserved again")
            return
        }
    }

    @Test("dedupe: a single-use token carries one event; reused by another, 401, and that event's id is freed")
    func dedupeToken() async throws {
        let (source, _) = try source()
        let stage = DedupeStage(store: MemoryIdempotencyStore(ttlSeconds: 3600, maximumKeys: 100), log: log)
        guard case .reserved(let first) = await dedupe(stage, event("e-1"), token: "tok", source: source) else {
            Issue.record("the first use of a token was refused")
            return
        }
        await first.commit(logger: log.request(source: "gh", headers: [:]))
        guard case .answered(let reused) = await dedupe(stage, event("e-2"), token: "tok", source: source) else {
            Issue.record("a reused token was accepted")
            return
        }
        #expect(reused.status == .unauthorized)
        guard case .reserved = await dedupe(stage, event("e-2"), token: "fresh", source: source) else {
            Issue.record("the refused event's id stayed reserved")
            return
        }
    }

    func deliverStage(_ config: BridgeConfig, spool: Spool?) throws -> DeliverStage {
        var sinks: [String: any EventSink] = [:]
        for sink in config.sinks.values {
            sinks[sink.name] = try Bridge.makeSink(
                sink, context: SinkContext(ackTimeoutMs: 5000, logger: Self.quiet, shared: SharedClients()))
        }
        return DeliverStage(sinks: sinks, requiredSinks: Set(sinks.keys), spool: spool, ackTimeoutMs: 5000, log: log)
    }

    @Test("deliver: the routed sink's acknowledgement is delivered; a sink that refuses for good is unavailable without a spool")
    func deliverDirect() async throws {
        let directory = TemporaryDirectory()
        let (source, config) = try source(sinks: #"["archive"]"#, directory: directory.path)
        let stage = try deliverStage(config, spool: nil)
        let logger = log.request(source: "gh", headers: [:])
        #expect(
            await stage.run(event("e-1"), to: source.config.routes.sinks(forType: "t"), on: .shared, trace: .none, logger: logger) == .delivered)
        let line = try String(contentsOfFile: directory.file("archive-acme.jsonl"), encoding: .utf8)
        #expect(try JSONParser.parse(Array(line.utf8))["id"] == .string("e-1"))

        try Data().write(to: URL(fileURLWithPath: directory.file("blocked")))  // a file where a directory should be
        let (failing, _) = try self.source(sinks: #"["other"]"#, directory: directory.path)
        #expect(
            await stage.run(event("e-2"), to: failing.config.routes.sinks(forType: "t"), on: .shared, trace: .none, logger: logger)
                == .unavailable)
    }

    @Test("deliver: with a spool, a refused event is dead-lettered and a sink with a backlog gets the event behind it")
    func deliverSpooled() async throws {
        let directory = TemporaryDirectory()
        let (source, config) = try source(sinks: #"["archive", "other"]"#, directory: directory.path)
        try Data().write(to: URL(fileURLWithPath: directory.file("blocked")))
        let spool = try Spool(
            directory: directory.file("spool"), maxBytes: 1 << 20, sinks: ["archive": [], "other": []], logger: Self.quiet)
        let stage = try deliverStage(config, spool: spool)
        let logger = log.request(source: "gh", headers: [:])
        #expect(await stage.run(event("e-1"), to: source.config.routes.sinks(forType: "t"), on: .shared, trace: .none, logger: logger) == .queued)
        let deadLetters = try String(contentsOfFile: directory.file("spool/dead-letter.jsonl"), encoding: .utf8)
        #expect(deadLetters.contains(#""id":"e-1""#))
        #expect(!spool.hasBacklog(for: "archive"))

        try await spool.append(event("e-0"), for: "archive")
        let (archiveOnly, _) = try self.source(sinks: #"["archive"]"#, directory: directory.path)
        #expect(
            await stage.run(event("e-2"), to: archiveOnly.config.routes.sinks(forType: "t"), on: .shared, trace: .none, logger: logger) == .queued
        )
        // Behind the backlog: in the spool, after e-0, not in the file yet.
        let archived = try String(contentsOfFile: directory.file("archive-acme.jsonl"), encoding: .utf8)
        #expect(!archived.contains(#""id":"e-2""#))
        #expect(spool.backlogBytes(for: "archive") > 0)
    }
}
