import ArgumentParser
import NIOHTTP1
import NIOSSL
import WebhookBridge
import WebhookCore
import WebhookEncoding
import WebhookProviders

/// `webhook-bridge send`: signs like `sign` and POSTs.
struct Send: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Signs a body like sign and POSTs it; prints the status and the answer.",
        discussion: "Exit 0 on a 2xx answer, 1 otherwise. https:// verifies the server against the system's trust roots."
    )

    @Argument(help: "Where to POST, e.g. http://127.0.0.1:8080/webhooks/github.")
    var target: String

    @OptionGroup var signing: SigningOptions

    @Option(help: "The URL to sign, when the provider's view differs from the target (twilio, square).")
    var url: String?

    @Option(name: .customLong("header"), help: "An extra header, 'Name: value'; repeatable.")
    var headers: [String] = []

    @Option(help: "Seconds to wait for the answer.")
    var timeout: Int = 30

    @Flag(
        help:
            "Send the provider's setup handshake instead of an event, and check the answer as the provider would (meta: --secret is the verify token; okta: the Authorization value; event-grid: the code; dropbox, microsoft-graph: not used)."
    )
    var handshake = false

    func run() async throws {
        if handshake {
            try await rehearse()
            return
        }
        let (body, output) = try signing.sign(url: url ?? target)
        guard let destination = HTTPTarget(output.url ?? target) else {
            throw ValidationError("\(target): not an http(s)://host[:port]/path URL")
        }
        var all = output.headers + (try parseHeaderOptions(headers))
        if !all.contains(where: { $0.0.lowercased() == "content-type" }) {
            let type =
                JSONParser.isValid(body)
                ? "application/json"
                : (["twilio", "slack"].contains(signing.scheme)
                    ? "application/x-www-form-urlencoded" : "application/octet-stream")
            all.append(("Content-Type", type))
        }
        let response: WebhookClient.Response
        do {
            response = try await WebhookClient.send(
                host: destination.host, port: destination.port, path: destination.path, headers: all, body: body,
                timeout: .seconds(Int64(timeout)), tls: destination.secure ? .makeClientConfiguration() : nil)
        } catch {
            printError("webhook-bridge: \(target): \(error)")
            throw ExitCode(1)
        }
        print("\(response.status.code) \(response.status.reasonPhrase)")
        if !response.body.isEmpty { print(response.text) }
        if !(200..<300).contains(response.status.code) { throw ExitCode(1) }
    }
}

extension Send {
    /// `--handshake`: the provider's setup request, and its verdict on the answer.
    func rehearse() async throws {
        let schemes = ProviderRegistry.all.filter { $0.rehearsal != nil }.map(\.name)
        guard let rehearsal = ProviderRegistry.named(signing.scheme)?.rehearsal else {
            throw ValidationError(
                "--handshake: \(signing.scheme) has no handshake to rehearse; one of \(schemes.joined(separator: ", "))")
        }
        let request = rehearsal(target, signing.secret)
        guard let destination = HTTPTarget(request.url) else {
            throw ValidationError("\(target): not an http(s)://host[:port]/path URL")
        }
        let response: WebhookClient.Response
        do {
            response = try await WebhookClient.send(
                host: destination.host, port: destination.port, method: request.method, path: destination.path,
                headers: request.headers, body: request.body, timeout: .seconds(Int64(timeout)),
                tls: destination.secure ? .makeClientConfiguration() : nil)
        } catch {
            printError("webhook-bridge: \(target): \(error)")
            throw ExitCode(1)
        }
        print("\(response.status.code) \(response.status.reasonPhrase)")
        if !response.body.isEmpty { print(response.text) }
        if let problem = request.check(Int(response.status.code), response.headers, response.body) {
            printError("webhook-bridge: \(signing.scheme) would not accept this answer: \(problem)")
            throw ExitCode(1)
        }
        print("handshake accepted")
    }
}

/// `http(s)://host[:port]/path?query`, split for the client.
struct HTTPTarget {
    let host: String
    let port: Int
    let path: String
    let secure: Bool

    init?(_ url: String) {
        guard url.hasPrefix("http://") || url.hasPrefix("https://") else { return nil }
        secure = url.hasPrefix("https://")
        let defaultPort = secure ? 443 : 80
        let rest = url.dropFirst(secure ? 8 : 7)
        let slash = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? rest.endIndex
        var authority = rest[..<slash]
        if let at = authority.lastIndex(of: "@") { authority = authority[authority.index(after: at)...] }
        let path = rest[slash...]
        self.path = path.isEmpty ? "/" : (path.hasPrefix("?") ? "/" + path : String(path))
        if authority.hasPrefix("["), let close = authority.firstIndex(of: "]") {
            host = String(authority[authority.index(after: authority.startIndex)..<close])
            let after = authority[authority.index(after: close)...]
            guard after.isEmpty || after.hasPrefix(":"), let port = after.isEmpty ? defaultPort : Int(after.dropFirst()) else {
                return nil
            }
            self.port = port
        } else if let colon = authority.lastIndex(of: ":") {
            host = String(authority[..<colon])
            guard let port = Int(authority[authority.index(after: colon)...]) else { return nil }
            self.port = port
        } else {
            host = String(authority)
            port = defaultPort
        }
        if host.isEmpty { return nil }
    }
}
