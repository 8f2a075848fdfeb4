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
                        return source.routes.routes.count == 1 && route.types == nil
                            ? route.sinks.joined(separator: ", ")
                            : "[\(types)] -> \(route.sinks.joined(separator: ", "))"
                    }
                    print(
                        "  source \(source.name): POST \(source.path) scheme=\(source.scheme.name) sinks=\(sinks.joined(separator: "; "))"
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
