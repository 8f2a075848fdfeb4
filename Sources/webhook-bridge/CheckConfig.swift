import ArgumentParser
import WebhookBridge
import WebhookCore

/// `webhook-bridge check-config`.
struct CheckConfig: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config",
        abstract: "Validates config files without serving; prints each source with its path, scheme and sinks.",
        discussion:
            "Exit 0 when every file is valid, 1 otherwise; each problem on its own line as PATH: json.path: what is wrong."
    )

    @Argument(help: "The config files.")
    var paths: [String]

    func run() throws {
        var valid = true
        for path in paths {
            do throws(ConfigFileError) {
                let config = try loadConfig(path: path)
                print("\(path): valid")
                for warning in config.warnings { printError("\(path): \(warning.path): warning: \(warning.message)") }
                for source in config.sortedSources {
                    let sinks = source.routes.routes.map { route in
                        let types = route.types.map { $0.map(\.description).joined(separator: ",") } ?? "*"
                        let match = route.match == nil ? "" : " match"
                        let transform = route.transform.map { " (transform: \($0.operationCount) operations)" } ?? ""
                        return source.routes.routes.count == 1 && route.types == nil && route.match == nil
                            ? route.sinks.joined(separator: ", ") + transform
                            : "[\(types)]\(match) -> \(route.sinks.joined(separator: ", "))\(transform)"
                    }
                    var extras = ""
                    if let split = source.split { extras += " split=(\(split.summary))" }
                    if let transform = source.transform { extras += " transform=(\(transform.operationCount) operations)" }
                    if source.respond != nil { extras += " respond=custom" }
                    print(
                        "  source \(source.name): POST \(source.path) scheme=\(source.scheme.name) sinks=\(sinks.joined(separator: "; "))\(extras)"
                    )
                }
            } catch {
                valid = false
                for line in error.lines { printError(line) }
            }
        }
        if !valid { throw ExitCode(1) }
    }
}
