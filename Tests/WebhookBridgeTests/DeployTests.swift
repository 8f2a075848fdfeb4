import BridgeTestSupport
import Foundation
import Testing

/// The deployment files the repository ships, checked by the real tools.
@Suite("Deploy: the systemd unit")
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
        let verify = Process()
        verify.executableURL = URL(fileURLWithPath: "/usr/bin/systemd-analyze")
        verify.arguments = ["verify", path]
        let output = Pipe()
        verify.standardOutput = output
        verify.standardError = output
        try verify.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        verify.waitUntilExit()
        #expect(verify.terminationStatus == 0, "\(text)")
        #expect(text.isEmpty, "systemd-analyze had remarks: \(text)")
        #expect(unit.contains("ExecReload=/bin/kill -HUP $MAINPID"))
        #expect(unit.contains("StateDirectory=webhook-bridge"))
    }
}
