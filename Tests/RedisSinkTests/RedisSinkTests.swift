import BridgeTestSupport
import Foundation
import Logging
import NIOCore
import RedisSink
import ServiceLifecycle
import Testing
import WebhookBridge
import WebhookCore

func quietLogger() -> Logger {
    var logger = Logger(label: "test")
    logger.logLevel = .critical
    return logger
}

func redisEvent(_ id: String, source: String = "shop", body: String? = nil) -> WebhookEvent {
    WebhookEvent(
        id: id, source: source, type: "orders/create", time: Timestamp(millisecondsSince1970: 1_764_424_800_123),
        dataContentType: "application/json", scheme: "shopify", keyIndex: 0,
        data: ByteBuffer(string: body ?? #"{"order": "\#(id)", "bytes": "\u{00e9}\u{0000}"}"#))
}

/// Reads a whole stream with a consumer group, as a job system would.
func readWithGroup(_ client: RedisClient, stream: String) async throws -> [[String: [UInt8]]] {
    _ = try await client.execute("XGROUP", "CREATE", stream, "workers", "0")
    let reply = try await client.execute("XREADGROUP", "GROUP", "workers", "w1", "COUNT", "100000", "STREAMS", stream, ">")
    guard case .array(let streams) = reply, case .array(let pair)? = streams.first, case .array(let entries) = pair[1] else {
        return []
    }
    return entries.compactMap { entry in
        guard case .array(let parts) = entry, case .array(let fields) = parts[1] else { return nil }
        var result: [String: [UInt8]] = [:]
        var index = 0
        while index + 1 < fields.count {
            if case .string(let name) = fields[index], case .string(let value) = fields[index + 1] {
                result[String(decoding: name, as: UTF8.self)] = value
            }
            index += 2
        }
        return result
    }
}

func withClient<T>(_ url: String, timeoutMilliseconds: Int = 2000, _ body: (RedisClient) async throws -> T) async throws -> T {
    let client = try RedisClient(
        endpoint: try RedisEndpoint(url: url), timeoutMilliseconds: timeoutMilliseconds, logger: quietLogger())
    let group = ServiceGroup(services: [client], logger: quietLogger())
    let task = Task { try await group.run() }
    defer { task.cancel() }
    let result = try await body(client)
    await group.triggerGracefulShutdown()
    try await task.value
    return result
}

@Suite("Redis Streams sink and idempotency store on a real redis-server", .serialized)
struct RedisSinkTests {
    @Test("redis:// URLs: host, port, credentials, database")
    func urls() throws {
        let full = try RedisEndpoint(url: "redis://user:s3cret@cache.internal:6380/3")
        #expect(full.address == .tcp(host: "cache.internal", port: 6380))
        #expect(full.username == "user" && full.password == "s3cret" && full.database == 3)
        #expect(!full.display.contains("s3cret"))
        #expect(try RedisEndpoint(url: "redis://:pw@[::1]").address == .tcp(host: "::1", port: 6379))
        #expect(try RedisEndpoint(url: "unix:///run/redis.sock?db=2").database == 2)
        #expect(throws: RedisURLError.self) { try RedisEndpoint(url: "redis://host:port") }
    }

    @Test("N concurrent events give N stream entries whose fields and bytes match; a consumer group reads them")
    func concurrentEntries() async throws {
        let server = try RedisServer()
        defer { server.stop() }
        try await withClient(server.url) { client in
            let sink = RedisStreamSink(
                name: "jobs", client: client, stream: try Template(parsing: "webhooks:{source}"), maxLength: nil)
            let count = 200
            let receipts = try await withThrowingTaskGroup(of: DeliveryReceipt.self) { group in
                for index in 0..<count { group.addTask { try await sink.deliver(redisEvent("o-\(index)")) } }
                return try await group.reduce(into: [DeliveryReceipt]()) { $0.append($1) }
            }
            #expect(Set(receipts.map(\.position)).count == count)
            #expect(try await client.execute("XLEN", "webhooks:shop") == .integer(Int64(count)))
            let entries = try await readWithGroup(client, stream: "webhooks:shop")
            #expect(entries.count == count)
            for entry in entries {
                let id = String(decoding: entry["id"] ?? [], as: UTF8.self)
                #expect(entry["data"] == Array(redisEvent(id).data.readableBytesView))
                #expect(entry["specversion"] == Array("1.0".utf8))
                #expect(entry["source"] == Array("shop".utf8))
                #expect(entry["type"] == Array("orders/create".utf8))
                #expect(entry["time"] == Array("2025-11-29T14:00:00.123Z".utf8))
                #expect(entry["datacontenttype"] == Array("application/json".utf8))
                #expect(entry["webhookscheme"] == Array("shopify".utf8))
                #expect(entry["webhookkey"] == Array("0".utf8))
            }
        }
    }

    @Test("maxLength trims the stream approximately; a key of the wrong type is rejected for good")
    func trimAndWrongType() async throws {
        let server = try RedisServer()
        defer { server.stop() }
        try await withClient(server.url) { client in
            let sink = RedisStreamSink(name: "jobs", client: client, stream: try Template(parsing: "capped"), maxLength: 10)
            for index in 0..<500 { _ = try await sink.deliver(redisEvent("c-\(index)")) }
            guard case .integer(let length) = try await client.execute("XLEN", "capped") else { Issue.record("no XLEN"); return }
            #expect(length < 500 && length >= 10)
            _ = try await client.execute("SET", "plain", "x")
            let wrong = RedisStreamSink(name: "jobs", client: client, stream: try Template(parsing: "plain"), maxLength: nil)
            await #expect { _ = try await wrong.deliver(redisEvent("w")) } throws: { ($0 as? SinkError)?.isPermanent == true }
        }
    }

    @Test("an error reply that lasts only a while (OOM) is a failure to retry, not a rejection for good")
    func transientErrorReply() async throws {
        let server = try RedisServer()
        defer { server.stop() }
        try await withClient(server.url) { client in
            let sink = RedisStreamSink(name: "jobs", client: client, stream: try Template(parsing: "s"), maxLength: nil)
            // A real server out of memory under noeviction refuses writes with -OOM.
            _ = try await client.execute("CONFIG", "SET", "maxmemory-policy", "noeviction")
            _ = try await client.execute("CONFIG", "SET", "maxmemory", "1")
            await #expect {
                _ = try await sink.deliver(redisEvent("oom"))
            } throws: { error in
                guard let error = error as? SinkError else { return false }
                return !error.isPermanent && error.reason.contains("OOM")
            }
            _ = try await client.execute("CONFIG", "SET", "maxmemory", "0")
            _ = try await sink.deliver(redisEvent("oom"))
            guard case .integer(let length) = try await client.execute("XLEN", "s") else { Issue.record("no XLEN"); return }
            #expect(length == 1)
        }
    }

    @Test("a server that stops answering: the command fails after the timeout, as retryable; the client recovers")
    func commandTimeout() async throws {
        let server = try RedisServer()
        defer { server.stop() }
        try await withClient(server.url, timeoutMilliseconds: 300) { client in
            let sink = RedisStreamSink(name: "jobs", client: client, stream: try Template(parsing: "s"), maxLength: nil)
            _ = try await sink.deliver(redisEvent("before"))
            // Redis holds every client's commands for 1.5 s (the PAUSE itself is answered).
            #expect(try await client.execute("CLIENT", "PAUSE", "1500", "ALL") == .status("OK"))
            let started = ContinuousClock.now
            await #expect {
                _ = try await sink.deliver(redisEvent("paused"))
            } throws: { error in
                guard let error = error as? SinkError else { return false }
                return !error.isPermanent && error.reason.contains("no reply within 300 ms")
            }
            // Before the pause ended, so by the client's timeout (the reason says so), not by
            // a late answer; judged against the pause, which a loaded machine can't make short.
            #expect(ContinuousClock.now - started < .milliseconds(1500))
            try await Task.sleep(for: .milliseconds(1600))
            // The connection was closed; a new one (after at most a short backoff) delivers.
            var delivered = false
            for _ in 0..<50 where !delivered {
                delivered = (try? await sink.deliver(redisEvent("after"))) != nil
                if !delivered { try await Task.sleep(for: .milliseconds(100)) }
            }
            #expect(delivered)
            #expect(client.isReachable)
        }
    }

    @Test("a password-protected Redis: AUTH (password, or ACL user and password) is sent first; a wrong one fails clearly")
    func authentication() async throws {
        let server = try RedisServer()
        defer { server.stop() }
        try await withClient(server.url) { client async throws in
            #expect(try await client.execute("ACL", "SETUSER", "bridge", "on", ">u-s3cret", "~*", "+@all") == .status("OK"))
            #expect(try await client.execute("CONFIG", "SET", "requirepass", "s3cret") == .status("OK"))
        }
        let base = "127.0.0.1:\(server.port)/0"
        for url in ["redis://:s3cret@\(base)", "redis://bridge:u-s3cret@\(base)"] {
            try await withClient(url) { client async throws in
                #expect(try await client.execute("PING") == .status("PONG"), "\(url)")
            }
        }
        try await withClient("redis://:wrong@\(base)") { client in
            await #expect {
                _ = try await client.execute("PING")
            } throws: { error in
                error is RedisClient.Failure && "\(error)".contains("WRONGPASS")
            }
            #expect(!client.isReachable)
        }
        // Without a password, the command itself is refused: an error reply.
        try await withClient("redis://\(base)") { client in
            guard case .error(let message) = try await client.execute("PING") else { Issue.record("PING answered"); return }
            #expect(message.hasPrefix("NOAUTH"))
        }
    }

    @Test(
        "the idempotency store: one reservation wins, commit makes duplicates, release frees, the committed key carries the TTL")
    func store() async throws {
        let server = try RedisServer()
        defer { server.stop() }
        try await withClient(server.url) { client in
            let store = RedisIdempotencyStore(client: client, ttlSeconds: 60, reservationMilliseconds: 30_000)
            let key = IdempotencyKey(source: "shop", id: "e-1")
            let outcomes = try await withThrowingTaskGroup(of: ReservationOutcome.self) { group in
                for _ in 0..<50 { group.addTask { try await store.reserve(key) } }
                return try await group.reduce(into: [ReservationOutcome]()) { $0.append($1) }
            }
            #expect(outcomes.filter { $0 == .reserved }.count == 1)
            #expect(outcomes.filter { $0 == .inProgress }.count == 49)
            await store.release(key)
            #expect(try await store.reserve(key) == .reserved)
            try await store.commit(key)
            #expect(try await store.reserve(key) == .duplicate)
            // Scoped per source.
            #expect(try await store.reserve(IdempotencyKey(source: "other", id: "e-1")) == .reserved)
            // The TTL is Redis's own: the key is gone once it passes. It was 1 s, and a loaded
            // machine could pass it before PTTL asked (-2: no key); 60 s can't pass unnoticed.
            guard case .integer(let ttl) = try await client.execute("PTTL", "webhook-bridge:idempotency:4:shop:e-1") else {
                Issue.record("no PTTL")
                return
            }
            #expect(ttl > 50_000 && ttl <= 60_000, "\(ttl)")
        }
    }
}
