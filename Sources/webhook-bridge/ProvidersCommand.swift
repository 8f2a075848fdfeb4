import ArgumentParser
import WebhookCore
import WebhookEncoding
import WebhookProviders

/// `webhook-bridge providers`: the built-in provider catalog.
struct ProvidersCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "providers",
        abstract: "Lists the built-in providers: what each checks, its handshake, its id and type, its aliases.")

    @Flag(help: "Print the catalog as JSON.")
    var json = false

    @Flag(help: "Print the catalog as the Markdown table of docs/providers.md.")
    var markdown = false

    func run() throws {
        if markdown {
            let names = ProviderRegistry.schemeNames.count
            print("\(ProviderRegistry.all.count) providers (\(names) scheme names with the aliases):")
            print()
            print("| scheme | checks | handshake | id | type |")
            print("| --- | --- | --- | --- | --- |")
            for provider in ProviderRegistry.all {
                let names = ([provider.name] + provider.aliases).map { "`\($0)`" }.joined(separator: ", ")
                let cells = [names, provider.signature, provider.handshake ?? "", provider.id, provider.type]
                print("| " + cells.map { $0.replacingOccurrences(of: "|", with: "\\|") }.joined(separator: " | ") + " |")
            }
            return
        }
        if json {
            let entries: [JSONValue] = ProviderRegistry.all.map { provider in
                .object([
                    ("name", .string(provider.name)),
                    ("aliases", .array(provider.aliases.map(JSONValue.string))),
                    ("signature", .string(provider.signature)),
                    ("handshake", provider.handshake.map(JSONValue.string) ?? .null),
                    ("id", .string(provider.id)),
                    ("type", .string(provider.type)),
                    ("keys", .array(provider.keys.map(JSONValue.string))),
                    ("sign", .bool(provider.canSign)),
                    ("rehearseHandshake", .bool(provider.rehearsal != nil)),
                ])
            }
            var bytes: [UInt8] = []
            JSONWriter.append(.object([("count", .number(String(entries.count))), ("providers", .array(entries))]), to: &bytes)
            print(String(decoding: bytes, as: UTF8.self))
            return
        }
        for provider in ProviderRegistry.all {
            var line = provider.name
            if !provider.aliases.isEmpty { line += " (aliases: \(provider.aliases.joined(separator: ", ")))" }
            line += ": \(provider.signature); id: \(provider.id); type: \(provider.type)"
            if let handshake = provider.handshake { line += "; handshake: \(handshake)" }
            print(line)
        }
    }
}
