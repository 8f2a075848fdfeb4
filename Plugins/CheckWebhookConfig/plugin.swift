import Foundation
import PackagePlugin

/// `swift package check-webhook-config [FILE...]`: validates webhook-bridge config files with
/// the package's own `webhook-bridge check-config`. Without arguments it checks every
/// `config*.json` at the package root.
///
/// It asks the package manager for the `webhook-bridge` product of the ordinary debug build
/// (the one `make run` and `make test` make) instead of declaring the executable as a tool:
/// a tool is built a second time for the host, which doubled every `swift build
/// --build-tests` (the whole graph, BoringSSL twice more, about 8 minutes on 2 cores).
@main
struct CheckWebhookConfig: CommandPlugin {
    func performCommand(context: PluginContext, arguments: [String]) async throws {
        let build = try packageManager.build(.product("webhook-bridge"), parameters: .init(configuration: .debug, logging: .concise))
        guard build.succeeded, let tool = build.builtArtifacts.first(where: { $0.kind == .executable }) else {
            Diagnostics.error("building webhook-bridge failed:\n\(build.logText)")
            return
        }
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
