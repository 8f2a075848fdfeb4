import BridgeTestSupport
import Foundation
import Testing

/// The README and docs/ are all users get: every link, repo path, `make` target and
/// subcommand they name exists, and the quick start answers what it says it answers.
@Suite("Docs: README.md and docs/ name what exists, and the quick start runs as written")
struct DocsTests {
    static let root = DeployTests.root

    /// README.md and every page in docs/, by their path from the root.
    static func pages() throws -> [(path: String, text: String)] {
        let docs = try FileManager.default.contentsOfDirectory(atPath: root.appendingPathComponent("docs").path)
            .filter { $0.hasSuffix(".md") }.sorted().map { "docs/\($0)" }
        return try (["README.md"] + docs).map { ($0, try String(contentsOf: root.appendingPathComponent($0), encoding: .utf8)) }
    }

    /// GitHub's anchor for a heading: lower case, spaces to hyphens, punctuation dropped.
    static func anchor(_ heading: String) -> String {
        String(
            heading.lowercased().compactMap { character -> Character? in
                if character == " " { return "-" }
                return character.isLetter || character.isNumber || character == "-" || character == "_" ? character : nil
            })
    }

    /// The text of every code span and fenced block in `text`.
    static func code(_ text: String) -> [String] {
        var pieces: [String] = []
        var fenced: [Substring] = []
        var inFence = false
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("```") {
                if inFence { pieces.append(fenced.joined(separator: "\n")) }
                fenced = []
                inFence.toggle()
            } else if inFence {
                fenced.append(line)
            } else {
                let parts = line.split(separator: "`", omittingEmptySubsequences: false)
                pieces += stride(from: 1, to: parts.count, by: 2).map { String(parts[$0]) }
            }
        }
        return pieces
    }

    @Test("every relative link resolves to a file, and every #anchor to a heading of that page")
    func links() throws {
        let pages = try Self.pages()
        let headings = Dictionary(
            uniqueKeysWithValues: pages.map { page in
                (
                    page.path,
                    Set(
                        page.text.split(separator: "\n").filter { $0.hasPrefix("#") }.map {
                            Self.anchor($0.drop { $0 == "#" }.trimmingCharacters(in: .whitespaces))
                        })
                )
            })
        var checked = 0
        for page in pages {
            let directory = (page.path as NSString).deletingLastPathComponent
            for match in page.text.matches(of: /\]\(([^)\s]+)\)/) {
                let target = String(match.1)
                if target.hasPrefix("http://") || target.hasPrefix("https://") || target.hasPrefix("mailto:") { continue }
                let parts = target.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false)
                let file =
                    parts[0].isEmpty
                    ? page.path : ((directory as NSString).appendingPathComponent(String(parts[0])) as NSString).standardizingPath
                #expect(FileManager.default.fileExists(atPath: Self.root.appendingPathComponent(file).path), "\(page.path): \(target)")
                if parts.count == 2 {
                    #expect(headings[file]?.contains(String(parts[1])) == true, "\(page.path): \(target): no such heading")
                }
                checked += 1
            }
        }
        #expect(checked > 20)
    }

    @Test("every repo path, make target and webhook-bridge subcommand named in code exists")
    func namedThings() throws {
        let makefile = try String(contentsOf: Self.root.appendingPathComponent("Makefile"), encoding: .utf8)
        let targets = Set(makefile.split(separator: "\n").compactMap { line -> String? in
            guard let colon = line.firstIndex(of: ":"), !line.hasPrefix("\t"), !line.hasPrefix("."), !line.hasPrefix("#") else { return nil }
            let name = line[..<colon]
            return name.allSatisfy { $0.isLetter || $0.isNumber || $0 == "-" } ? String(name) : nil
        })
        let help = try CLI.run(["--help"]).stdout
        let subcommands = Set(
            help.components(separatedBy: "SUBCOMMANDS:").last?.split(separator: "\n").compactMap {
                $0.trimmingCharacters(in: .whitespaces).split(separator: " ").first.map(String.init)
            } ?? [])
        #expect(subcommands.isSuperset(of: ["serve", "check-config", "sign", "send", "providers", "replay"]), "\(help)")
        let repoPrefixes = ["deploy/", "docs/", "scripts/", "bench/", "Sources/", "Tests/", "Plugins/", ".ci/"]
        var counts = (paths: 0, makes: 0, commands: 0)
        for page in try Self.pages() {
            for code in Self.code(page.text) {
                for match in code.matches(of: /(?:^|[\s"'(=])((?:deploy|docs|scripts|bench|Sources|Tests|Plugins|\.ci)\/[A-Za-z0-9_.\/-]*)/) {
                    let path = String(match.1).trimmingCharacters(in: CharacterSet(charactersIn: ".,:;"))
                    guard repoPrefixes.contains(where: { path.hasPrefix($0) }), !path.contains("…") else { continue }
                    #expect(FileManager.default.fileExists(atPath: Self.root.appendingPathComponent(path).path), "\(page.path): \(path)")
                    counts.paths += 1
                }
                for match in code.matches(of: /(?:^|[\s])(config[A-Za-z.]*\.json|Containerfile|Package\.swift|Makefile)(?=$|[\s:"'`),])/) {
                    let name = String(match.1)
                    // config.json is the user's own file (copied from config.example.json).
                    if name == "config.json" { continue }
                    #expect(FileManager.default.fileExists(atPath: Self.root.appendingPathComponent(name).path), "\(page.path): \(name)")
                    counts.paths += 1
                }
                for match in code.matches(of: /(?:^|[\s;&(])make ([a-z][a-z-]*)/) {
                    #expect(targets.contains(String(match.1)), "\(page.path): make \(match.1)")
                    counts.makes += 1
                }
                for match in code.matches(of: /(?:^|[\s\/])webhook-bridge ([a-z][a-z-]*)/) {
                    #expect(subcommands.contains(String(match.1)), "\(page.path): webhook-bridge \(match.1)")
                    counts.commands += 1
                }
            }
        }
        #expect(counts.paths > 20 && counts.makes > 5 && counts.commands > 10, "\(counts)")
    }

    @Test("the README's minimal config passes check-config with its one variable set, and names it when unset")
    func minimalConfig() throws {
        let readme = try String(contentsOf: Self.root.appendingPathComponent("README.md"), encoding: .utf8)
        let section = try #require(readme.range(of: "## A minimal config")).upperBound
        let start = try #require(readme.range(of: "```json\n", range: section..<readme.endIndex)).upperBound
        let end = try #require(readme.range(of: "\n```", range: start..<readme.endIndex)).lowerBound
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let config = directory.file("minimal.json")
        try Data(readme[start..<end].utf8).write(to: URL(fileURLWithPath: config))
        let others = ProcessInfo.processInfo.environment.filter { $0.key != "GITHUB_WEBHOOK_SECRET" }
        let valid = try CLI.run(["check-config", config], environment: others.merging(["GITHUB_WEBHOOK_SECRET": "s"]) { $1 })
        #expect(valid.status == 0, "\(valid.stderr)")
        #expect(valid.stdout.contains("github"), "\(valid.stdout)")
        let process = Process()
        process.executableURL = CLI.binary
        process.arguments = ["check-config", config]
        process.environment = others
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = Pipe()
        try process.run()
        let text = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 1)
        #expect(text.contains("sources.github.verify.secrets[0]") && text.contains("GITHUB_WEBHOOK_SECRET"), "\(text)")
    }

    @Test("the README's quick start, run as written against config.example.json, answers what the README shows")
    func quickStart() throws {
        let readme = try String(contentsOf: Self.root.appendingPathComponent("README.md"), encoding: .utf8)
        let blocks = try #require(readme.components(separatedBy: "### Send a signed webhook").last).components(separatedBy: "```sh\n")
            .dropFirst().prefix(2).map { $0.components(separatedBy: "\n```")[0] }
        #expect(blocks.count == 2)
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let port = try RedisServer.freePort()
        let example = try String(contentsOf: Self.root.appendingPathComponent("config.example.json"), encoding: .utf8)
        #expect(example.contains(#""port": 8080"#))
        let config = directory.file("config.json")
        try Data(example.replacingOccurrences(of: #""port": 8080"#, with: #""port": \#(port)"#).utf8).write(to: URL(fileURLWithPath: config))
        // As `make run` starts it: in the checkout (here a scratch directory), so ./var is there.
        let server = try BridgeProcess(
            command: [CLI.binary.path, "serve", "--config", config],
            environment: ProcessInfo.processInfo.environment.filter { !$0.key.hasSuffix("_SECRET") }, directory: directory.path)
        defer { _ = server.terminate() }
        for block in blocks {
            let script = block.replacingOccurrences(of: "127.0.0.1:8080", with: "127.0.0.1:\(port)")
                .replacingOccurrences(of: ".build/debug/webhook-bridge", with: CLI.binary.path)
            let commands = script.split(separator: "\n").filter { !$0.hasPrefix("#") }.joined(separator: "\n")
            let (status, output) = try runTool("/bin/bash", ["-euc", commands], in: URL(fileURLWithPath: directory.path))
            #expect(status == 0, "\(output)")
            // Each answer the block shows in its comments is in what it printed.
            for line in script.split(separator: "\n") where line.hasPrefix("# ") {
                for shown in line.dropFirst(2).components(separatedBy: "   ") where !shown.contains("…") {
                    #expect(output.contains(shown.trimmingCharacters(in: .whitespaces)), "\(shown) not in: \(output)")
                }
            }
        }
        let events = try String(contentsOfFile: directory.file("var/events.jsonl"), encoding: .utf8)
        #expect(events.contains(#""id":"0001""#) && events.contains(#""id":"evt_1""#) && events.contains(#""id":"delivery-2""#), "\(events)")
    }

    @Test("docs/shaping.md's complete example passes check-config, and the dry run prints what the page shows")
    func shapingExample() throws {
        let page = try String(contentsOf: Self.root.appendingPathComponent("docs/shaping.md"), encoding: .utf8)
        let section = String(try #require(page.components(separatedBy: "## A complete example").dropFirst().first))
        func blocks(_ fence: String) -> [String] {
            section.components(separatedBy: "```\(fence)\n").dropFirst().map { $0.components(separatedBy: "\n```")[0] }
        }
        let json = blocks("json")
        let shown = try #require(blocks("text").first)
        #expect(json.count >= 2)
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let config = try writeConfig(json[0], in: directory)
        try Data(json[1].utf8).write(to: URL(fileURLWithPath: directory.file("event.json")))
        let check = try CLI.run(["check-config", config])
        #expect(check.status == 0, "\(check.stderr)")
        let run = try CLI.run(["route", "--config", config, "--source", "stripe", "--body", directory.file("event.json")])
        #expect(run.status == 0)
        #expect(run.stdout == shown + "\n", "\(run.stdout)")
    }
}
