import ArgumentParser
import WebhookCore

/// `webhook-bridge sign`: the headers a provider would send for a body.
struct Sign: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Prints the headers a provider would send for a body, one 'Name: value' a line."
    )

    @OptionGroup var signing: SigningOptions

    @Option(help: "The URL the provider calls (twilio and square sign it).")
    var url: String?

    func run() throws {
        let (_, output) = try signing.sign(url: url)
        for (name, value) in output.headers { print("\(name): \(value)") }
        if let body = output.body {
            // The signature is inside the body (mailgun): print the body to send.
            print()
            print(String(decoding: body, as: UTF8.self))
        }
        if let signedURL = output.url, signedURL != url {
            printError("note: send this request to \(signedURL)")
        }
    }
}
