import ArgumentParser
import WebhookBridge

/// `webhook-bridge route`: a dry run of a source's split, transforms and routes.
struct RouteCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "route",
        abstract: "Shows what a source makes of a body: each event after split and transform, and the route it takes.",
        discussion:
            "A dry run: no signature is checked and nothing is delivered. For each route an event skips, the first condition that failed is shown (path, operator, value). Exit 0."
    )

    @Option(help: "The config file.")
    var config: String

    @Option(help: "The source, by name.")
    var source: String

    @Option(help: "The body: a file, or - for standard input.")
    var body: String

    @Option(name: .customLong("header"), help: "A request header, 'Name: value'; repeatable.")
    var headers: [String] = []

    @Option(help: "The request's query string, for filters on query (e.g. 'shop=a&x=1').")
    var query: String?

    @Option(help: "The event id, for a scheme that reads it only from a verified request.")
    var id: String?

    @Option(help: "The event type, for a scheme that reads it only from a verified request.")
    var type: String?

    func run() throws {
        let loaded: BridgeConfig
        do throws(ConfigFileError) {
            loaded = try loadConfig(path: config)
        } catch {
            for line in error.lines { printError(line) }
            throw ExitCode(1)
        }
        let bytes = try readBody(body)
        let lines = try RouteDryRun.report(
            config: loaded, source: source, body: bytes, headers: try parseHeaderOptions(headers), query: query, id: id,
            type: type)
        for line in lines { print(line) }
    }
}
