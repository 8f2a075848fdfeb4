import BridgeTestSupport
import Foundation
import Testing
import WebhookCore
import WebhookEncoding

@Suite("The command line", .serialized)
struct CLITests {
    @Test("check-config lists each source of a valid file and exits 0")
    func checkConfigValid() throws {
        let example = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("config.example.json").path
        let result = try CLI.run(["check-config", example])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("source github: POST /webhooks/github scheme=github sinks=archive"))
    }

    @Test("check-config prints each problem as PATH: json.path: what is wrong and exits 1")
    func checkConfigInvalid() throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let path = directory.file("bad.json")
        try Data(
            #"{"sinks": {"a": {"type": "file"}}, "sources": {"s": {"path": "/s", "verify": {"scheme": "github", "secrets": ["${UNSET_FOR_TEST}"]}, "sinks": ["a"]}}}"#
                .utf8
        )
        .write(to: URL(fileURLWithPath: path))
        let result = try CLI.run(["check-config", path])
        #expect(result.status == 1)
        #expect(
            result.stderr.split(separator: "\n").map(String.init) == [
                "\(path): sources.s.verify.secrets[0]: environment variable UNSET_FOR_TEST is not set (write ${UNSET_FOR_TEST:-fallback} for a default)",
                "\(path): sinks.a.path: is required",
            ])
    }

    @Test("check-config refuses empty or blank credentials and key parts, naming each path: basic from two empty variables, a bare whsec_, blank secrets and tokens")
    func checkConfigEmptyCredentials() throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let path = directory.file("empty.json")
        try Data(
            #"""
            {"sinks": {"a": {"type": "file", "path": "/tmp/a.jsonl"}},
             "sources": {"basic": {"path": "/b", "verify": {"scheme": "basic", "secrets": ["${HOOK_USER}:${HOOK_PASS}"]}, "sinks": ["a"]},
                         "half": {"path": "/h", "verify": {"scheme": "basic", "secrets": ["hooks:", "ok:pw"]}, "sinks": ["a"]},
                         "stripe": {"path": "/s", "verify": {"scheme": "stripe", "secrets": ["whsec_"]}, "sinks": ["a"]},
                         "gh": {"path": "/g", "verify": {"scheme": "github", "secrets": ["good", "  "]}, "sinks": ["a"]},
                         "tg": {"path": "/t", "verify": {"scheme": "telegram", "secrets": ["\t"]}, "sinks": ["a"]},
                         "meta": {"path": "/m", "verify": {"scheme": "meta", "secrets": ["app"], "verifyToken": " "}, "sinks": ["a"]},
                         "svix": {"path": "/x", "verify": {"scheme": "svix", "secrets": ["whsec_"]}, "sinks": ["a"]}}}
            """#.utf8
        )
        .write(to: URL(fileURLWithPath: path))
        let result = try CLI.run(["check-config", path], environment: ["HOOK_USER": "", "HOOK_PASS": ""])
        #expect(result.status == 1)
        let paths = result.stderr.split(separator: "\n").map { line in
            String(line.dropFirst(path.count + 2).prefix { $0 != ":" })
        }
        #expect(
            Set(paths) == [
                "sources.basic.verify.secrets[0]", "sources.half.verify.secrets[0]", "sources.stripe.verify.secrets[0]",
                "sources.gh.verify.secrets[1]", "sources.tg.verify.secrets[0]", "sources.meta.verify.verifyToken",
                "sources.svix.verify.secrets[0]",
            ], "\(result.stderr)")
        #expect(!result.stderr.contains("ok:pw"), "a secret is never printed")
    }

    @Test("one check-config run lists the structural problems and those only the sink libraries judge (librdkafka's properties, Redis URLs)")
    func checkConfigOneRun() throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let path = directory.file("bad.json")
        try Data(
            #"""
            {"idempotency": {"store": "redis", "url": "redis://cache:notaport"},
             "sinks": {"bus": {"type": "kafka", "brokers": "k:9092", "topic": "t", "properties": {"linger.ms": "soon"}},
                       "jobs": {"type": "redis", "url": "http://cache:6379", "stream": "s"}},
             "sources": {"s": {"path": "/s", "verify": {"scheme": "github"}, "sinks": ["bus", "jobs"]}}}
            """#.utf8
        )
        .write(to: URL(fileURLWithPath: path))
        let result = try CLI.run(["check-config", path])
        #expect(result.status == 1)
        let paths = result.stderr.split(separator: "\n").map { line in
            line.dropFirst(path.count + 2).prefix { $0 != ":" }
        }
        #expect(
            Set(paths) == ["idempotency.url", "sinks.bus.properties.linger.ms", "sinks.jobs.url", "sources.s.verify.secrets"],
            "\(result.stderr)")
    }

    @Test("serve answers what send signs, and stops with exit 0 on SIGTERM")
    func serveAndSend() throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let port = try RedisServer.freePort()
        let config = directory.file("config.json")
        try Data(
            """
            {"listen": {"host": "127.0.0.1", "port": \(port)},
             "sinks": {"archive": {"type": "file", "path": "\(directory.file("events.jsonl"))"}},
             "sources": {"gh": {"path": "/gh", "verify": {"scheme": "github", "secrets": ["${GH_SECRET}"]}, "sinks": ["archive"]}}}
            """.utf8
        ).write(to: URL(fileURLWithPath: config))
        // No --config: WEBHOOK_BRIDGE_CONFIG names it. Returns once the server logs that it listens.
        let server = try BridgeProcess(config: nil, environment: ["WEBHOOK_BRIDGE_CONFIG": config, "GH_SECRET": "s3"])

        let body = directory.file("body.json")
        try Data(#"{"hello": "world"}"#.utf8).write(to: URL(fileURLWithPath: body))
        let sent = try CLI.run([
            "send", "http://127.0.0.1:\(port)/gh", "--scheme", "github", "--secret", "s3", "--body", body, "--id", "cli-1",
        ])
        #expect(sent.status == 0, "\(sent.stderr)")
        #expect(sent.stdout.hasPrefix("200 OK\n{\"id\":\"cli-1\",\"status\":\"accepted\"}"))
        let wrong = try CLI.run(["send", "http://127.0.0.1:\(port)/gh", "--scheme", "github", "--secret", "nope", "--body", body])
        #expect(wrong.status == 1)
        #expect(wrong.stdout.hasPrefix("401 Unauthorized"))
        let signed = try CLI.run(["sign", "--scheme", "github", "--secret", "s3", "--body", body, "--id", "cli-1"])
        #expect(signed.stdout.split(separator: "\n").contains("X-GitHub-Delivery: cli-1"))
        #expect(signed.stdout.split(separator: "\n").contains { $0.hasPrefix("X-Hub-Signature-256: sha256=") })

        // Prometheus text after that known traffic: one accepted, one refused.
        let metrics = try KeepAliveConnection(port: port).get("/metrics")
        #expect(metrics.status == 200)
        let samples = Dictionary(
            metrics.body.split(separator: "\n").filter { !$0.hasPrefix("#") }.compactMap { line -> (String, Double)? in
                guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else {
                    return nil
                }
                return (String(line[..<space]), value)
            }, uniquingKeysWith: { $1 })
        #expect(
            samples[#"webhook_verifications_total{webhook_source="gh",webhook_result="ok",webhook_key="0"}"#] == 1, "\(metrics.body)")
        #expect(samples[#"webhook_verifications_total{webhook_source="gh",webhook_result="signature_invalid"}"#] == 1)
        #expect(samples[#"webhook_requests_total{webhook_source="gh",http_status="200"}"#] == 1)
        #expect(samples[#"webhook_requests_total{webhook_source="gh",http_status="401"}"#] == 1)
        #expect(samples[#"webhook_sink_deliveries_total{sink_name="archive",sink_result="ok"}"#] == 1)
        #expect(samples[#"webhook_idempotency_total{webhook_source="gh",webhook_outcome="new"}"#] == 1)

        #expect(server.terminate() == 0)  // SIGTERM: a graceful stop exits 0
        let lines = try String(contentsOfFile: directory.file("events.jsonl"), encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 1)
    }

    @Test("serve in a directory without config.json (no --config, no $WEBHOOK_BRIDGE_CONFIG) exits 1 saying where a config comes from")
    func serveWithoutConfig() throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let tool = Process()
        tool.executableURL = CLI.binary
        tool.arguments = ["serve"]
        tool.currentDirectoryURL = URL(fileURLWithPath: directory.path)
        tool.environment = ProcessInfo.processInfo.environment.filter { $0.key != "WEBHOOK_BRIDGE_CONFIG" }
        let output = Pipe()
        tool.standardError = output
        try tool.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        tool.waitUntilExit()
        #expect(tool.terminationStatus == 1)
        #expect(text.hasPrefix("webhook-bridge: config.json: $: cannot read the file: No such file or directory"), "\(text)")
        #expect(text.contains("pass --config PATH, or start from config.example.json"), "\(text)")
        #expect(text.split(separator: "\n").count == 1, "one clear line: \(text)")
    }

    /// A config with one file sink, `again`, writing `replayed.jsonl` in `directory`; its path.
    func replayConfig(in directory: TemporaryDirectory) throws -> String {
        let config = directory.file("config.json")
        try Data(
            """
            {"sinks": {"again": {"type": "file", "path": "\(directory.file("replayed.jsonl"))"}},
             "sources": {"s": {"path": "/s", "verify": {"scheme": "none"}, "sinks": ["again"]}}}
            """.utf8
        ).write(to: URL(fileURLWithPath: config))
        return config
    }

    @Test("replay re-delivers dead letters and file-sink lines into a sink, keeping ids and bytes")
    func replay() throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let config = try replayConfig(in: directory)
        let binaryBody: [UInt8] = [0x00, 0xFF, 0x0A, 0x41]
        let lines = [
            #"{"specversion":"1.0","id":"dl-1","source":"stripe","type":"charge.failed","time":"2026-11-29T18:00:00.000Z","webhookscheme":"stripe","webhookkey":0,"deadlettersink":"bus","deadletterreason":"too large","data_base64":"\#(Base64.encode(binaryBody))"}"#,
            #"{"specversion":"1.0","id":"fs-2","source":"github","type":"push","time":"2026-11-29T18:00:01.000Z","datacontenttype":"application/json","webhookscheme":"github","webhookkey":1,"data":{"a":[1,2]}}"#,
        ]
        let input = directory.file("dead-letter.jsonl")
        try Data((lines.joined(separator: "\n") + "\nnot json\n").utf8).write(to: URL(fileURLWithPath: input))
        let partial = try CLI.run(["replay", "--config", config, "--from", input, "--sink", "again"])
        #expect(partial.status == 1)
        #expect(partial.stderr.contains("\(input):3: "))
        #expect(partial.stdout.contains("replayed 2 event(s) into again, 1 failed"))

        let replayed = try String(contentsOfFile: directory.file("replayed.jsonl"), encoding: .utf8).split(separator: "\n")
            .map { try JSONParser.parse(Array($0.utf8)) }
        #expect(replayed.map { $0["id"] } == [.string("dl-1"), .string("fs-2")])
        #expect(replayed[0]["data_base64"].flatMap { $0.scalarText }.flatMap { Base64.decode($0) } == binaryBody)
        #expect(replayed[0]["time"] == .string("2026-11-29T18:00:00.000Z"))
        #expect(replayed[1]["data"] == (try JSONParser.parse(Array(#"{"a":[1,2]}"#.utf8))))
        #expect(replayed[1]["webhookkey"] == .number("1"))

        try Data(lines.joined(separator: "\n").utf8).write(to: URL(fileURLWithPath: input))
        let clean = try CLI.run(["replay", "--config", config, "--from", input, "--sink", "again"])
        #expect(clean.status == 0, "\(clean.stderr)")
        let unknown = try CLI.run(["replay", "--config", config, "--from", input, "--sink", "nope"])
        #expect(unknown.status == 1)
        #expect(unknown.stderr.contains("no sink named \"nope\""))
    }

    @Test("replay reports a bad line by its line number in the file, blank lines counted")
    func replayLineNumbers() throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let config = try replayConfig(in: directory)
        let good = #"{"specversion":"1.0","id":"b-1","source":"s","type":"t","time":"2026-11-29T18:00:00.000Z","webhookscheme":"none","webhookkey":0,"data":{}}"#
        let input = directory.file("events.jsonl")
        // Line 1 good, 2 and 3 blank, 4 bad, 5 blank (spaces), 6 bad.
        try Data("\(good)\n\n\nnot json\n  \n{\"id\": 1}\n".utf8).write(to: URL(fileURLWithPath: input))
        let result = try CLI.run(["replay", "--config", config, "--from", input, "--sink", "again"])
        #expect(result.status == 1)
        let reported = result.stderr.split(separator: "\n").filter { $0.hasPrefix(input + ":") }
            .map { $0.dropFirst(input.count + 1).prefix { $0 != ":" } }
        #expect(reported == ["4", "6"], "\(result.stderr)")
        #expect(result.stdout.contains("replayed 1 event(s) into again, 2 failed"))
    }

    @Test("every failure exits 1, usage errors included (SPEC section 2), and --help exits 0")
    func exitCodes() throws {
        let badURL = try CLI.run(["send", "not-a-url", "--scheme", "github", "--secret", "s", "--body", "-"])
        #expect(badURL.status == 1, "\(badURL.stderr)")
        #expect(badURL.stderr.contains("not-a-url"))
        let noBody = try CLI.run(["send", "http://127.0.0.1:1/x", "--scheme", "github", "--secret", "s", "--body", "/no/such"])
        #expect(noBody.status == 1, "\(noBody.stderr)")
        let unknownScheme = try CLI.run(["sign", "--scheme", "nope", "--secret", "s"])
        #expect(unknownScheme.status == 1)
        let missingOption = try CLI.run(["sign", "--secret", "s"])
        #expect(missingOption.status == 1)
        #expect(try CLI.run(["--help"]).status == 0)
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let broken = directory.file("broken.json")
        try Data("{ nope".utf8).write(to: URL(fileURLWithPath: broken))
        let invalid = try CLI.run(["check-config", broken])
        #expect(invalid.status == 1)
        // Even a document-level problem has a JSON path: `$`, the root.
        #expect(invalid.stderr.hasPrefix("\(broken): $: "), "\(invalid.stderr)")
    }

    @Test("SIGHUP takes a rotated secret without dropping connections; an invalid config is refused and the old kept")
    func reload() throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let port = try RedisServer.freePort()
        let config = directory.file("config.json")
        func write(secrets: String) throws {
            try Data(
                """
                {"listen": {"host": "127.0.0.1", "port": \(port)},
                 "sinks": {"archive": {"type": "file", "path": "\(directory.file("events.jsonl"))"}},
                 "sources": {"gh": {"path": "/gh", "verify": {"scheme": "github", "secrets": \(secrets)}, "sinks": ["archive"]}}}
                """.utf8
            ).write(to: URL(fileURLWithPath: config))
        }
        try write(secrets: #"["old-secret"]"#)
        let server = try BridgeProcess(config: config)  // returns once it logs that it listens

        let connection = try KeepAliveConnection(port: port)
        let first = #"{"n": 1}"#
        #expect(
            try connection.post("/gh", headers: githubHeaders(first, delivery: "h-1", secret: "old-secret"), body: first).status
                == 200)

        // Rotation: the new secret first, the old one still accepted until the provider switches.
        try write(secrets: #"["new-secret", "old-secret"]"#)
        #expect(server.reload(), "\(server.logText)")
        let second = #"{"n": 2}"#
        let rotated = try connection.post(
            "/gh", headers: githubHeaders(second, delivery: "h-2", secret: "new-secret"), body: second)
        #expect(rotated.status == 200, "\(rotated.body)")

        // An invalid config is refused; the running one keeps working on the same connection.
        try Data("{ not json".utf8).write(to: URL(fileURLWithPath: config))
        let beforeRefusal = server.logLength
        server.hangUp()
        #expect(server.waitForLog("config reload refused", after: beforeRefusal), "\(server.logText)")
        let third = #"{"n": 3}"#
        #expect(
            try connection.post("/gh", headers: githubHeaders(third, delivery: "h-3", secret: "new-secret"), body: third).status
                == 200)

        #expect(server.terminate() == 0)
    }
}
