import BridgeTestSupport
import Foundation
import RedisSink
import Testing
import WebhookBridge
import WebhookCore

/// A redis-server on its TLS port with certificates of its own (see ``TestCertificates``),
/// both gone when `body` returns.
func withTLSServer<T>(
    clientCertificates: Bool = false, serverNames: String = "DNS:localhost,IP:127.0.0.1",
    _ body: (RedisServer, TestCertificates) async throws -> T
) async throws -> T {
    let certificates = try TestCertificates(serverNames: serverNames)
    defer { certificates.cleanup() }
    let server = try RedisServer(tls: certificates, clientCertificates: clientCertificates)
    defer { server.stop() }
    return try await body(server, certificates)
}

/// `rediss://` against Debian's redis-server on its TLS port, with a CA and certificates the
/// test makes with openssl.
@Suite("Redis over TLS (rediss://)", .serialized)
struct RedisTLSTests {
    @Test("rediss:// URLs: ca, cert and key; what is wrong is named; verification can't be turned off")
    func urls() throws {
        let endpoint = try RedisEndpoint(url: "rediss://:pw@cache.internal:6380/2?ca=/etc/ca%20dir/ca.pem&cert=/c.pem&key=/c.key")
        #expect(endpoint.address == .tcp(host: "cache.internal", port: 6380))
        #expect(endpoint.password == "pw" && endpoint.database == 2)
        #expect(endpoint.tls == .init(caFile: "/etc/ca dir/ca.pem", certificateFile: "/c.pem", keyFile: "/c.key"))
        #expect(endpoint.display == "rediss://cache.internal:6380/2")
        #expect(try RedisEndpoint(url: "rediss://cache").tls == .init())
        #expect(try RedisEndpoint(url: "redis://cache").tls == nil)
        // A password may hold ? and /; the options start after the credentials.
        #expect(try RedisEndpoint(url: "rediss://u:a?b/c@cache:1?ca=/ca.pem").password == "a?b/c")

        func message(_ url: String) -> String {
            do {
                _ = try RedisEndpoint(url: url)
                return "parsed"
            } catch {
                return error.description
            }
        }
        #expect(message("redis://cache?ca=/ca.pem") == "redis:// takes no options (ca, cert and key are for rediss://)")
        #expect(message("rediss://cache?cert=/c.pem") == "cert and key go together: the client certificate and its private key")
        #expect(message("rediss://cache?insecure=true").contains("ca=/path/ca.pem"))
        #expect(message("rediss://cache?sni=x") == "unknown option sni (rediss:// takes ca, cert, key)")
        #expect(message("rediss://cache?ca=") == "ca needs a value")
        #expect(message("rediss://cache?ca=/a&ca=/b") == "ca is given twice")
        #expect(message("unix:///run/redis.sock?tls=1") == "unknown option tls (unix:// takes db)")

        // Unreadable files are a config problem, with the option named.
        #expect(try RedisEndpoint(url: "rediss://cache?ca=/nonexistent/ca.pem").problems() == ["ca: cannot read /nonexistent/ca.pem"])
        let config = """
            {"sinks": {"jobs": {"type": "redis", "url": "rediss://cache?ca=/nonexistent/ca.pem", "stream": "s"}},
             "sources": {"s": {"path": "/s", "verify": {"scheme": "github", "secrets": ["x"]}, "sinks": ["jobs"]}}}
            """
        #expect(throws: ConfigError.self) { try Bridge.loadConfig(Array(config.utf8), environment: [:]) }
        do {
            _ = try Bridge.loadConfig(Array(config.utf8), environment: [:])
        } catch {
            #expect(error.problems.map(\.description) == ["sinks.jobs.url: ca: cannot read /nonexistent/ca.pem"])
        }
    }

    @Test("the stream sink XADDs over rediss://; the entries read back over TLS hold the events")
    func streamSink() async throws {
        try await withTLSServer { server, _ in
            try await withClient(server.url) { client in
                let sink = RedisStreamSink(
                    name: "jobs", client: client, stream: try Template(parsing: "webhooks:{source}"), maxLength: nil)
                let receipts = try await withThrowingTaskGroup(of: DeliveryReceipt.self) { group in
                    for index in 0..<50 { group.addTask { try await sink.deliver(redisEvent("t-\(index)")) } }
                    return try await group.reduce(into: [DeliveryReceipt]()) { $0.append($1) }
                }
                #expect(Set(receipts.map(\.position)).count == 50)
                #expect(sink.isReady)
            }
            // Read back by clients of their own, over TLS too.
            let ids = try await RedisClientForTest(url: server.url).streamIDs("webhooks:shop")
            #expect(Set(ids) == Set((0..<50).map { "t-\($0)" }))
            let entries = try await withClient(server.url) { try await readWithGroup($0, stream: "webhooks:shop") }
            #expect(entries.count == 50)
            for entry in entries {
                let id = String(decoding: entry["id"] ?? [], as: UTF8.self)
                #expect(entry["data"] == Array(redisEvent(id).data.readableBytesView))
            }
        }
    }

    @Test("the idempotency store over rediss://, by host name (SNI and the certificate's DNS name)")
    func store() async throws {
        try await withTLSServer { server, certificates in
            // localhost may resolve to ::1 first, where nothing listens: the client tries the next address.
            try await withClient("rediss://localhost:\(server.port)/3?ca=\(certificates.caFile)") { client in
                let store = RedisIdempotencyStore(client: client, ttlSeconds: 60, reservationMilliseconds: 30_000)
                let key = IdempotencyKey(source: "shop", id: "e-1")
                #expect(try await store.reserve(key) == .reserved)
                #expect(try await store.reserve(key) == .inProgress)
                try await store.commit(key)
                #expect(try await store.reserve(key) == .duplicate)
                // SELECT 3 was sent first on the connection.
                #expect(try await client.execute("EXISTS", "webhook-bridge:idempotency:4:shop:e-1") == .integer(1))
            }
            try await withClient(server.url) { client async throws in
                #expect(try await client.execute("EXISTS", "webhook-bridge:idempotency:4:shop:e-1") == .integer(0))
            }
        }
    }

    @Test("a server certificate from another CA, or for another name, fails at once with a TLS error; nothing is ready")
    func verificationFails() async throws {
        let other = try TestCertificates()
        defer { other.cleanup() }
        try await withTLSServer { server, _ in
            try await withTLSServer(serverNames: "DNS:redis.example") { misnamed, misnamedCertificates in
                let cases = [
                    ("rediss://127.0.0.1:\(server.port)/0?ca=\(other.caFile)", "CERTIFICATE_VERIFY_FAILED"),
                    // The system trust store does not know the test CA either.
                    ("rediss://127.0.0.1:\(server.port)/0", "CERTIFICATE_VERIFY_FAILED"),
                    ("rediss://127.0.0.1:\(misnamed.port)/0?ca=\(misnamedCertificates.caFile)", "failedToValidateHostname"),
                ]
                for (url, reason) in cases { try await Self.expectTLSFailure(url, reason: reason) }
            }
        }
    }

    /// A command on `url` fails at once with a TLS error naming `reason`, not at its timeout
    /// (30 s here, so that "at once", under 10 s, holds on a loaded machine: with 2 s and 1 s
    /// it failed at 1.08 s in a full-suite run); the client is not ready and a delivery fails
    /// as retryable.
    static func expectTLSFailure(_ url: String, reason: String) async throws {
        try await withClient(url, timeoutMilliseconds: 30_000) { client in
            let started = ContinuousClock.now
            await #expect {
                _ = try await client.execute("PING")
            } throws: { error in
                error is RedisClient.Failure && "\(error)".contains("TLS") && "\(error)".contains(reason)
            }
            #expect(ContinuousClock.now - started < .seconds(10), "\(url) took \(ContinuousClock.now - started) to fail")
            #expect(!client.isReachable)
            let sink = RedisStreamSink(name: "jobs", client: client, stream: try Template(parsing: "s"), maxLength: nil)
            await #expect { _ = try await sink.deliver(redisEvent("x")) } throws: { ($0 as? SinkError)?.isPermanent == false }
        }
    }

    @Test("a server that requires client certificates: refused without one or with another CA's, served with one")
    func clientCertificates() async throws {
        let other = try TestCertificates()
        defer { other.cleanup() }
        try await withTLSServer(clientCertificates: true) { server, certificates in
            let base = "rediss://127.0.0.1:\(server.port)/0?ca=\(certificates.caFile)"
            for url in [base, base + "&cert=\(other.clientCertificate)&key=\(other.clientKey)"] {
                try await withClient(url) { client in
                    await #expect(throws: RedisClient.Failure.self) { _ = try await client.execute("PING") }
                    #expect(!client.isReachable)
                }
            }
            try await withClient(server.url) { client async throws in
                #expect(try await client.execute("PING") == .status("PONG"))
            }
        }
    }

    @Test("files that are not PEM stop the client's start with the option named")
    func badFiles() throws {
        let certificates = try TestCertificates()
        defer { certificates.cleanup() }
        let notPEM = certificates.directory.file("server.ext")
        func message(_ url: String) -> String {
            do {
                _ = try RedisClient(endpoint: try RedisEndpoint(url: url), timeoutMilliseconds: 1000, logger: quietLogger())
                return "started"
            } catch {
                return "\(error)"
            }
        }
        #expect(message("rediss://h?ca=\(notPEM)").hasPrefix("ca: "))
        #expect(message("rediss://h?cert=\(notPEM)&key=\(certificates.clientKey)").hasPrefix("cert: "))
        #expect(message("rediss://h?cert=\(certificates.clientCertificate)&key=\(notPEM)").hasPrefix("key: "))
        // A key that is not the certificate's.
        #expect(message("rediss://h?cert=\(certificates.clientCertificate)&key=\(certificates.serverKey)").contains("key"))
    }

    @Test("the bridge with a rediss:// sink and a rediss:// idempotency store: a signed webhook is answered 200 and is in the stream")
    func bridge() async throws {
        try await withTLSServer(clientCertificates: true) { server, _ in
            let config = RedisBridgeTests.config(
                redis: server.url, sinks: #""jobs": {"type": "redis", "url": "\#(server.url)", "stream": "webhooks:{source}"}"#,
                sourceSinks: #""jobs""#)
            try await RunningBridge.with(config: config) { bridge in
                let body = #"{"id": "tls-1"}"#
                let first = try await bridge.post("/gh", headers: githubHeaders(body, delivery: "tls-1"), body: body)
                #expect(first.status == .ok)
                let again = try await bridge.post("/gh", headers: githubHeaders(body, delivery: "tls-1"), body: body)
                #expect(again.json?["status"]?.scalarText == "duplicate")
                #expect(try await bridge.get("/readyz").status == .ok)
            }
            #expect(try await RedisClientForTest(url: server.url).streamIDs("webhooks:github") == ["tls-1"])
        }
    }
}
