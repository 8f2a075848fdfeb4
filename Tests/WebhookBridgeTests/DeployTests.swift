import BridgeTestSupport
import Foundation
import Testing

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

    static var kubernetesValidate: String { root.appendingPathComponent(".build-tools/venv/bin/kubernetes-validate").path }
    static var hasKubernetesValidate: Bool { FileManager.default.isExecutableFile(atPath: kubernetesValidate) }

    @Test(
        "deploy/kubernetes passes kubernetes-validate, and the config in its ConfigMap passes check-config",
        .enabled(if: hasKubernetesValidate, "kubernetes-validate is not installed (scripts/install-test-tools.sh, run by make test)"))
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
        #expect(environment.count == 4, "\(environment)")
        let check = try CLI.run(
            ["check-config", directory.appendingPathComponent("config.json").path],
            environment: ProcessInfo.processInfo.environment.filter { !environment.keys.contains($0.key) }.merging(environment) { $1 })
        #expect(check.status == 0, "\(check.stderr)")
    }
}
