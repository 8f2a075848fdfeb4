import NIOCore
import NIOHTTP1
import WebhookCore
import WebhookEncoding
import WebhookProviders

/// `webhook-bridge verify`: whether a captured request verifies under a scheme of the
/// catalog, and why not. What a team receiving the bridge's `http` sink checks its
/// deliveries with (scheme `standard-webhooks`), and what anyone debugging a provider's
/// request runs. The same schemes and code as `serve`; nothing is delivered or remembered.
public enum VerifyCheck {
    /// What the check found: the lines to print, and whether the request verified.
    public struct Outcome: Sendable {
        public let verified: Bool
        public let lines: [String]
    }

    /// Checks `body` with `headers`, received at `path` (the request target, for schemes
    /// that sign the URL) at `receivedAt`, under `verify` (a source's `verify` object).
    public static func run(
        verify: JSONValue, headers: [(String, String)], body: [UInt8], path: String, receivedAt: Timestamp
    ) async -> Outcome {
        let log = ProblemLog()
        guard let reader = ConfigReader(verify, path: "verify", log: log),
            let scheme = ProviderRegistry.readVerify(reader), log.problems.isEmpty
        else {
            return Outcome(verified: false, lines: log.problems.map { "config: \($0)" })
        }
        let request = WebhookRequest(
            headers: HTTPHeaders(headers), body: ByteBuffer(bytes: body), uri: path, receivedAt: receivedAt)
        do {
            let verified = try await scheme.verify(
                request, services: VerificationServices(certificates: HTTPSCertificateFetcher()))
            if verified.handshake != nil {
                return Outcome(verified: true, lines: ["verified: a \(scheme.name) handshake, which the bridge answers itself"])
            }
            var lines = ["verified: scheme \(scheme.name), secret \(verified.keyIndex) of the ones given matched"]
            lines.append("id: \(verified.id ?? "(none: the bridge would use the body's hash)")")
            lines.append("type: \(verified.type ?? "(none: the bridge would use webhook)")")
            return Outcome(verified: true, lines: lines)
        } catch {
            return Outcome(verified: false, lines: ["not verified: \(error.code): \(error.detail)"])
        }
    }

    /// A headers file: one `Name: value` a line, as `curl -D` or a proxy's log writes them;
    /// a first line that is a request or status line (`POST /x HTTP/1.1`, `HTTP/1.1 200 OK`)
    /// is skipped, and a blank line ends the headers. Throws the first line that is neither.
    public static func headers(fromFile text: String) throws(Failure) -> [(String, String)] {
        var headers: [(String, String)] = []
        // `\r\n` is one Character, a newline like `\n`.
        for (index, line) in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).enumerated() {
            if line.isEmpty {
                if headers.isEmpty { continue }
                break
            }
            if index == 0, line.hasPrefix("HTTP/") || line.hasSuffix(" HTTP/1.1") || line.hasSuffix(" HTTP/1.0") { continue }
            guard let colon = line.firstIndex(of: ":"), colon != line.startIndex else {
                throw Failure(description: "line \(index + 1) is not 'Name: value': \(line.prefix(80))")
            }
            headers.append((String(line[..<colon]), String(line[line.index(after: colon)...].trimmingSpaces)))
        }
        return headers
    }

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }
}
