import FileSink
import KafkaSink
import RedisSink
import Testing
import WebhookBridge
import WebhookCore
import WebhookProviders

@Suite("Config loading (SPEC section 3)")
struct ConfigLoaderTests {
    static let minimal = """
        {
          "sinks": { "archive": { "type": "file", "path": "./var/events.jsonl" } },
          "sources": {
            "github": { "path": "/webhooks/github",
                        "verify": { "scheme": "github", "secrets": ["${GITHUB_SECRET}"] },
                        "sinks": ["archive"] }
          }
        }
        """

    func load(_ text: String, environment: [String: String] = [:]) throws(ConfigError) -> BridgeConfig {
        try Bridge.loadConfig(Array(text.utf8), environment: environment)
    }

    func problems(_ text: String, environment: [String: String] = [:]) -> [String] {
        do {
            _ = try load(text, environment: environment)
            return []
        } catch {
            return error.problems.map(\.description)
        }
    }

    @Test("a minimal config loads with the documented defaults")
    func defaults() throws {
        let config = try load(Self.minimal, environment: ["GITHUB_SECRET": "s3cret"])
        #expect(config.listen.host == "0.0.0.0")
        #expect(config.listen.port == 8080)
        #expect(config.limits.maxBodyBytes == 1_048_576)
        #expect(config.limits.ackTimeoutMs == 5000)
        #expect(config.idempotency.store.type == "memory")
        #expect(config.idempotency.ttlSeconds == 86_400)
        #expect(config.spool == nil)
        #expect(config.sources["github"]?.path == "/webhooks/github")
        #expect(config.sources["github"]?.scheme.name == "github")
        #expect(config.sinks["archive"]?.required == true)
    }

    @Test("an unset variable without a fallback is an error that names it")
    func unsetVariable() {
        #expect(
            problems(Self.minimal) == [
                "sources.github.verify.secrets[0]: environment variable GITHUB_SECRET is not set (write ${GITHUB_SECRET:-fallback} for a default)"
            ])
    }

    @Test("${NAME:-fallback} falls back when NAME is unset and is replaced when set")
    func fallback() throws {
        let text = """
            {"listen": {"host": "${HOST:-127.0.0.1}", "port": 9000},
             "sinks": {"a": {"type": "file", "path": "${DIR:-/tmp}/x-${NAME:-y}.jsonl"}},
             "sources": {"s": {"path": "/s", "verify": {"scheme": "none"}, "sinks": ["a"]}}}
            """
        let unset = try load(text)
        #expect(unset.listen.host == "127.0.0.1")
        let path = try #require(unset.sinks["a"]?.settings as? FileSinkSettings).path
        #expect(path.description == "/tmp/x-y.jsonl")
        let set = try load(text, environment: ["HOST": "::1", "NAME": "z"])
        #expect(set.listen.host == "::1")
        let setPath = try #require(set.sinks["a"]?.settings as? FileSinkSettings).path
        #expect(setPath.description == "/tmp/x-z.jsonl")
    }

    @Test("unknown keys are errors at their path, with a suggestion for typos")
    func unknownKeys() {
        let text = """
            {"listen": {"prot": 1},
             "sinks": {"a": {"type": "file", "path": "x", "fsync": true}},
             "sources": {"s": {"path": "/s", "verify": {"scheme": "none"}, "sinks": ["a"], "extra": 1}}}
            """
        #expect(
            problems(text) == [
                "listen.prot: unknown key; did you mean \"port\"?",
                "sinks.a.fsync: unknown key",
                "sources.s.extra: unknown key",
            ])
    }

    @Test("every problem is reported with its JSON path, in one pass")
    func manyProblems() {
        let text = """
            {"listen": {"port": 70000},
             "limits": {"maxBodyBytes": "big"},
             "sinks": {"a": {"type": "file"}, "b": {"type": "s3"}},
             "sources": {
               "gh": {"path": "hooks", "verify": {"scheme": "github", "secrets": []}, "sinks": ["a", "nope"]},
               "x": {"path": "/x", "verify": {"scheme": "gitgub", "secrets": ["k"]}, "sinks": ["a"], "routes": []},
               "y": {"path": "/y", "sinks": ["a"]}
             }}
            """
        #expect(
            problems(text) == [
                "listen.port: must be between 0 and 65535",
                "limits.maxBodyBytes: must be an integer, not a string",
                "sinks.a.path: is required",
                "sinks.b.type: must be \"file\", \"kafka\", \"redis\" or \"http\", not \"s3\"",
                "sources.gh.path: must start with /",
                "sources.gh.verify.secrets: must not be empty",
                "sources.gh.sinks[1]: no sink named \"nope\" (sinks: a, b)",
                "sources.x.verify.scheme: unknown scheme \"gitgub\"; did you mean \"github\"?",
                "sources.x: has both sinks and routes; use one",
                "sources.y.verify: is required",
            ])
    }

    @Test("idempotency: the store's library reads its own keys; another store's key, an unknown store and typos are named")
    func storeProblems() {
        func idempotency(_ json: String) -> [String] {
            problems(
                """
                {"idempotency": \(json), "sinks": {"a": {"type": "file", "path": "x"}},
                 "sources": {"s": {"path": "/s", "verify": {"scheme": "none"}, "sinks": ["a"]}}}
                """)
        }
        #expect(idempotency(#"{"url": "redis://127.0.0.1:6379"}"#) == ["idempotency.url: only the redis store takes a url"])
        #expect(idempotency(#"{"store": "redis"}"#) == ["idempotency.url: is required"])
        #expect(
            idempotency(#"{"store": "mongo", "url": "mongodb://x"}"#) == [
                "idempotency.store: must be \"memory\" or \"redis\", not \"mongo\""
            ])
        #expect(
            idempotency(#"{"store": "redis", "url": "redis://127.0.0.1:6379", "ttlSecond": 5}"#) == [
                "idempotency.ttlSecond: unknown key; did you mean \"ttlSeconds\"?"
            ])
        #expect(idempotency(#"{"store": "redis", "url": "http://x"}"#).first?.hasPrefix("idempotency.url: ") == true)
    }

    @Test("sinks: each library reads its own keys; two file sinks can't share a path")
    func sinkLibraries() {
        let text = """
            {"sinks": {"a": {"type": "file", "path": "x.jsonl"}, "b": {"type": "file", "path": "x.jsonl"},
                       "k": {"type": "kafka", "brokers": "b:9092", "topic": "t", "stream": "s"},
                       "r": {"type": "redis", "url": "redis://127.0.0.1:6379", "stream": "s", "properties": {}}},
             "sources": {"s": {"path": "/s", "verify": {"scheme": "none"}, "sinks": ["a"]}}}
            """
        #expect(
            problems(text).sorted() == [
                "sinks.b.path: is also the path of sink \"a\"; two sinks can't append to one file",
                "sinks.k.stream: unknown key",
                "sinks.r.properties: unknown key",
            ])
    }

    @Test("verify.scheme none must be written out")
    func verifyRequired() {
        let text = """
            {"sinks": {"a": {"type": "file", "path": "x"}},
             "sources": {"s": {"path": "/s", "sinks": ["a"]}}}
            """
        #expect(problems(text) == ["sources.s.verify: is required"])
    }

    @Test("malformed JSON is reported with line and column")
    func malformedJSON() {
        #expect(problems("{\n  \"sinks\": {,\n}") == ["$: not valid JSON at line 2, column 13: expected a member name"])
    }

    @Test("two sources can't share a path, and the bridge's own paths are reserved")
    func paths() {
        let text = """
            {"sinks": {"a": {"type": "file", "path": "x"}},
             "sources": {"s": {"path": "/same", "verify": {"scheme": "none"}, "sinks": ["a"]},
                         "t": {"path": "/same", "verify": {"scheme": "none"}, "sinks": ["a"]},
                         "u": {"path": "/healthz", "verify": {"scheme": "none"}, "sinks": ["a"]}}}
            """
        #expect(
            problems(text) == [
                "sources.t.path: \"/same\" is already the path of source \"s\"",
                "sources.u.path: /healthz is served by the bridge itself",
            ])
    }

    @Test("templates, redis URLs, CIDRs and standard-webhooks secrets are checked")
    func valueChecks() {
        let text = """
            {"sinks": {"k": {"type": "kafka", "brokers": "b:9092", "topic": "t.{source", "key": "{header:}"},
                       "r": {"type": "redis", "url": "http://x", "stream": "s"}},
             "sources": {"s": {"path": "/s", "verify": {"scheme": "standard-webhooks", "secrets": ["whsec_!!"]},
                               "sinks": ["k"], "allow": ["10.0.0.0/33"], "rateLimit": {"perSecond": 0}}}}
            """
        #expect(
            problems(text) == [
                "sinks.k.topic: unmatched '{'; placeholders look like {source}",
                "sinks.k.key: unknown placeholder {header:}; use {source}, {type}, {id}, {header:Name} or {json:/pointer}",
                "sinks.r.url: must start with redis://, rediss:// or unix://",
                "sources.s.verify.secrets[0]: must be whsec_ followed by base64 (or whpk_ and a public key)",
                "sources.s.allow[0]: \"10.0.0.0/33\" is not an IPv4 or IPv6 address or CIDR",
                "sources.s.rateLimit.perSecond: must be greater than 0",
            ])
    }

    @Test("two file sinks can't share a file")
    func sharedFile() {
        let text = """
            {"sinks": {"a": {"type": "file", "path": "x.jsonl"}, "b": {"type": "file", "path": "x.jsonl"}},
             "sources": {"s": {"path": "/s", "verify": {"scheme": "none"}, "sinks": ["a", "b"]}}}
            """
        #expect(problems(text) == ["sinks.b.path: is also the path of sink \"a\"; two sinks can't append to one file"])
    }

    @Test("an hmac timestamp header without {timestamp} in signedContent is valid, with a warning")
    func unsignedTimestamp() throws {
        let text = """
            {"sinks": {"a": {"type": "file", "path": "x"}},
             "sources": {"s": {"path": "/s", "sinks": ["a"],
                               "verify": {"scheme": "hmac", "secrets": ["k"], "header": "X-Sig", "timestampHeader": "X-Ts",
                                          "idPointer": "id"}}}}
            """
        #expect(problems(text) == ["sources.s.verify.idPointer: must be a JSON pointer starting with /"])
        // Without the other mistake the config is valid (SPEC section 4 lists timestampHeader and
        // signedContent as independent options), with a warning that the timestamp is unsigned.
        let valid = try load(text.replacingOccurrences(of: #""idPointer": "id""#, with: #""idPointer": "/id""#))
        #expect(valid.warnings.map(\.path) == ["sources.s.verify.signedContent"])
    }

    @Test("jwt with jwksUrl and no audience (nor claims) is warned about; with an audience it is not")
    func jwtWithoutAudience() throws {
        let text = """
            {"sinks": {"a": {"type": "file", "path": "x"}},
             "sources": {"j": {"path": "/j", "sinks": ["a"],
                               "verify": {"scheme": "jwt", "jwksUrl": "https://keys.example.com/jwks", "algorithms": ["RS256"]}}}}
            """
        #expect(try load(text).warnings.map(\.path) == ["sources.j.verify.audience"])
        let withAudience = text.replacingOccurrences(
            of: #""algorithms""#, with: #""audience": "https://hooks.example.com", "algorithms""#)
        #expect(try load(withAudience).warnings.isEmpty)
    }

    @Test("mailgun: a tolerance whose replay window outlives idempotency.ttlSeconds is warned about")
    func mailgunReplayWindow() throws {
        let text = """
            {"idempotency": {"ttlSeconds": 600},
             "sinks": {"a": {"type": "file", "path": "x"}},
             "sources": {"m": {"path": "/m", "sinks": ["a"], "verify": {"scheme": "mailgun", "secrets": ["k"], "toleranceSeconds": 301}}}}
            """
        #expect(try load(text).warnings.map(\.path) == ["sources.m.verify.toleranceSeconds"])
        #expect(try load(text.replacingOccurrences(of: "301", with: "300")).warnings.isEmpty)
    }

    @Test("a route after a catch-all is valid but warned about as never used")
    func unreachableRoute() throws {
        let text = """
            {"sinks": {"a": {"type": "file", "path": "x"}, "b": {"type": "file", "path": "y"}},
             "sources": {"s": {"path": "/s", "verify": {"scheme": "none"},
                               "routes": [{"sinks": ["a"]}, {"types": ["x.*"], "sinks": ["b"]}]}}}
            """
        let config = try load(text)
        #expect(
            config.warnings.map(\.description) == [
                "sources.s.routes[1]: is never used: routes[0] has no types or match and takes every event"
            ])
    }

    @Test("the SPEC's sink and idempotency settings load")
    func specSinks() throws {
        let text = """
            {"idempotency": {"store": "redis", "url": "redis://127.0.0.1:6379/0", "ttlSeconds": 60},
             "spool": {"directory": "./var/spool", "maxBytes": 1073741824},
             "sinks": {
               "bus": {"type": "kafka", "brokers": "localhost:9092", "topic": "webhooks.{source}",
                       "key": "{id}", "properties": {"compression.type": "lz4", "linger.ms": 5}},
               "jobs": {"type": "redis", "url": "redis://127.0.0.1:6379/0", "stream": "webhooks:{source}",
                        "maxLength": 1000000, "required": false}},
             "sources": {"s": {"path": "/s", "verify": {"scheme": "none"},
                               "routes": [{"types": ["payment_intent.*"], "sinks": ["bus"]}, {"sinks": ["jobs"]}]}}}
            """
        let config = try load(text)
        #expect(config.idempotency.store.type == "redis")
        #expect((config.idempotency.store.settings as? RedisIdempotencyStoreFactory.Settings)?.url == "redis://127.0.0.1:6379/0")
        #expect(config.spool?.maxBytes == 1_073_741_824)
        let bus = try #require(config.sinks["bus"]?.settings as? KafkaSinkSettings)
        #expect(bus.brokers == "localhost:9092")
        #expect(bus.topic.description == "webhooks.{source}")
        #expect(bus.key.description == "{id}")
        #expect(bus.properties == ["compression.type": "lz4", "linger.ms": "5"])
        let jobs = try #require(config.sinks["jobs"]?.settings as? RedisStreamSinkSettings)
        #expect(
            jobs.url == "redis://127.0.0.1:6379/0" && jobs.stream.description == "webhooks:{source}"
                && jobs.maxLength == 1_000_000)
        #expect(config.sinks["jobs"]?.required == false)
        #expect(config.sources["s"]?.routes.sinks(forType: "payment_intent.created") == ["bus"])
        #expect(config.sources["s"]?.routes.sinks(forType: "charge.failed") == ["jobs"])
    }
}

@Suite("Config loader under random input")
struct ConfigFuzzTests {
    @Test("random and mutated documents: a config or a list of problems, never a crash")
    func fuzz() {
        var generator = SystemRandomNumberGenerator()
        let seed = Array(ConfigLoaderTests.minimal.utf8)
        let alphabet = Array(#"{}[]":,${}-0123456789.eE truefalsnul\"#.utf8)
        for round in 0..<3000 {
            var bytes = seed
            if round % 3 == 0 {
                bytes = (0..<Int.random(in: 0..<200, using: &generator)).map { _ in alphabet.randomElement(using: &generator)! }
            } else {
                for _ in 0..<Int.random(in: 1...8, using: &generator) {
                    let position = Int.random(in: 0..<bytes.count, using: &generator)
                    switch Int.random(in: 0..<3, using: &generator) {
                    case 0: bytes[position] = alphabet.randomElement(using: &generator)!
                    case 1: bytes.remove(at: position)
                    default: bytes.insert(alphabet.randomElement(using: &generator)!, at: position)
                    }
                    if bytes.isEmpty { bytes = [0x7B] }
                }
            }
            do {
                _ = try Bridge.loadConfig(bytes, environment: ["GITHUB_SECRET": "s"])
            } catch {
                #expect(!error.problems.isEmpty)
            }
        }
    }
}

@Suite("Provider config problems")
struct ProviderConfigTests {
    func problems(_ text: String) -> [String] {
        do {
            _ = try Bridge.loadConfig(Array(text.utf8), environment: [:])
            return []
        } catch {
            return error.problems.map(\.description)
        }
    }

    @Test("a provider's own config errors name their JSON path")
    func providerProblems() {
        let meta = """
            {"sinks": {"a": {"type": "file", "path": "./x.jsonl"}},
             "sources": {"wa": {"path": "/wa", "verify": {"scheme": "meta", "secrets": ["s"]}, "sinks": ["a"]},
                         "grid": {"path": "/grid", "verify": {"scheme": "event-grid", "secrets": ["c"], "verifyToken": "x"}, "sinks": ["a"]}}}
            """
        let found = problems(meta)
        #expect(
            found.contains("sources.wa.verify.verifyToken: required for scheme meta (the token Meta's GET must present)"),
            "\(found)")
        #expect(found.contains { $0.hasPrefix("sources.grid.verify.verifyToken: unknown key") }, "\(found)")
        let sns = """
            {"sinks": {"a": {"type": "file", "path": "./x.jsonl"}},
             "sources": {"aws": {"path": "/aws", "verify": {"scheme": "sns", "autoConfirm": true}, "sinks": ["a"]}}}
            """
        #expect(problems(sns).contains { $0.hasPrefix("sources.aws.verify.autoConfirm: needs topicArns") }, "\(problems(sns))")
    }
}
