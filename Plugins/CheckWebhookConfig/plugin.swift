import Foundation
import PackagePlugin

/// `swift package check-webhook-config [FILE...]`: validates webhook-bridge config files with
/// the package's own `webhook-bridge check-config`, the way swift-openapi-generator's plugins
/// wrap its tool. Without arguments it checks every `config*.json` at the package root.
@main
struct CheckWebhookConfig: CommandPlugin {
    func performCommand(context: PluginContext, arguments: [String]) async throws {
        let tool = try context.tool(named: "webhook-bridge")
        var files = arguments
        if files.isEmpty {
            let root = context.package.directoryURL
            let names = try FileManager.default.contentsOfDirectory(atPath: root.path)
            files = names.filter { $0.hasPrefix("config") && $0.hasSuffix(".json") }.sorted().map {
                root.appendingPathComponent($0).path
            }
        }
        guard !files.isEmpty else {
            Diagnostics.error("no config*.json at the package root; pass the files to check")
            return
        }
        let process = Process()
        process.executableURL = tool.url
        process.arguments = ["check-config"] + files
        try process.run()
        process.waitUntilExit()
        if process.terminationStatus != 0 {
            Diagnostics.error("check-config found problems (see above)")
        }
    }
}
