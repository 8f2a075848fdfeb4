import BridgeTestSupport
import WebhookCrypto
import Foundation
import Synchronization
import Testing
import WebhookBridge
import WebhookCore
import WebhookEncoding
import WebhookProviders

/// A local stand-in for SNS's certificate host: a CA made with openssl, an HTTPS server
/// (Python's http.server with ssl, a real TLS server) for `localhost` on port 443 (the only
/// port the bridge fetches from) serving the signing certificate and answering SubscribeURL
/// GETs, and the signing key. Paths starting `/slow` are answered 404 after 3 s.
final class SNSFixture: @unchecked Sendable {
    /// Port 443 takes root (CI runs as root).
    static var canServe: Bool { getuid() == 0 }

    let directory = TemporaryDirectory()
    let port: Int
    /// The key the served certificate holds (PEM), which signs the test messages.
    let signingKey: String
    private let server = Process()
    private let log = Pipe()
    /// The server's standard input, never written: it ends when this process does.
    private let lifeline = Pipe()
    private let requests = RequestLog()

    final class RequestLog: @unchecked Sendable {
        let lock = NSLock()
        var lines: [String] = []
    }

    var caFile: String { directory.file("ca.pem") }
    var certificateURL: String { "https://localhost/SimpleNotificationService-test.pem" }
    func subscribeURL(_ token: String) -> String { "https://localhost/confirm?Action=ConfirmSubscription&Token=\(token)" }

    /// The paths the server was asked for, in order.
    var paths: [String] { requests.lock.withLock { requests.lines } }

    init() throws {
        let d = directory
        try FileManager.default.createDirectory(atPath: d.file("served"), withIntermediateDirectories: true)
        try Data("subjectAltName=DNS:localhost\n".utf8).write(to: URL(fileURLWithPath: d.file("san.ext")))
        let steps: [[String]] = [
            [
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", d.file("ca.key"), "-out", d.file("ca.pem"), "-days",
                "1",
                "-subj", "/CN=webhook-bridge test CA",
            ],
            [
                "req", "-newkey", "rsa:2048", "-nodes", "-keyout", d.file("server.key"), "-out", d.file("server.csr"), "-subj",
                "/CN=localhost",
            ],
            [
                "x509", "-req", "-in", d.file("server.csr"), "-CA", d.file("ca.pem"), "-CAkey", d.file("ca.key"),
                "-CAcreateserial",
                "-out", d.file("server.pem"), "-days", "1", "-extfile", d.file("san.ext"),
            ],
            [
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", d.file("signing.key"),
                "-out", d.file("served/SimpleNotificationService-test.pem"), "-days", "1", "-subj", "/CN=sns.amazonaws.com",
            ],
        ]
        for arguments in steps { try TestCertificates.openssl(arguments) }
        signingKey = d.file("signing.key")
        port = 443
        let script = """
            import http.server, os, ssl, sys, threading, time
            # Ends with the test process: its end (a crash too) closes this pipe. An orphan
            # would hold port 443 for every later run.
            threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0)), daemon=True).start()
            class Handler(http.server.SimpleHTTPRequestHandler):
                def log_message(self, *args): pass
                def do_GET(self):
                    sys.stdout.write("GET " + self.path + "\\n"); sys.stdout.flush()
                    if self.path.startswith("/slow"):
                        time.sleep(3); self.send_error(404); return
                    if self.path.startswith("/confirm"):
                        body = b"<ConfirmSubscriptionResponse/>"
                        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
                        self.wfile.write(body)
                    else:
                        super().do_GET()
            server = http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(sys.argv[2], sys.argv[3])
            server.socket = context.wrap_socket(server.socket, server_side=True)
            sys.stdout.write("ready\\n"); sys.stdout.flush()
            server.serve_forever()
            """
        server.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        server.arguments = ["-c", script, String(port), d.file("server.pem"), d.file("server.key")]
        server.currentDirectoryURL = URL(fileURLWithPath: d.file("served"))
        server.standardOutput = log
        server.standardInput = lifeline
        try server.run()
        let handle = log.fileHandleForReading
        var seen = ""
        while !seen.contains("ready\n") {
            let chunk = handle.availableData
            if chunk.isEmpty { throw ServerError("the test HTTPS server did not start: \(seen)") }
            seen += String(decoding: chunk, as: UTF8.self)
        }
        let requests = self.requests
        Thread {
            while true {
                let chunk = handle.availableData
                if chunk.isEmpty { return }
                let lines = String(decoding: chunk, as: UTF8.self).split(separator: "\n").map(String.init)
                requests.lock.withLock { requests.lines += lines }
            }
        }.start()
    }

    deinit {
        // SIGKILL: a child of the test process inherits its blocked signals, SIGTERM among them.
        kill(server.processIdentifier, SIGKILL)
        server.waitUntilExit()
        directory.cleanup()
    }

    /// An SNS message signed as SNS signs it (SignatureVersion 1: SHA1, 2: SHA256).
    func message(
        type: String = "Notification", id: String, topic: String = "arn:aws:sns:us-east-1:123456789012:orders",
        message: String = #"{"order": 1}"#, subject: String? = "Order", version: String = "1", certificateURL: String? = nil,
        token: String = "2336412f37fb687f5d51e6e2425c464de12884e1d5a8c3a5f6d8e9ee8d5c7f0a", tamper: Bool = false
    ) throws -> String {
        var fields: [(String, String)] = [("Type", type), ("MessageId", id), ("TopicArn", topic), ("Message", message)]
        if type == "Notification" {
            if let subject { fields.append(("Subject", subject)) }
        } else {
            fields += [("Token", token), ("SubscribeURL", subscribeURL(token))]
        }
        fields += [("Timestamp", "2026-12-01T00:00:00.000Z"), ("SignatureVersion", version)]
        let names =
            type == "Notification"
            ? ["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"]
            : ["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"]
        var stringToSign = ""
        for name in names {
            guard let value = fields.first(where: { $0.0 == name })?.1 else { continue }
            stringToSign += name + "\n" + value + "\n"
        }
        let data = Array(stringToSign.utf8)
        // Signed by the openssl tool (PKCS#1 v1.5 is its default for RSA), not by the code under test.
        let signature = try TestCertificates.opensslOutput(
            ["dgst", version == "1" ? "-sha1" : "-sha256", "-sign", signingKey], input: data)
        fields.append(("Signature", Base64.encode(signature)))
        fields.append(("SigningCertURL", certificateURL ?? self.certificateURL))
        if tamper, let index = fields.firstIndex(where: { $0.0 == "Message" }) { fields[index].1 += " " }
        var bytes: [UInt8] = []
        JSONWriter.append(.object(fields.map { ($0.0, JSONValue.string($0.1)) }), to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }
}

@Suite(
    "AWS SNS: signatures by a fetched certificate, topics, subscription confirmations", .serialized,
    .enabled(if: SNSFixture.canServe, "the stand-in certificate host serves on port 443, which takes root"))
struct SNSTests {
    func config(_ fixture: SNSFixture, autoConfirm: Bool = false) -> String {
        """
        {"listen": {"host": "127.0.0.1", "port": 0},
         "sinks": {"archive": {"type": "file", "path": "{dir}/events.jsonl"}},
         "sources": {"aws": {"path": "/sns",
                             "verify": {"scheme": "sns", "certificateHost": "^localhost$", "caFile": "\(fixture.caFile)",
                                        "topicArns": ["arn:aws:sns:us-east-1:123456789012:orders"], "autoConfirm": \(autoConfirm)},
                             "sinks": ["archive"]}}}
        """
    }

    func post(_ bridge: RunningBridge, _ body: String) async throws -> WebhookClient.Response {
        try await bridge.post(
            "/sns", headers: [("Content-Type", "text/plain; charset=UTF-8"), ("x-amz-sns-message-type", "Notification")],
            body: body)
    }

    @Test(
        "jwt with jwksUrl (fetched from the same stand-in host): a token by a key of the set lands; unknown kids are refused without a fetch each; a key set host that answers late with an error is 503"
    )
    func jsonWebKeySet() async throws {
        let fixture = try SNSFixture()
        let key = P256PrivateKey()
        let point = Array(key.publicKey.derRepresentation.suffix(64))
        let jwks = JSONValue.object([
            (
                "keys",
                .array([
                    .object([
                        ("kty", .string("EC")), ("crv", .string("P-256")), ("kid", .string("k1")), ("use", .string("sig")),
                        ("x", .string(JSONWebToken.base64URLEncode(point.prefix(32)))),
                        ("y", .string(JSONWebToken.base64URLEncode(point.suffix(32)))),
                    ])
                ])
            )
        ])
        var bytes: [UInt8] = []
        JSONWriter.append(jwks, to: &bytes)
        try Data(bytes).write(to: URL(fileURLWithPath: fixture.directory.file("served/jwks.json")))
        let config = """
            {"listen": {"host": "127.0.0.1", "port": 0},
             "sinks": {"archive": {"type": "file", "path": "{dir}/events.jsonl"}},
             "sources": {"push": {"path": "/push", "verify": {"scheme": "jwt", "algorithms": ["ES256"], "audience": "https://hooks.example.com/push",
                                  "jwksUrl": "https://localhost/jwks.json", "caFile": "\(fixture.caFile)"}, "sinks": ["archive"]},
                         "slow": {"path": "/slow", "verify": {"scheme": "jwt", "algorithms": ["ES256"],
                                  "jwksUrl": "https://localhost/slow/jwks.json", "caFile": "\(fixture.caFile)"}, "sinks": ["archive"]}}}
            """
        func token(kid: String, id: String) -> String {
            let claims = JSONValue.object([
                ("aud", .string("https://hooks.example.com/push")), ("jti", .string(id)),
                ("exp", .number(String(Timestamp.now().secondsSince1970 + 300))),
            ])
            return JSONWebToken.make(claims: claims, algorithm: .es256, keyID: kid) { key.rawSignature(for: $0) }
        }
        try await RunningBridge.with(config: config) { bridge in
            let accepted = try await bridge.post(
                "/push", headers: [("Authorization", "Bearer " + token(kid: "k1", id: "p-1"))], body: #"{"message": {}}"#)
            #expect(accepted.status == .ok, "\(accepted.text)")
            #expect(try bridge.lines("events.jsonl").map { $0["id"] } == [.string("p-1")])
            for index in 1...5 {
                let refused = try await bridge.post(
                    "/push", headers: [("Authorization", "Bearer " + token(kid: "made-up-\(index)", id: "x-\(index)"))],
                    body: "{}")
                #expect(refused.status == .unauthorized, "\(refused.text)")
            }
            // One fetch: made-up kids within the minute after it are refused from the set held.
            #expect(fixture.paths.filter { $0 == "GET /jwks.json" }.count == 1, "\(fixture.paths)")
            let slow = try await bridge.post(
                "/slow", headers: [("Authorization", "Bearer " + token(kid: "k1", id: "s-1"))], body: "{}")
            #expect(slow.status == .serviceUnavailable, "\(slow.text)")
        }
    }

    @Test(
        "gcp-pubsub: a push in Google's documented shape with an OIDC token by a key of the (stand-in) Google key set lands with message.messageId as id and the type attribute or subscription name as type; another account, an unverified email, another audience or no exp is refused"
    )
    func googlePubSub() async throws {
        let fixture = try SNSFixture()
        let google = RSAPrivateKey()
        try Data(JSONWebKeys.set([JSONWebKeys.rsa(google.publicKey, kid: "g1")])).write(
            to: URL(fileURLWithPath: fixture.directory.file("served/certs.json")))
        let account = "pusher@my-project.iam.gserviceaccount.com"
        func verify(_ extra: String) -> String {
            #"{"scheme": "gcp-pubsub", "audience": "https://hooks.example.com/push", "serviceAccount": "\#(account)", "jwksUrl": "https://localhost/certs.json", "caFile": "\#(fixture.caFile)"\#(extra)}"#
        }
        let config = """
            {"listen": {"host": "127.0.0.1", "port": 0},
             "sinks": {"archive": {"type": "file", "path": "{dir}/events.jsonl"}},
             "sources": {"typed": {"path": "/typed", "verify": \(verify(#", "typeAttribute": "eventType""#)), "sinks": ["archive"]},
                         "plain": {"path": "/plain", "verify": \(verify("")), "sinks": ["archive"]}}}
            """
        let now = Timestamp.now().secondsSince1970
        func token(_ changes: [(String, JSONValue?)] = []) -> String {
            var claims: [(String, JSONValue)] = [
                ("aud", .string("https://hooks.example.com/push")), ("azp", .string("1123")), ("email", .string(account)),
                ("email_verified", .bool(true)), ("exp", .number(String(now + 3600))), ("iat", .number(String(now))),
                ("iss", .string("https://accounts.google.com")), ("sub", .string("1123")),
            ]
            for (name, value) in changes {
                claims.removeAll { $0.0 == name }
                if let value { claims.append((name, value)) }
            }
            return JSONWebToken.make(claims: .object(claims), algorithm: .rs256, keyID: "g1") { google.signature(for: $0) }
        }
        func push(_ id: String) -> String {
            #"{"message": {"attributes": {"eventType": "order.paid"}, "data": "eyJvcmRlciI6IDF9", "messageId": "\#(id)", "publishTime": "2026-12-04T19:13:55.749Z"}, "subscription": "projects/my-project/subscriptions/orders-push"}"#
        }
        try await RunningBridge.with(config: config) { bridge in
            func post(_ path: String, _ token: String, _ id: String) async throws -> Int {
                Int(
                    try await bridge.post(
                        path, headers: [("Authorization", "Bearer " + token), ("Content-Type", "application/json")],
                        body: push(id)
                    ).status.code)
            }
            #expect(try await post("/typed", token(), "1001") == 200)
            #expect(try await post("/plain", token(), "1002") == 200)
            let lines = try bridge.lines("events.jsonl")
            #expect(lines.map { $0["id"] } == [.string("1001"), .string("1002")])
            #expect(lines.map { $0["type"] } == [.string("order.paid"), .string("orders-push")])
            #expect(lines.allSatisfy { $0["webhookscheme"] == .string("gcp-pubsub") })
            #expect(lines.first?["data"]?["message"]?["data"] == .string("eyJvcmRlciI6IDF9"))
            for changed in [
                [("email", JSONValue.string("other@evil-project.iam.gserviceaccount.com"))],
                [("email_verified", .bool(false))], [("aud", .string("https://elsewhere.example.com"))],
                [("iss", .string("https://evil.example.com"))], [("exp", nil)],
            ] as [[(String, JSONValue?)]] {
                #expect(try await post("/plain", token(changed), "2000") == 401, "\(changed)")
            }
            // One fetch per source (each source holds its key set), none per refusal.
            #expect(fixture.paths.filter { $0 == "GET /certs.json" }.count == 2, "\(fixture.paths)")
        }
    }

    @Test(
        "notifications signed with SignatureVersion 1 and 2 are accepted and land with MessageId and the topic name; the certificate is fetched once"
    )
    func notifications() async throws {
        let fixture = try SNSFixture()
        try await RunningBridge.with(config: config(fixture)) { bridge in
            let first = try await post(bridge, try fixture.message(id: "msg-1", version: "1"))
            #expect(first.status == .ok, "\(first.text)")
            let second = try await post(bridge, try fixture.message(id: "msg-2", version: "2"))
            #expect(second.status == .ok, "\(second.text)")
            let lines = try bridge.lines("events.jsonl")
            #expect(lines.map { $0["id"] } == [.string("msg-1"), .string("msg-2")])
            #expect(lines.allSatisfy { $0["type"] == .string("orders") && $0["webhookscheme"] == .string("sns") })
            #expect(fixture.paths.filter { $0.hasSuffix(".pem") }.count == 1, "\(fixture.paths)")
        }
    }

    @Test(
        "a tampered message, a foreign topic, a certificate on a foreign host, over http or not .pem: all refused, never fetched from elsewhere"
    )
    func refusals() async throws {
        let fixture = try SNSFixture()
        try await RunningBridge.with(config: config(fixture)) { bridge in
            let tampered = try await post(bridge, try fixture.message(id: "t-1", tamper: true))
            #expect(tampered.status == .unauthorized)
            #expect(tampered.json == .object([("error", .string("signature_invalid"))]))
            let foreignTopic = try await post(
                bridge, try fixture.message(id: "t-2", topic: "arn:aws:sns:us-east-1:999999999999:other"))
            #expect(foreignTopic.json == .object([("error", .string("signature_invalid"))]))
            let foreignHost = try await post(
                bridge,
                try fixture.message(id: "t-3", certificateURL: "https://evil.example.com/SimpleNotificationService-test.pem"))
            #expect(foreignHost.status == .unauthorized)
            let plainHTTP = try await post(
                bridge, try fixture.message(id: "t-4", certificateURL: "http://localhost/SimpleNotificationService-test.pem"))
            #expect(plainHTTP.status == .unauthorized)
            let notPEM = try await post(bridge, try fixture.message(id: "t-5", certificateURL: "https://localhost/cert.txt"))
            #expect(notPEM.status == .unauthorized)
            // A certificate URL the (allowed) host has nothing at: refused as forged, not 503.
            let nothingThere = try await post(
                bridge, try fixture.message(id: "t-7", certificateURL: "https://localhost/nothing-here.pem"))
            #expect(nothingThere.json == .object([("error", .string("signature_invalid"))]))
            let withQuery = try await post(
                bridge, try fixture.message(id: "t-8", certificateURL: fixture.certificateURL + "?n=1"))
            #expect(withQuery.json == .object([("error", .string("signature_invalid"))]))
            let unsigned = try await post(bridge, #"{"Type": "Notification", "MessageId": "t-6"}"#)
            #expect(unsigned.json == .object([("error", .string("signature_missing"))]))
            #expect(try bridge.lines("events.jsonl").isEmpty)
            // Only the allowed host was asked, and nothing with a query.
            #expect(
                fixture.paths.allSatisfy {
                    $0.hasSuffix("SimpleNotificationService-test.pem") || $0.hasSuffix("nothing-here.pem")
                },
                "\(fixture.paths)")
        }
    }

    @Test("a SigningCertURL naming a port other than 443 is refused without a fetch")
    func otherPortsRefused() async throws {
        let fixture = try SNSFixture()
        try await RunningBridge.with(config: config(fixture)) { bridge in
            for port in ["22", "99999", "8443"] {
                let url = "https://localhost:\(port)/SimpleNotificationService-test.pem"
                let answer = try await post(bridge, try fixture.message(id: "p-\(port)", certificateURL: url))
                // 401, not the 503 of a fetch that could not connect.
                #expect(answer.status == .unauthorized, "port \(port): \(answer.text)")
            }
            let explicit = try await post(
                bridge,
                try fixture.message(id: "p-443", certificateURL: "https://localhost:443/SimpleNotificationService-test.pem"))
            #expect(explicit.status == .ok, "\(explicit.text)")
        }
    }

    @Test(
        "messages naming 80 unusable certificate URLs (more than the 64 keys kept) don't evict the real certificate: it is fetched once"
    )
    func failuresDontEvictKeys() async throws {
        let fixture = try SNSFixture()
        try await RunningBridge.with(config: config(fixture)) { bridge in
            let first = try await post(bridge, try fixture.message(id: "k-1"))
            #expect(first.status == .ok)
            for n in 0..<80 {
                let url = "https://localhost/missing-\(n).pem"
                let forged = try await post(bridge, try fixture.message(id: "m-\(n)", certificateURL: url))
                #expect(forged.status == .unauthorized)
            }
            let second = try await post(bridge, try fixture.message(id: "k-2"))
            #expect(second.status == .ok)
            #expect(
                fixture.paths.filter { $0.hasSuffix("SimpleNotificationService-test.pem") }.count == 1,
                "\(fixture.paths.count) fetches")
        }
    }

    @Test(
        "slow certificate fetches from one client take at most 2 of the 8 fetch slots: a real notification from elsewhere is verified"
    )
    func slowFetchesDontTakeEverySlot() async throws {
        let fixture = try SNSFixture()
        try await RunningBridge.with(config: config(fixture)) { bridge in
            let answered = AnsweredCount()
            var attackers: [Task<Int, any Error>] = []
            for n in 0..<8 {
                let body = try fixture.message(id: "s-\(n)", certificateURL: "https://localhost/slow-\(n).pem")
                attackers.append(
                    Task.detached {
                        let connection = try KeepAliveConnection(port: bridge.port, from: "127.0.0.2")
                        let status = try await offThePool { try connection.post("/sns", headers: [], body: body).status }
                        answered.count.withLock { $0 += 1 }
                        return status
                    })
            }
            // Every attacker's message is either being fetched for, or answered already.
            let settled = await eventually {
                fixture.paths.filter { $0.hasPrefix("GET /slow") }.count + answered.count.withLock { $0 } >= 8
            }
            #expect(settled, "\(fixture.paths)")
            let real = try await post(bridge, try fixture.message(id: "r-1"))
            #expect(real.status == .ok, "\(real.text)")
            var statuses: [Int] = []
            for attacker in attackers { statuses.append(try await attacker.value) }
            #expect(statuses.sorted() == [401, 401] + Array(repeating: 503, count: 6), "\(statuses)")
        }
    }

    @Test(
        "a subscription confirmation is verified, answered 200 and not forwarded; with autoConfirm the bridge GETs the SubscribeURL"
    )
    func confirmation() async throws {
        let fixture = try SNSFixture()
        try await RunningBridge.with(config: config(fixture, autoConfirm: true)) { bridge in
            let confirmation = try await post(
                bridge, try fixture.message(type: "SubscriptionConfirmation", id: "c-1", token: "tok-1"))
            #expect(confirmation.status == .ok)
            #expect(try bridge.lines("events.jsonl").isEmpty)
            let confirmed = await eventually {
                fixture.paths.contains { $0.hasPrefix("GET /confirm?Action=ConfirmSubscription&Token=tok-1") }
            }
            #expect(confirmed, "\(fixture.paths)")
            let forged = try await post(
                bridge, try fixture.message(type: "SubscriptionConfirmation", id: "c-2", token: "tok-2", tamper: true))
            #expect(forged.status == .unauthorized)
            #expect(!fixture.paths.contains { $0.contains("tok-2") })
        }
    }

    /// A PayPal notification signed as PayPal signs it: the openssl tool's RSA SHA-256 over
    /// `transmission id|time|webhook id|CRC-32 of the body` (decimal), the CRC by Python's
    /// zlib, as PayPal's SDKs compute it; the certificate served by the stand-in host.
    func payPalHeaders(
        _ fixture: SNSFixture, body: String, transmission: String, webhookID: String = "WH-8PT597110X687430L",
        certificateURL: String = "https://localhost/v1/notifications/certs/CERT-360caa42-test",
        algorithm: String = "SHA256withRSA", time: String = Timestamp.now().rfc3339
    ) throws -> [(String, String)] {
        let crc = try TestCertificates.output(
            "/usr/bin/python3", ["-c", "import sys, zlib; print(zlib.crc32(sys.stdin.buffer.read()), end='')"],
            input: Array(body.utf8))
        let message = "\(transmission)|\(time)|\(webhookID)|\(String(decoding: crc, as: UTF8.self))"
        let signature = try TestCertificates.opensslOutput(
            ["dgst", "-sha256", "-sign", fixture.signingKey], input: Array(message.utf8))
        return [
            ("Content-Type", "application/json"), ("PAYPAL-TRANSMISSION-ID", transmission), ("PAYPAL-TRANSMISSION-TIME", time),
            ("PAYPAL-TRANSMISSION-SIG", Base64.encode(signature)), ("PAYPAL-CERT-URL", certificateURL),
            ("PAYPAL-AUTH-ALGO", algorithm),
        ]
    }

    @Test(
        "paypal: a notification signed over id|time|webhookId|crc32(body) lands with the body's id and event_type, the certificate fetched once; another webhook id, a changed body, another algorithm, a certificate off the allowed host and a transmission time outside the tolerance are refused"
    )
    func payPal() async throws {
        let fixture = try SNSFixture()
        let certificates = fixture.directory.file("served/v1/notifications/certs")
        try FileManager.default.createDirectory(atPath: certificates, withIntermediateDirectories: true)
        try FileManager.default.copyItem(
            atPath: fixture.directory.file("served/SimpleNotificationService-test.pem"),
            toPath: certificates + "/CERT-360caa42-test")
        let config = """
            {"listen": {"host": "127.0.0.1", "port": 0},
             "sinks": {"archive": {"type": "file", "path": "{dir}/events.jsonl"}},
             "sources": {"paypal": {"path": "/paypal",
                                    "verify": {"scheme": "paypal", "webhookId": "WH-8PT597110X687430L",
                                               "certificateHost": "^localhost$", "caFile": "\(fixture.caFile)"},
                                    "sinks": ["archive"]}}}
            """
        func body(_ id: String) -> String {
            #"{"id":"\#(id)","event_version":"1.0","create_time":"2026-12-04T10:49:03.439Z","resource_type":"capture","event_type":"PAYMENT.CAPTURE.COMPLETED","summary":"Payment completed for $ 7.47 USD","resource":{"id":"42311647XV020574X","status":"COMPLETED","amount":{"currency_code":"USD","value":"7.47"}}}"#
        }
        try await RunningBridge.with(config: config) { bridge in
            func post(_ headers: [(String, String)], _ body: String) async throws -> WebhookClient.Response {
                try await bridge.post("/paypal", headers: headers, body: body)
            }
            let first = try await post(try payPalHeaders(fixture, body: body("WH-1"), transmission: "t-1"), body("WH-1"))
            #expect(first.status == .ok, "\(first.text)")
            let second = try await post(try payPalHeaders(fixture, body: body("WH-2"), transmission: "t-2"), body("WH-2"))
            #expect(second.status == .ok, "\(second.text)")

            let invalid = JSONValue.object([("error", .string("signature_invalid"))])
            let otherWebhook = try await post(
                try payPalHeaders(fixture, body: body("WH-3"), transmission: "t-3", webhookID: "WH-OTHER"), body("WH-3"))
            #expect(otherWebhook.json == invalid, "\(otherWebhook.text)")
            let changed = try await post(
                try payPalHeaders(fixture, body: body("WH-4"), transmission: "t-4"),
                body("WH-4").replacingOccurrences(of: "7.47", with: "1.00"))
            #expect(changed.json == invalid, "\(changed.text)")
            let sha1 = try await post(
                try payPalHeaders(fixture, body: body("WH-5"), transmission: "t-5", algorithm: "SHA1withRSA"), body("WH-5"))
            #expect(sha1.json == invalid, "\(sha1.text)")
            for url in [
                "https://api.paypal.com.evil.example/v1/notifications/certs/CERT-360caa42-test",
                "http://localhost/v1/notifications/certs/CERT-360caa42-test",
                "https://localhost/v1/notifications/certs/CERT-360caa42-test?v=2",
                "https://localhost:8443/v1/notifications/certs/CERT-360caa42-test",
                // The allowed host, but not where PayPal keeps certificates.
                "https://localhost/SimpleNotificationService-test.pem",
                "https://localhost/v1/notifications/certs/",
            ] {
                let answer = try await post(
                    try payPalHeaders(fixture, body: body("WH-6"), transmission: "t-6", certificateURL: url), body("WH-6"))
                #expect(answer.json == invalid, "\(url): \(answer.text)")
            }
            var unsigned = try payPalHeaders(fixture, body: body("WH-7"), transmission: "t-7")
            unsigned.removeAll { $0.0 == "PAYPAL-TRANSMISSION-SIG" }
            let missing = try await post(unsigned, body("WH-7"))
            #expect(missing.json == .object([("error", .string("signature_missing"))]))
            // A signed header missing is the signature missing, not a wrong one.
            for name in ["PAYPAL-TRANSMISSION-ID", "PAYPAL-TRANSMISSION-TIME", "PAYPAL-CERT-URL"] {
                var partial = try payPalHeaders(fixture, body: body("WH-8"), transmission: "t-8")
                partial.removeAll { $0.0 == name }
                let answer = try await post(partial, body("WH-8"))
                #expect(answer.json == .object([("error", .string("signature_missing"))]), "\(name): \(answer.text)")
            }
            // The transmission time is signed: one outside the tolerance is a replay, even
            // with a good signature; one that is not RFC 3339 is refused too. Far outside the
            // 300 s (a second passing before the bridge reads its clock can't bring one in).
            let now = Timestamp.now().secondsSince1970
            for (offset, label) in [(-900, "stale"), (900, "ahead")] {
                let time = Timestamp(secondsSince1970: now + Int64(offset)).rfc3339
                let answer = try await post(
                    try payPalHeaders(fixture, body: body("WH-9"), transmission: "t-9", time: time), body("WH-9"))
                #expect(answer.json == .object([("error", .string("timestamp_expired"))]), "\(label): \(answer.text)")
            }
            let unreadable = try await post(
                try payPalHeaders(fixture, body: body("WH-9"), transmission: "t-9", time: "\(now)"), body("WH-9"))
            #expect(unreadable.json == invalid, "\(unreadable.text)")

            let lines = try bridge.lines("events.jsonl")
            #expect(lines.map { $0["id"] } == [.string("WH-1"), .string("WH-2")])
            #expect(
                lines.allSatisfy {
                    $0["type"] == .string("PAYMENT.CAPTURE.COMPLETED") && $0["webhookscheme"] == .string("paypal")
                })
            #expect(fixture.paths == ["GET /v1/notifications/certs/CERT-360caa42-test"], "\(fixture.paths)")
        }
    }
}

private final class AnsweredCount: Sendable {
    let count = Mutex(0)
}
