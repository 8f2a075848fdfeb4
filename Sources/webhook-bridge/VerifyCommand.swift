import ArgumentParser
import WebhookBridge
import WebhookCore
import WebhookEncoding

/// `webhook-bridge verify`: does a captured request verify, and why not.
struct VerifyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Says whether a request verifies under a scheme, and why not.",
        discussion: """
            The request is a headers file (one 'Name: value' a line; a first request or status line is skipped) \
            and a body file. Exit 0 when it verifies, 1 when it does not. For a scheme with settings besides \
            the secrets (hmac, publicUrl), give the whole verify object with --verify instead of --scheme and --secret.
            """
    )

    @Option(help: "The scheme, as in verify.scheme (standard-webhooks for what the http sink sends).")
    var scheme: String?

    @Option(name: .customLong("secret"), help: "A secret, as in verify.secrets; repeatable (rotation).")
    var secrets: [String] = []

    @Option(name: .customLong("verify"), help: "The whole verify object as JSON, instead of --scheme and --secret.")
    var verifyJSON: String?

    @Option(help: "The headers file.")
    var headers: String

    @Option(help: "The body file, or - for standard input.")
    var body: String

    @Option(help: "The request target, for schemes that sign the URL (default /).")
    var path: String = "/"

    @Option(help: "When the request was received, as a UNIX time, for a captured request's timestamp (default: now).")
    var receivedAt: Int64?

    @Option(help: "The timestamp tolerance in seconds (default: the scheme's).")
    var tolerance: Int?

    func run() async throws {
        let verify: JSONValue
        if let verifyJSON {
            guard scheme == nil, secrets.isEmpty, tolerance == nil else {
                throw ValidationError("--verify replaces --scheme, --secret and --tolerance")
            }
            do {
                verify = try JSONParser.parse(Array(verifyJSON.utf8))
            } catch {
                throw ValidationError("--verify: not JSON: \(error)")
            }
        } else {
            guard let scheme else { throw ValidationError("--scheme (or --verify) is required") }
            var members: [(String, JSONValue)] = [("scheme", .string(scheme))]
            if !secrets.isEmpty { members.append(("secrets", .array(secrets.map { .string($0) }))) }
            if let tolerance { members.append(("toleranceSeconds", .number(String(tolerance)))) }
            verify = .object(members)
        }
        guard let headerText = readFile(headers).map({ String(decoding: $0, as: UTF8.self) }) else {
            throw ValidationError("--headers: cannot read \(headers)")
        }
        let parsedHeaders: [(String, String)]
        do {
            parsedHeaders = try VerifyCheck.headers(fromFile: headerText)
        } catch {
            throw ValidationError("--headers: \(error)")
        }
        let bytes = try readBody(body)
        let outcome = await VerifyCheck.run(
            verify: verify, headers: parsedHeaders, body: bytes, path: path,
            receivedAt: receivedAt.map { Timestamp(secondsSince1970: $0) } ?? .now())
        for line in outcome.lines { print(line) }
        if !outcome.verified { throw ExitCode(1) }
    }
}
