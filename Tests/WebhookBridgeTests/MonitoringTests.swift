import BridgeTestSupport
import Foundation
import Testing
import WebhookCore
import WebhookEncoding

/// The monitoring the repository ships: the Prometheus alerts (deploy/prometheus) with their
/// promtool unit tests, and the Grafana dashboard (deploy/grafana), checked against the
/// metrics the bridge really exports.
@Suite("Monitoring: the Prometheus alerts and the Grafana dashboard")
struct MonitoringTests {
    static let prometheusDirectory = DeployTests.root.appendingPathComponent("deploy/prometheus")
    static let dashboardFile = DeployTests.root.appendingPathComponent("deploy/grafana/webhook-bridge.json")
    /// promtool alone, taken out of Debian's prometheus package by scripts/install-test-tools.sh
    /// (installing the package would also start a Prometheus server), else a system one.
    static var promtoolPath: String? {
        [DeployTests.root.appendingPathComponent(".build-tools/bin/promtool").path, "/usr/bin/promtool"]
            .first { FileManager.default.isExecutableFile(atPath: $0) }
    }
    static var hasPromtool: Bool { promtoolPath != nil }

    /// Runs promtool with `arguments` in `directory`; its exit status and what it printed.
    static func promtool(_ arguments: [String], in directory: URL) throws -> (status: Int32, text: String) {
        let result = try runTool(try #require(promtoolPath), arguments, in: directory)
        return (result.status, result.output)
    }

    /// The names of the alerts in alerts.yaml (`- alert: NAME` lines).
    static func alertNames(_ yaml: String) -> [String] {
        yaml.split(separator: "\n").compactMap { line -> String? in
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            guard trimmed.hasPrefix("- alert:") else { return nil }
            return trimmed.dropFirst("- alert:".count).trimmingCharacters(in: .whitespaces)
        }
    }

    /// The `expr` of every rule in a rule file: the rest of its line, or for a block scalar
    /// (`expr: |`) the lines indented deeper than `expr:`.
    static func ruleExpressions(_ yaml: String) -> [String] {
        let lines = yaml.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        var expressions: [String] = []
        var index = 0
        while index < lines.count {
            let line = lines[index]
            index += 1
            let trimmed = line.drop(while: { $0 == " " })
            guard trimmed.hasPrefix("expr:") else { continue }
            let indent = line.count - trimmed.count
            let rest = trimmed.dropFirst("expr:".count).trimmingCharacters(in: .whitespaces)
            guard rest.hasPrefix("|") || rest.hasPrefix(">") else {
                expressions.append(rest.trimmingCharacters(in: ["'", "\""]))
                continue
            }
            var block: [String] = []
            while index < lines.count,
                lines[index].trimmingCharacters(in: .whitespaces).isEmpty
                    || lines[index].prefix(while: { $0 == " " }).count > indent
            {
                block.append(lines[index])
                index += 1
            }
            expressions.append(block.joined(separator: "\n"))
        }
        return expressions
    }

    /// The bridge's metric names (`webhook_*`, `process_*`) an expression reads: the identifiers
    /// left once label matchers (`{…}`), label lists (`by (…)`, `without (…)`, `on (…)`, …) and
    /// strings are dropped, so label names such as `webhook_source` are not taken for metrics.
    static func metricNames(in expression: String) throws -> Set<String> {
        var text = expression
        for pattern in [
            #"\{[^}]*\}"#, #"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)"#, #""[^"]*""#,
        ] {
            let regex = try Regex(pattern)
            text = text.replacing(regex, with: " ")
        }
        let identifier = try Regex(#"\b(webhook|process)_[A-Za-z0-9_:]*"#)
        return Set(text.matches(of: identifier).map { String(text[$0.range]) })
    }

    /// The `expr` of every query of every panel of the dashboard.
    static func dashboardExpressions() throws -> [String] {
        let dashboard = try JSONParser.parse(Array(try Data(contentsOf: dashboardFile)))
        guard case .some(.array(let panels)) = dashboard["panels"] else { return [] }
        return panels.flatMap { panel -> [String] in
            guard case .some(.array(let targets)) = panel["targets"] else { return [] }
            return targets.compactMap { $0["expr"]?.scalarText }
        }
    }

    @Test(
        "promtool check rules passes on alerts.yaml, and its unit tests (alerts.test.yaml) pass, each alert tested",
        .enabled(if: hasPromtool, "promtool is not installed (scripts/install-test-tools.sh, run by make test)"))
    func alertRules() throws {
        let check = try Self.promtool(["check", "rules", "alerts.yaml"], in: Self.prometheusDirectory)
        #expect(check.status == 0, "\(check.text)")
        #expect(check.text.contains("SUCCESS"), "\(check.text)")
        let unitTests = try Self.promtool(["test", "rules", "alerts.test.yaml"], in: Self.prometheusDirectory)
        #expect(unitTests.status == 0, "\(unitTests.text)")
        #expect(unitTests.text.contains("SUCCESS"), "\(unitTests.text)")
        // Every alert is evaluated at least twice: firing, and silent where it should be.
        let rules = try String(contentsOf: Self.prometheusDirectory.appendingPathComponent("alerts.yaml"), encoding: .utf8)
        let tests = try String(contentsOf: Self.prometheusDirectory.appendingPathComponent("alerts.test.yaml"), encoding: .utf8)
        let names = Self.alertNames(rules)
        #expect(names.count >= 8, "\(names)")
        for name in names {
            let evaluations = tests.components(separatedBy: "alertname: \(name)\n").count - 1
            #expect(evaluations >= 2, "\(name) is evaluated \(evaluations) times in alerts.test.yaml")
        }
    }

    @Test("every metric the alerts and the dashboard query is one GET /metrics exports")
    func metricNamesAreExported() throws {
        // Every metric: traffic for the request counters (a verified and a refused request),
        // a spool for its gauges and the dead letters, a Kafka sink (not required, brokers
        // unreachable) for the producer restarts.
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let port = try RedisServer.freePort()
        let config = try writeConfig(
            """
            {"listen": {"host": "127.0.0.1", "port": \(port)},
             "spool": {"directory": "\(directory.file("spool"))"},
             "sinks": {"archive": {"type": "file", "path": "\(directory.file("events.jsonl"))"},
                       "stream": {"type": "kafka", "brokers": "127.0.0.1:1", "topic": "webhooks", "required": false}},
             "sources": {"gh": {"path": "/gh", "verify": {"scheme": "github", "secrets": ["gh-secret", "old-secret"]}, "sinks": ["archive"]}}}
            """, in: directory)
        let server = try BridgeProcess(config: config)
        let connection = try KeepAliveConnection(port: port)
        let body = #"{"n": 1}"#
        #expect(try connection.post("/gh", headers: githubHeaders(body, delivery: "m-1"), body: body).status == 200)
        let forged = githubHeaders(body, delivery: "m-2", secret: "wrong")
        #expect(try connection.post("/gh", headers: forged, body: body).status == 401)
        let metrics = try connection.get("/metrics")
        #expect(metrics.status == 200)
        #expect(server.terminate() == 0)
        let exported = Set(
            metrics.body.split(separator: "\n").filter { $0.hasPrefix("# TYPE ") }.compactMap {
                $0.split(separator: " ").dropFirst(2).first.map(String.init)
            })
        #expect(exported.contains("webhook_kafka_producer_restarts_total"), "\(metrics.body)")
        #expect(exported.contains("webhook_dead_letters_total"), "\(metrics.body)")
        // A histogram's series (_bucket, _sum, _count) are under its own name's # TYPE line.
        func isExported(_ name: String) -> Bool {
            exported.contains(name)
                || ["_bucket", "_sum", "_count"].contains { suffix in
                    name.hasSuffix(suffix) && exported.contains(String(name.dropLast(suffix.count)))
                }
        }

        let rules = try String(contentsOf: Self.prometheusDirectory.appendingPathComponent("alerts.yaml"), encoding: .utf8)
        let ruleExpressions = Self.ruleExpressions(rules)
        #expect(ruleExpressions.count == Self.alertNames(rules).count, "\(ruleExpressions)")
        var ruleMetrics: Set<String> = []
        for expression in ruleExpressions { ruleMetrics.formUnion(try Self.metricNames(in: expression)) }
        #expect(ruleMetrics.count >= 8, "\(ruleMetrics.sorted())")
        for name in ruleMetrics.sorted() {
            #expect(isExported(name), "alerts.yaml reads \(name), which GET /metrics does not export")
        }

        let dashboardExpressions = try Self.dashboardExpressions()
        #expect(!dashboardExpressions.isEmpty)
        var dashboardMetrics: Set<String> = []
        for expression in dashboardExpressions { dashboardMetrics.formUnion(try Self.metricNames(in: expression)) }
        #expect(dashboardMetrics.count >= 10, "\(dashboardMetrics.sorted())")
        for name in dashboardMetrics.sorted() {
            #expect(isExported(name), "the dashboard reads \(name), which GET /metrics does not export")
        }
    }

    @Test("the dashboard is JSON with unique panel ids; every panel has a grid position, the datasource variable and queries")
    func dashboard() throws {
        let dashboard = try JSONParser.parse(Array(try Data(contentsOf: Self.dashboardFile)))
        #expect(dashboard["schemaVersion"]?.scalarText != nil)
        guard case .some(.array(let variables)) = dashboard["templating"]?["list"] else {
            Issue.record("no templating.list")
            return
        }
        let datasource = variables.first { $0["name"]?.scalarText == "datasource" }
        #expect(datasource?["type"]?.scalarText == "datasource")
        #expect(datasource?["query"]?.scalarText == "prometheus")
        let source = variables.first { $0["name"]?.scalarText == "source" }
        #expect(source?["definition"]?.scalarText?.hasPrefix("label_values(webhook_requests_total") == true)
        #expect(source?["definition"]?.scalarText?.hasSuffix(", webhook_source)") == true)

        guard case .some(.array(let panels)) = dashboard["panels"] else {
            Issue.record("no panels")
            return
        }
        #expect(panels.count >= 10)
        var ids: Set<String> = []
        for panel in panels {
            let title = panel["title"]?.scalarText ?? "?"
            let id = try #require(panel["id"]?.scalarText, "\(title) has no id")
            #expect(ids.insert(id).inserted, "panel id \(id) (\(title)) is used twice")
            for field in ["x", "y", "w", "h"] {
                #expect(panel["gridPos"]?[field]?.scalarText.flatMap { Int($0) } != nil, "\(title): gridPos.\(field)")
            }
            #expect(panel["datasource"]?["uid"]?.scalarText == "${datasource}", "\(title): datasource")
            guard case .some(.array(let targets)) = panel["targets"], !targets.isEmpty else {
                Issue.record("\(title) has no targets")
                continue
            }
            for target in targets {
                #expect(target["datasource"]?["uid"]?.scalarText == "${datasource}", "\(title): a target's datasource")
                #expect(target["expr"]?.scalarText?.isEmpty == false, "\(title): a target without expr")
            }
        }
    }

    @Test(
        "every dashboard query is valid PromQL (promtool check rules on them as recording rules)",
        .enabled(if: hasPromtool, "promtool is not installed (scripts/install-test-tools.sh, run by make test)"))
    func dashboardQueriesParse() throws {
        let expressions = try Self.dashboardExpressions()
        #expect(!expressions.isEmpty)
        // Grafana's variables become what Prometheus would get: a range and a label regex.
        let rangeVariable = try Regex(#"\$__(rate_interval|interval|range)"#)
        let variable = try Regex(#"\$[A-Za-z_]+"#)
        var rules = "groups:\n  - name: dashboard\n    rules:\n"
        for (index, expression) in expressions.enumerated() {
            let query = expression.replacing(rangeVariable, with: "5m").replacing(variable, with: ".*")
            rules += "      - record: dashboard:query_\(index)\n        expr: |\n          \(query)\n"
        }
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        try Data(rules.utf8).write(to: URL(fileURLWithPath: directory.file("dashboard.rules.yaml")))
        let check = try Self.promtool(["check", "rules", "dashboard.rules.yaml"], in: URL(fileURLWithPath: directory.path))
        #expect(check.status == 0, "\(check.text)\n\(rules)")
    }
}
