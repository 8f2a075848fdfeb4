import Testing
import WebhookBridge
import WebhookCore

@Suite("${NAME} in numeric and boolean fields")
struct ConfigEnvironmentNumberTests {
    static func config(port: String, extra: String = "") -> String {
        """
        {
          "listen": { "host": "127.0.0.1", "port": \(port) },
          "limits": { "maxBodyBytes": "${MAX_BODY:-2048}" },
          "sinks": { "archive": { "type": "file", "path": "./var/events.jsonl", "required": "${ARCHIVE_REQUIRED:-true}" } },
          "sources": { "gh": { "path": "/gh", "verify": { "scheme": "github", "secrets": ["s"] }, "sinks": ["archive"] } }
          \(extra)
        }
        """
    }

    func problems(_ text: String, environment: [String: String]) -> [String] {
        do {
            _ = try Bridge.loadConfig(Array(text.utf8), environment: environment)
            return []
        } catch {
            return error.problems.map(\.description)
        }
    }

    @Test("a whole-value reference gives a number or a boolean, with its fallback")
    func substituted() throws {
        let config = try Bridge.loadConfig(
            Array(Self.config(port: #""${PORT}""#).utf8), environment: ["PORT": "9090", "ARCHIVE_REQUIRED": "false"])
        #expect(config.listen.port == 9090)
        #expect(config.limits.maxBodyBytes == 2048)
        #expect(config.sinks["archive"]?.required == false)
    }

    @Test("a value that is not a number names its path and says it came from the environment")
    func notANumber() {
        let found = problems(Self.config(port: #""${PORT}""#), environment: ["PORT": "eighty"])
        #expect(found == [#"listen.port: must be an integer, not "eighty" (from the environment)"#])
    }

    @Test("a quoted literal number is still an error: only an environment reference may stand for a number")
    func literalStringRefused() {
        let found = problems(Self.config(port: #""8080""#), environment: [:])
        #expect(found == ["listen.port: must be an integer, not a string"])
    }

    @Test("a reference inside a longer string does not make a number")
    func partialReferenceRefused() {
        let found = problems(Self.config(port: #""80${PORT}""#), environment: ["PORT": "80"])
        #expect(found == ["listen.port: must be an integer, not a string"])
    }
}
