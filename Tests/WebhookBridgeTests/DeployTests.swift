import BridgeTestSupport
import Foundation
import Testing
import WebhookCore
import WebhookProviders

/// The deployment files the repository ships, checked by the real tools.
@Suite("Deploy: the systemd unit and the Kubernetes manifests")
struct DeployTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static var hasSystemdAnalyze: Bool { FileManager.default.isExecutableFile(atPath: "/usr/bin/systemd-analyze") }

    @Test(
        "deploy/systemd/webhook-bridge.service passes systemd-analyze verify",
        .enabled(if: hasSystemdAnalyze, "systemd-analyze is not installed (Debian's systemd package)"))
    func systemdUnit() throws {
        let unit = try String(
            contentsOf: Self.root.appendingPathComponent("deploy/systemd/webhook-bridge.service"), encoding: .utf8)
        // verify checks that ExecStart's binary exists: point it at the one just built.
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let path = directory.file("webhook-bridge.service")
        try Data(unit.replacingOccurrences(of: "/usr/local/bin/webhook-bridge", with: CLI.binary.path).utf8)
            .write(to: URL(fileURLWithPath: path))
        let (status, text) = try runTool("/usr/bin/systemd-analyze", ["verify", path])
        #expect(status == 0, "\(text)")
        #expect(text.isEmpty, "systemd-analyze had remarks: \(text)")
        #expect(unit.contains("ExecReload=/bin/kill -HUP $MAINPID"))
        #expect(unit.contains("StateDirectory=webhook-bridge"))
    }

    /// The first ```sh block after `heading` in a docs/ page, a command a line.
    static func recipe(_ page: String, after heading: String) throws -> [String] {
        let text = try String(contentsOf: root.appendingPathComponent(page), encoding: .utf8)
        let section = try #require(text.range(of: heading)).upperBound
        let start = try #require(text.range(of: "```sh\n", range: section..<text.endIndex)).upperBound
        let end = try #require(text.range(of: "\n```", range: start..<text.endIndex)).lowerBound
        return text[start..<end].split(separator: "\n").map(String.init)
    }

    /// The values of `key=` lines in a unit file.
    static func unitValues(_ unit: String, _ key: String) -> [String] {
        unit.split(separator: "\n").filter { $0.hasPrefix("\(key)=") }.map { String($0.dropFirst(key.count + 1)) }
    }

    @Test(
        "the systemd recipe in docs/deploy.md, run as written, installs a unit whose ExecStart, run as a uid with no account (as DynamicUser=yes), reads its config, serves and writes a signed event into its state directory",
        .enabled(
            if: getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv"),
            "needs root to run as another uid with setpriv"))
    func systemdRecipe() throws {
        let lines = try Self.recipe("docs/deploy.md", after: "## systemd")
        let scratch = TemporaryDirectory()
        defer { scratch.cleanup() }
        chmod(scratch.path, 0o755)
        // The checkout the recipe runs in: the files it names, and the binary the tests built
        // where its build line puts the release binary.
        let checkout = scratch.file("checkout")
        let root = scratch.file("root")
        for directory in [checkout + "/deploy/systemd", checkout + "/.build/release", root] {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        }
        for file in ["config.example.json", "deploy/systemd/webhook-bridge.service"] {
            try FileManager.default.copyItem(atPath: Self.root.appendingPathComponent(file).path, toPath: "\(checkout)/\(file)")
        }
        try FileManager.default.createSymbolicLink(
            atPath: checkout + "/.build/release/webhook-bridge", withDestinationPath: CLI.binary.path)
        let port = try RedisServer.freePort()
        var skipped: [String] = []
        for line in lines {
            if line.hasPrefix("swift build") || line.hasPrefix("systemctl") {
                skipped.append(line)
                continue
            }
            // Into the scratch root: /usr/local/bin and /etc below it.
            let command = line.replacingOccurrences(of: " /usr/local/bin/", with: " \(root)/usr/local/bin/")
                .replacingOccurrences(of: " /etc/", with: " \(root)/etc/").replacingOccurrences(
                    of: "[ -e /etc/", with: "[ -e \(root)/etc/")
            try FileManager.default.createDirectory(atPath: root + "/usr/local/bin", withIntermediateDirectories: true)
            try FileManager.default.createDirectory(atPath: root + "/etc/systemd/system", withIntermediateDirectories: true)
            let (status, output) = try runTool("/bin/bash", ["-euc", command], in: URL(fileURLWithPath: checkout))
            #expect(status == 0, "\(line): \(output)")
            if line.hasPrefix("cp config.example.json config.json") {
                // "then edit it": here only the port, to a free one.
                let config = checkout + "/config.json"
                let text = try String(contentsOfFile: config, encoding: .utf8)
                try Data(text.replacingOccurrences(of: #""port": 8080"#, with: #""port": \#(port)"#).utf8)
                    .write(to: URL(fileURLWithPath: config))
            }
        }
        #expect(skipped.count == 2 && skipped[0].contains("--static-swift-stdlib"), "\(skipped)")

        let unit = try String(contentsOfFile: root + "/etc/systemd/system/webhook-bridge.service", encoding: .utf8)
        #expect(Self.unitValues(unit, "DynamicUser") == ["yes"])
        let environmentFile = try #require(Self.unitValues(unit, "EnvironmentFile").first).replacingOccurrences(
            of: "-/etc/", with: root + "/etc/")
        let mode = try FileManager.default.attributesOfItem(atPath: environmentFile)[.posixPermissions] as? Int
        #expect(mode == 0o600, "the secrets file is root's alone")
        try Data("STRIPE_WEBHOOK_SECRET=whsec_from_env\n".utf8).write(to: URL(fileURLWithPath: environmentFile))
        // What systemd does before ExecStart: the state directory, owned by the dynamic user,
        // as the working directory; the environment file and Environment= lines.
        let uid = 61_873  // DynamicUser's range (61184-65519), no account
        let state = root + "/var/lib/" + (try #require(Self.unitValues(unit, "StateDirectory").first))
        #expect(Self.unitValues(unit, "WorkingDirectory") == ["/var/lib/webhook-bridge"])
        try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true)
        chown(state, uid_t(uid), gid_t(uid))
        chmod(state, 0o700)
        var environment = ["PATH": "/usr/bin:/bin"]
        for line in try String(contentsOfFile: environmentFile, encoding: .utf8).split(separator: "\n")
            + Self.unitValues(unit, "Environment").map({ Substring($0) })
        {
            let (name, value) = (line.prefix { $0 != "=" }, line.drop { $0 != "=" }.dropFirst())
            environment[String(name)] = String(value)
        }
        let execStart = try #require(Self.unitValues(unit, "ExecStart").first).split(separator: " ").map {
            String($0).replacingOccurrences(of: "/usr/local/bin/", with: root + "/usr/local/bin/")
                .replacingOccurrences(of: "/etc/", with: root + "/etc/")
        }
        let server = try BridgeProcess(
            command: ["/usr/bin/setpriv", "--reuid=\(uid)", "--regid=\(uid)", "--clear-groups"] + execStart,
            environment: environment, directory: state)
        defer { server.kill9() }
        let connection = try KeepAliveConnection(port: port)
        #expect(try connection.get("/healthz").status == 200)
        let body = #"{"id": "evt_systemd", "type": "charge.succeeded"}"#
        let headers = try WebhookSigner.sign(
            scheme: "stripe",
            .init(body: Array(body.utf8), secret: "whsec_from_env", timestamp: Int64(Date().timeIntervalSince1970))
        ).headers
        #expect(try connection.post("/webhooks/stripe", headers: headers, body: body).status == 200)
        let events = state + "/var/events.jsonl"
        #expect(try String(contentsOfFile: events, encoding: .utf8).contains(#""id":"evt_systemd""#))
        let owner = try FileManager.default.attributesOfItem(atPath: events)[.ownerAccountID] as? Int
        #expect(owner == uid)
    }

    /// The version `make version` prints (scripts/version.sh reads it from the source).
    static func version() throws -> String {
        let (status, output) = try runTool("/bin/sh", ["scripts/version.sh"], in: root)
        #expect(status == 0)
        return output.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test(
        "the container recipe in docs/deploy.md, its commands other than docker run as written, leaves every file it bind-mounts in place"
    )
    func containerRecipe() throws {
        let lines = try Self.recipe("docs/deploy.md", after: "## Container image")
        let checkout = TemporaryDirectory()
        defer { checkout.cleanup() }
        try FileManager.default.copyItem(
            atPath: Self.root.appendingPathComponent("config.example.json").path, toPath: checkout.file("config.example.json"))
        var mounts: [String] = []
        for line in lines {
            let command = line.trimmingCharacters(in: .whitespaces)
            if command.hasPrefix("-v \"$PWD/") {
                mounts.append(String(command.dropFirst("-v \"$PWD/".count).prefix { $0 != ":" }))
            }
            if command.hasPrefix("docker") || command.hasPrefix("-") { continue }
            let (status, output) = try runTool("/bin/bash", ["-euc", command], in: URL(fileURLWithPath: checkout.path))
            #expect(status == 0, "\(line): \(output)")
        }
        #expect(mounts == ["config.json"])
        for mount in mounts {
            var isDirectory: ObjCBool = false
            #expect(
                FileManager.default.fileExists(atPath: checkout.file(mount), isDirectory: &isDirectory) && !isDirectory.boolValue,
                "\(mount)")
        }
        // The image the recipe builds is the one it runs, tagged with this version.
        let version = try Self.version()
        let tags = lines.joined(separator: "\n").ranges(of: "webhook-bridge:").map { range in
            String(lines.joined(separator: "\n")[range.upperBound...].prefix { !$0.isWhitespace })
        }
        #expect(!tags.isEmpty && tags.allSatisfy { $0 == version }, "\(tags)")
    }

    @Test(
        "the Kubernetes manifests name the image through kustomization.yaml's images:, at this version, and docs/deploy.md says how it reaches the cluster"
    )
    func kubernetesImage() throws {
        let directory = Self.root.appendingPathComponent("deploy/kubernetes")
        let statefulSet = try String(contentsOf: directory.appendingPathComponent("statefulset.yaml"), encoding: .utf8)
        let image = statefulSet.split(separator: "\n").compactMap { line -> String? in
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            return trimmed.hasPrefix("image:") ? trimmed.dropFirst("image:".count).trimmingCharacters(in: .whitespaces) : nil
        }
        #expect(image == ["webhook-bridge"])
        let kustomization = try String(contentsOf: directory.appendingPathComponent("kustomization.yaml"), encoding: .utf8)
        let version = try Self.version()
        #expect(
            kustomization.contains("images:\n  - name: webhook-bridge\n    newName: webhook-bridge\n    newTag: \"\(version)\""))
        let recipe = try Self.recipe("docs/deploy.md", after: "## Kubernetes").joined(separator: "\n")
        for step in [
            "podman push", "kustomize edit set image webhook-bridge=", "kind load docker-image webhook-bridge:\(version)",
            "kubectl apply -k deploy/kubernetes",
        ] {
            #expect(recipe.contains(step), "\(step)")
        }
    }

    @Test(
        "docs/testing.md's tested versions are what SwiftPM resolved, and Package.swift pins each direct dependency to its exact version"
    )
    func testedVersions() throws {
        let page = try String(contentsOf: Self.root.appendingPathComponent("docs/testing.md"), encoding: .utf8)
        let begin = try #require(page.range(of: "<!-- versions:begin -->")).upperBound
        let end = try #require(page.range(of: "<!-- versions:end -->", range: begin..<page.endIndex)).lowerBound
        var documented: [String: String] = [:]
        var traitOnly: Set<String> = []
        for line in page[begin..<end].split(separator: "\n") where line.hasPrefix("| `") {
            let cells = line.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces).trimmingCharacters(in: ["`"]) }
            let version = cells[1].split(separator: " ")[0]
            documented[cells[0]] = String(version)
            if cells[1].hasSuffix("(`OTLPGRPC` only)") { traitOnly.insert(cells[0]) }
        }
        // What this build resolved (SwiftPM's own record in the scratch directory).
        let state = try JSONSerialization.jsonObject(
            with: Data(contentsOf: Self.root.appendingPathComponent(".build/workspace-state.json")))
        let dependencies = ((state as? [String: Any])?["object"] as? [String: Any])?["dependencies"] as? [[String: Any]] ?? []
        var resolved: [String: String] = [:]
        for dependency in dependencies {
            guard let url = (dependency["packageRef"] as? [String: Any])?["location"] as? String,
                let version = ((dependency["state"] as? [String: Any])?["checkoutState"] as? [String: Any])?["version"] as? String
            else { continue }
            resolved[url.replacingOccurrences(of: "https://github.com/", with: "").replacingOccurrences(of: ".git", with: "")] =
                version
        }
        #expect(!resolved.isEmpty)
        // A package the trait brings in is resolved only with it (or in a scratch directory
        // that once resolved with it); every other one exactly as listed.
        let expected = documented.filter { !traitOnly.contains($0.key) || resolved[$0.key] != nil }
        #expect(traitOnly.count == 18)
        #expect(
            expected == resolved,
            "docs/testing.md lists \(expected.sorted { $0.key < $1.key }), resolved \(resolved.sorted { $0.key < $1.key })")
        let manifest = try String(contentsOf: Self.root.appendingPathComponent("Package.swift"), encoding: .utf8)
        let pins = manifest.split(separator: "\n").filter {
            $0.contains(".package(url:") || $0.contains("url: \"https://github.com/")
        }
        #expect(pins.count >= 10, "\(pins)")
        for pin in pins {
            #expect(pin.contains("exact: \""), "not pinned: \(pin)")
            guard let url = pin.split(separator: "\"").first(where: { $0.hasPrefix("https://github.com/") }),
                let exact = pin.range(of: "exact: \"")
            else { continue }
            let name = url.replacingOccurrences(of: "https://github.com/", with: "").replacingOccurrences(of: ".git", with: "")
            // swift-otel is pinned for the OTLPGRPC trait; a build without it resolves none of it.
            if traitOnly.contains(name), resolved[name] == nil { continue }
            #expect(resolved[name] == String(pin[exact.upperBound...].prefix { $0 != "\"" }), "\(name)")
        }
    }

    static var kubernetesValidate: String { root.appendingPathComponent(".build-tools/venv/bin/kubernetes-validate").path }
    static var hasKubernetesValidate: Bool { FileManager.default.isExecutableFile(atPath: kubernetesValidate) }

    @Test(
        "deploy/kubernetes passes kubernetes-validate, and the config in its ConfigMap passes check-config",
        .enabled(
            if: hasKubernetesValidate, "kubernetes-validate is not installed (scripts/install-test-tools.sh, run by make test)"))
    func kubernetesManifests() throws {
        let directory = Self.root.appendingPathComponent("deploy/kubernetes")
        let files = ["secret.yaml", "statefulset.yaml", "service.yaml", "poddisruptionbudget.yaml"].map {
            directory.appendingPathComponent($0).path
        }
        let (status, text) = try runTool(Self.kubernetesValidate, files)
        #expect(status == 0, "\(text)")
        for resource in [
            "secret/webhook-bridge-secrets", "statefulset/webhook-bridge", "service/webhook-bridge",
            "service/webhook-bridge-headless", "poddisruptionbudget/webhook-bridge",
        ] {
            #expect(text.contains("passed for resource \(resource)"), "\(resource): \(text)")
        }
        // The kustomization names every manifest and generates the ConfigMap from config.json.
        let kustomization = try String(contentsOf: directory.appendingPathComponent("kustomization.yaml"), encoding: .utf8)
        for file in ["secret.yaml", "statefulset.yaml", "service.yaml", "poddisruptionbudget.yaml", "config.json"] {
            #expect(kustomization.contains("- \(file)"), "\(file) is not in kustomization.yaml")
        }
        // The config, with exactly the Secret's variables set, as the pod sets them (envFrom).
        let secret = try String(contentsOf: directory.appendingPathComponent("secret.yaml"), encoding: .utf8)
        var environment: [String: String] = [:]
        var inData = false
        for line in secret.split(separator: "\n") {
            if line.hasPrefix("stringData:") {
                inData = true
            } else if inData, line.hasPrefix("  "), !line.trimmingCharacters(in: .whitespaces).hasPrefix("#"),
                let colon = line.firstIndex(of: ":")
            {
                let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
                environment[line[..<colon].trimmingCharacters(in: .whitespaces)] = value.trimmingCharacters(in: ["\""])
            } else if inData, !line.hasPrefix(" ") {
                inData = false
            }
        }
        #expect(environment.count == 5, "\(environment)")
        // The inspector listens in the pod, and no Service exposes it unless asked.
        let service = try String(contentsOf: directory.appendingPathComponent("service.yaml"), encoding: .utf8)
        let exposed = service.split(separator: "\n").filter { !$0.trimmingCharacters(in: .whitespaces).hasPrefix("#") }
        #expect(!exposed.contains { $0.contains("9090") || $0.contains("admin") })
        let statefulSet = try String(contentsOf: directory.appendingPathComponent("statefulset.yaml"), encoding: .utf8)
        #expect(statefulSet.contains("- name: admin\n              containerPort: 9090"))
        func check(_ environment: [String: String]) throws -> (status: Int32, stderr: String) {
            let run = try CLI.run(
                ["check-config", directory.appendingPathComponent("config.json").path],
                environment: ProcessInfo.processInfo.environment.filter { !environment.keys.contains($0.key) }.merging(
                    environment
                ) { $1 })
            return (run.status, run.stderr)
        }
        // The Secret's placeholder token is refused: applied unchanged, the pod does not serve
        // everyone's requests to whoever reads the example.
        let placeholder = try check(environment)
        #expect(placeholder.status != 0 && placeholder.stderr.contains("admin.token"), "\(placeholder.stderr)")
        environment["ADMIN_TOKEN"] = "3f9a0c1d7e2b4a6885c1d0e9f7a2b3c4"
        let filledIn = try check(environment)
        #expect(filledIn.status == 0, "\(filledIn.stderr)")
    }
}
