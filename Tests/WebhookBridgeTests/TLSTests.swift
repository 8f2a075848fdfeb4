import BridgeTestSupport
import Foundation
import NIOSSL
import Testing
import WebhookBridge
import WebhookCore

@Suite("TLS termination")
struct TLSTests {
    /// A self-signed certificate for 127.0.0.1 made with openssl for this test.
    static func makeCertificate(in directory: TemporaryDirectory, name: String = "cert") throws -> (
        certificate: String, key: String
    ) {
        let certificate = directory.file("\(name).pem")
        let key = directory.file("\(name)-key.pem")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        process.arguments = [
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out",
            certificate, "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        try #require(process.terminationStatus == 0, "openssl could not make a certificate")
        return (certificate, key)
    }

    @Test("a signed POST over TLS is accepted; the certificate is the configured one; plain HTTP gets no answer")
    func roundTrip() async throws {
        let keys = TemporaryDirectory()
        defer { keys.cleanup() }
        let (certificate, key) = try Self.makeCertificate(in: keys)
        let config = """
            {"listen": {"host": "127.0.0.1", "port": 0, "tls": {"certificate": "\(certificate)", "privateKey": "\(key)"}},
             "sinks": {"archive": {"type": "file", "path": "{dir}/events.jsonl"}},
             "sources": {"gh": {"path": "/gh", "verify": {"scheme": "github", "secrets": ["gh-secret"]}, "sinks": ["archive"]}}}
            """
        try await RunningBridge.with(config: config) { bridge in
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(certificate))
            let body = #"{"over": "tls"}"#
            let answer = try await WebhookClient.send(
                host: "127.0.0.1", port: bridge.port, path: "/gh", headers: githubHeaders(body, delivery: "tls-1"),
                body: Array(body.utf8), tls: tls)
            #expect(answer.status == .ok)
            #expect(answer.json?["status"] == .string("accepted"))
            #expect(try bridge.lines("events.jsonl").map { $0["id"] } == [.string("tls-1")])

            // A client that does not trust this certificate refuses the connection.
            await #expect(throws: (any Error).self) {
                _ = try await WebhookClient.send(
                    host: "127.0.0.1", port: bridge.port, path: "/gh", body: Array(body.utf8), timeout: .seconds(5),
                    tls: .makeClientConfiguration())
            }
            // Plain HTTP to the TLS port gets no HTTP answer.
            await #expect(throws: (any Error).self) {
                _ = try await WebhookClient.send(
                    host: "127.0.0.1", port: bridge.port, path: "/gh", body: Array(body.utf8), timeout: .seconds(5))
            }
        }
    }

    @Test("an unreadable certificate is a setup error naming listen.tls.certificate")
    func badCertificate() async throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let text = """
            {"listen": {"host": "127.0.0.1", "port": 0, "tls": {"certificate": "\(directory.file("missing.pem"))", "privateKey": "x"}},
             "sinks": {"archive": {"type": "file", "path": "\(directory.file("e.jsonl"))"}},
             "sources": {"gh": {"path": "/gh", "verify": {"scheme": "none"}, "sinks": ["archive"]}}}
            """
        let config = try Bridge.loadConfig(Array(text.utf8), environment: [:])
        await #expect {
            _ = try await Bridge.start(config: config, logger: .init(label: "test"))
        } throws: { error in
            "\(error)".hasPrefix("listen.tls.certificate: cannot load")
        }
    }

    @Test("SIGHUP loads a renewed certificate: new connections get it")
    func reloadCertificate() async throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let first = try Self.makeCertificate(in: directory, name: "first")
        let second = try Self.makeCertificate(in: directory, name: "second")
        let live = (certificate: directory.file("live.pem"), key: directory.file("live-key.pem"))
        func install(_ pair: (certificate: String, key: String)) throws {
            for (from, to) in [(pair.certificate, live.certificate), (pair.key, live.key)] {
                try? FileManager.default.removeItem(atPath: to)
                try FileManager.default.copyItem(atPath: from, toPath: to)
            }
        }
        try install(first)
        let port = try RedisServer.freePort()
        let config = directory.file("config.json")
        try Data(
            """
            {"listen": {"host": "127.0.0.1", "port": \(port), "tls": {"certificate": "\(live.certificate)", "privateKey": "\(live.key)"}},
             "sinks": {"archive": {"type": "file", "path": "\(directory.file("events.jsonl"))"}},
             "sources": {"gh": {"path": "/gh", "verify": {"scheme": "none"}, "sinks": ["archive"]}}}
            """.utf8
        ).write(to: URL(fileURLWithPath: config))
        let bridge = try BridgeProcess(config: config)
        func status(trusting pair: (certificate: String, key: String)) async -> UInt? {
            var tls = TLSConfiguration.makeClientConfiguration()
            guard let roots = try? NIOSSLCertificate.fromPEMFile(pair.certificate) else { return nil }
            tls.trustRoots = .certificates(roots)
            return try? await WebhookClient.send(
                host: "127.0.0.1", port: port, path: "/gh", body: Array("{}".utf8), timeout: .seconds(5), tls: tls
            )
            .status.code
        }
        #expect(await status(trusting: first) == 200)
        #expect(await status(trusting: second) == nil)
        try install(second)
        #expect(try await offThePool { bridge.reload() })
        #expect(await status(trusting: second) == 200)
        #expect(await status(trusting: first) == nil)
        bridge.kill9()
    }
}
