import BridgeTestSupport
import Testing
import WebhookBridge
import WebhookCore
import WebhookProviders

@Suite("Allowlists, trusted proxies and rate limits")
struct AdmissionTests {
    static func config(allow: String? = nil, trusted: String? = nil, rateLimit: String? = nil) -> String {
        """
        {"listen": {"host": "127.0.0.1", "port": 0},
         \(trusted.map { #""trustedProxies": \#($0),"# } ?? "")
         "sinks": {"archive": {"type": "file", "path": "{dir}/events.jsonl"}},
         "sources": {"gh": {"path": "/gh", "verify": {"scheme": "github", "secrets": ["gh-secret"]}, "sinks": ["archive"]
                            \(allow.map { #", "allow": \#($0)"# } ?? "")\(rateLimit.map { #", "rateLimit": \#($0)"# } ?? "")}}}
        """
    }

    func send(_ bridge: RunningBridge, _ id: String, extra: [(String, String)] = []) async throws -> WebhookClient.Response {
        let body = #"{"id": "\#(id)"}"#
        return try await bridge.post("/gh", headers: githubHeaders(body, delivery: id) + extra, body: body)
    }

    @Test("an address outside allow gets 403 forbidden and nothing is written; one inside is served")
    func allowlist() async throws {
        try await RunningBridge.with(config: Self.config(allow: #"["10.0.0.0/8", "2001:db8::/32"]"#)) { bridge in
            let denied = try await send(bridge, "a-1")
            #expect(denied.status == .forbidden)
            #expect(denied.json == .object([("error", .string("forbidden"))]))
            #expect(try bridge.lines("events.jsonl").isEmpty)
        }
        try await RunningBridge.with(config: Self.config(allow: #"["127.0.0.0/8"]"#)) { bridge in
            let allowed = try await send(bridge, "a-2")
            #expect(allowed.status == .ok)
        }
    }

    @Test("X-Forwarded-For is believed only from a trusted proxy")
    func forwardedFor() async throws {
        let allow = #"["203.0.113.0/24"]"#
        try await RunningBridge.with(config: Self.config(allow: allow, trusted: #"["127.0.0.1/32"]"#)) { bridge in
            let proxied = try await send(bridge, "f-1", extra: [("X-Forwarded-For", "203.0.113.7")])
            #expect(proxied.status == .ok)
            // The client can prepend anything; the nearest untrusted hop decides.
            let spoofed = try await send(bridge, "f-2", extra: [("X-Forwarded-For", "203.0.113.7, 198.51.100.9")])
            #expect(spoofed.status == .forbidden)
            let direct = try await send(bridge, "f-3")
            #expect(direct.status == .forbidden)
        }
        try await RunningBridge.with(config: Self.config(allow: allow)) { bridge in
            let untrusted = try await send(bridge, "f-4", extra: [("X-Forwarded-For", "203.0.113.7")])
            #expect(untrusted.status == .forbidden)
        }
    }

    @Test("over the source's rate limit: 429 rate_limited with Retry-After")
    func rateLimit() async throws {
        try await RunningBridge.with(config: Self.config(rateLimit: #"{"perSecond": 0.001, "burst": 2}"#)) { bridge in
            #expect(try await send(bridge, "r-1").status == .ok)
            #expect(try await send(bridge, "r-2").status == .ok)
            let limited = try await send(bridge, "r-3")
            #expect(limited.status == .tooManyRequests)
            #expect(limited.json == .object([("error", .string("rate_limited"))]))
            #expect(Int(limited.headers.first(name: "Retry-After") ?? "") ?? 0 >= 1)
            #expect(try bridge.lines("events.jsonl").count == 2)
        }
    }

    @Test("requests that fail verification don't spend the source's rate limit: a stranger's flood leaves the honest client its budget, and the stranger gets 429")
    func strangersDontSpendTheRateLimit() async throws {
        try await RunningBridge.with(config: Self.config(rateLimit: #"{"perSecond": 0.001, "burst": 3}"#)) { bridge in
            let body = #"{"id": "forged"}"#
            var statuses: [Int] = []
            for n in 0..<40 {
                // Unsigned (refused from the head) and wrongly signed (refused after verifying);
                // a connection each, as an answer from the head closes it.
                let stranger = try KeepAliveConnection(port: bridge.port, from: "127.0.0.2")
                let headers = n % 2 == 0 ? [] : githubHeaders(body, delivery: "x-\(n)", secret: "guess")
                let answer = try await offThePool { try stranger.post("/gh", headers: headers, body: body) }
                statuses.append(answer.status)
            }
            #expect(statuses.prefix(3).allSatisfy { $0 == 401 }, "\(statuses)")
            #expect(statuses.dropFirst(3).allSatisfy { $0 == 429 }, "the stranger's own failures are limited: \(statuses)")
            // The honest client, on another address, still has its burst of 3; the 4th is over it.
            for n in 1...3 { #expect(try await send(bridge, "h-\(n)").status == .ok, "honest request \(n)") }
            #expect(try await send(bridge, "h-4").status == .tooManyRequests)
            #expect(try bridge.lines("events.jsonl").count == 3)
        }
    }

    @Test("unsigned handshakes (Dropbox's GET ?challenge=) spend their client's bucket, not the source's rate limit")
    func handshakesDontSpendTheRateLimit() async throws {
        let config = """
            {"listen": {"host": "127.0.0.1", "port": 0},
             "sinks": {"archive": {"type": "file", "path": "{dir}/events.jsonl"}},
             "sources": {"dbx": {"path": "/dropbox", "verify": {"scheme": "dropbox", "secrets": ["dbx-secret"]}, "sinks": ["archive"],
                                 "rateLimit": {"perSecond": 0.001, "burst": 2}}}}
            """
        try await RunningBridge.with(config: config) { bridge in
            var statuses: [Int] = []
            for n in 0..<10 {
                let stranger = try KeepAliveConnection(port: bridge.port, from: "127.0.0.2")
                statuses.append(try await offThePool { try stranger.get("/dropbox?challenge=c\(n)").status })
            }
            #expect(statuses == [200, 200] + Array(repeating: 429, count: 8), "\(statuses)")
            for n in 1...2 {
                let body = #"{"list_folder": {"accounts": ["\#(n)"]}}"#
                let signed = try WebhookSigner.sign(scheme: "dropbox", .init(body: Array(body.utf8), secret: "dbx-secret", timestamp: 0))
                let answer = try await bridge.post("/dropbox", headers: signed.headers, body: body)
                #expect(answer.status == .ok, "honest event \(n)")
            }
        }
    }

    @Test("CIDRs: IPv4, IPv6, IPv4-mapped addresses, bare addresses")
    func cidrs() throws {
        let v4 = try #require(CIDR("10.1.0.0/16"))
        #expect(v4.contains("10.1.255.3"))
        #expect(!v4.contains("10.2.0.1"))
        #expect(v4.contains("::ffff:10.1.2.3"))
        let v6 = try #require(CIDR("2001:db8::/32"))
        #expect(v6.contains("2001:db8:1::5"))
        #expect(!v6.contains("2001:db9::1"))
        let bare = try #require(CIDR("192.0.2.1"))
        #expect(bare.contains("192.0.2.1"))
        #expect(!bare.contains("192.0.2.2"))
        #expect(CIDR("300.1.1.1/8") == nil)
        #expect(CIDR("::1/129") == nil)
        #expect(!v4.contains("not an address"))
    }
}
