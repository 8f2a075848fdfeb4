import WebhookCore

/// The URL a provider called, for schemes that sign it (Twilio, Square).
///
/// Behind a proxy or a load balancer the bridge can't see that URL, so `verify.publicUrl`
/// states it (scheme, host, path; the request's query string is appended unless publicUrl
/// has its own). Without it the URL is rebuilt from `X-Forwarded-Proto`/`X-Forwarded-Host`,
/// else `http` and `Host`, plus the request target.
public struct PublicURL: Sendable, Equatable {
    public let configured: String?

    public init(_ configured: String?) { self.configured = configured }

    public func url(for request: WebhookRequest) -> String {
        if let configured {
            if configured.contains("?") { return configured }
            guard let query = request.uri.firstIndex(of: "?") else { return configured }
            return configured + request.uri[query...]
        }
        let proto = request.headers.first(name: "X-Forwarded-Proto") ?? "http"
        let host = request.headers.first(name: "X-Forwarded-Host") ?? request.headers.first(name: "Host") ?? "localhost"
        return "\(proto)://\(host)\(request.uri)"
    }

    /// The URL without an explicit port, and with the scheme's default port added when it has
    /// none: Twilio's SDKs accept a signature over either form.
    static func portVariants(of url: String) -> [String] {
        guard let schemeEnd = url.firstRange(of: "://") else { return [url] }
        let scheme = url[..<schemeEnd.lowerBound]
        let afterScheme = url[schemeEnd.upperBound...]
        let authorityEnd = afterScheme.firstIndex(where: { $0 == "/" || $0 == "?" || $0 == "#" }) ?? afterScheme.endIndex
        let authority = afterScheme[..<authorityEnd]
        let rest = afterScheme[authorityEnd...]
        let hostStart = authority.lastIndex(of: "@").map { authority.index(after: $0) } ?? authority.startIndex
        let hostPort = authority[hostStart...]
        // The port is after the last ':' that is not inside an IPv6 literal's brackets.
        var portSeparator: Substring.Index?
        if let colon = hostPort.lastIndex(of: ":"), !hostPort[colon...].contains("]") { portSeparator = colon }
        let prefix = "\(scheme)://\(authority[..<hostStart])"
        if let portSeparator {
            let withoutPort = prefix + hostPort[..<portSeparator] + rest
            return [withoutPort, url]
        }
        let defaultPort = scheme.lowercased() == "https" ? "443" : "80"
        return [url, prefix + hostPort + ":" + defaultPort + rest]
    }
}
