import Foundation

/// Where Redis is: `redis://[[user]:password@]host[:port][/db]`, the same with `rediss://`
/// for TLS (options `?ca=PATH`, `cert=PATH&key=PATH`), or `unix:///path/to.sock[?db=N]`.
public struct RedisEndpoint: Sendable, Equatable {
    public enum Address: Sendable, Equatable {
        case tcp(host: String, port: Int)
        case unix(path: String)
    }

    /// `rediss://`: the server's certificate is verified, and its name against the URL's host.
    public struct TLS: Sendable, Equatable {
        /// `ca`: PEM certificates trusted instead of the system's trust store (a private CA,
        /// or a self-signed server). There is no option to skip verification: this is the
        /// way to trust a server whose certificate no public CA signed.
        public var caFile: String?
        /// `cert` and `key`: a client certificate (PEM), for a server with `tls-auth-clients yes`.
        public var certificateFile: String?
        public var keyFile: String?

        public init(caFile: String? = nil, certificateFile: String? = nil, keyFile: String? = nil) {
            self.caFile = caFile
            self.certificateFile = certificateFile
            self.keyFile = keyFile
        }

        /// The files named, each with its option, for checks that they can be read.
        public var files: [(option: String, path: String)] {
            [("ca", caFile), ("cert", certificateFile), ("key", keyFile)].compactMap { option, path in
                path.map { (option, $0) }
            }
        }
    }

    public let address: Address
    public let username: String?
    public let password: String?
    public let database: Int
    /// Set for `rediss://`.
    public let tls: TLS?

    /// The address without credentials or options, for logs and errors.
    public var display: String {
        switch address {
        case .tcp(let host, let port):
            let shown = host.contains(":") ? "[\(host)]" : host
            return "\(tls == nil ? "redis" : "rediss")://\(shown):\(port)/\(database)"
        case .unix(let path): return "unix://\(path)"
        }
    }

    /// Parses `url`; throws a message that says what is wrong (never echoing a password).
    /// Only the syntax: whether the TLS files can be read is ``problems()``'s question.
    public init(url: String) throws(RedisURLError) {
        if url.hasPrefix("unix://") {
            let rest = url.dropFirst(7)
            let question = rest.firstIndex(of: "?") ?? rest.endIndex
            let path = rest[..<question]
            guard !path.isEmpty else { throw RedisURLError("unix:// needs a socket path") }
            let options = try Self.options(rest[question...], allowed: ["db"], scheme: "unix://")
            var database = 0
            if let db = options["db"] {
                guard let number = Int(db), number >= 0 else { throw RedisURLError("db must be a number") }
                database = number
            }
            self.address = .unix(path: String(path))
            self.username = nil
            self.password = nil
            self.database = database
            self.tls = nil
            return
        }
        let secure = url.hasPrefix("rediss://")
        guard secure || url.hasPrefix("redis://") else { throw RedisURLError("must start with redis://, rediss:// or unix://") }
        var rest = url.dropFirst(secure ? 9 : 8)
        var username: String?
        var password: String?
        // The password may hold any character but `@`'s last occurrence; a `@` in an option
        // value is written %40.
        if let at = rest.lastIndex(of: "@") {
            let credentials = rest[..<at]
            rest = rest[rest.index(after: at)...]
            if let colon = credentials.firstIndex(of: ":") {
                let user = credentials[..<colon]
                username = user.isEmpty ? nil : String(user)
                password = String(credentials[credentials.index(after: colon)...])
            } else {
                password = String(credentials)
            }
        }
        let question = rest.firstIndex(of: "?") ?? rest.endIndex
        let options = try Self.options(
            rest[question...], allowed: secure ? ["ca", "cert", "key"] : [], scheme: secure ? "rediss://" : "redis://")
        rest = rest[..<question]
        let slash = rest.firstIndex(of: "/") ?? rest.endIndex
        let hostPort = rest[..<slash]
        var database = 0
        if slash < rest.endIndex {
            let db = rest[rest.index(after: slash)...]
            if !db.isEmpty {
                guard let number = Int(db), number >= 0 else { throw RedisURLError("the database after / must be a number") }
                database = number
            }
        }
        var host = String(hostPort)
        var port = 6379
        if hostPort.hasPrefix("["), let close = hostPort.firstIndex(of: "]") {
            host = String(hostPort[hostPort.index(after: hostPort.startIndex)..<close])
            let after = hostPort[hostPort.index(after: close)...]
            if after.hasPrefix(":") {
                guard let number = Int(after.dropFirst()) else { throw RedisURLError("the port must be a number") }
                port = number
            }
        } else if let colon = hostPort.lastIndex(of: ":") {
            host = String(hostPort[..<colon])
            guard let number = Int(hostPort[hostPort.index(after: colon)...]) else {
                throw RedisURLError("the port must be a number")
            }
            port = number
        }
        guard !host.isEmpty else { throw RedisURLError("needs a host") }
        guard (1...65535).contains(port) else { throw RedisURLError("the port must be between 1 and 65535") }
        if (options["cert"] == nil) != (options["key"] == nil) {
            throw RedisURLError("cert and key go together: the client certificate and its private key")
        }
        self.address = .tcp(host: host, port: port)
        self.username = username
        self.password = password
        self.database = database
        self.tls = secure ? TLS(caFile: options["ca"], certificateFile: options["cert"], keyFile: options["key"]) : nil
    }

    /// What the URL names but this process cannot use: TLS files it cannot read. Checked when
    /// the config is loaded, so a typo is reported with the config's other problems rather
    /// than as a connection failure at the first event.
    public func problems() -> [String] {
        (tls?.files ?? []).compactMap { option, path in
            FileManager.default.isReadableFile(atPath: path) ? nil : "\(option): cannot read \(path)"
        }
    }

    /// The `?name=value&…` options (values %-decoded), each allowed once.
    private static func options(_ query: Substring, allowed: [String], scheme: String) throws(RedisURLError)
        -> [String: String]
    {
        var options: [String: String] = [:]
        for pair in query.dropFirst().split(separator: "&", omittingEmptySubsequences: true) {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = String(parts[0])
            guard allowed.contains(name) else {
                if name == "insecure" || name == "verify" {
                    throw RedisURLError(
                        "\(name): certificate verification can't be turned off; trust the server's CA with ca=/path/ca.pem")
                }
                if allowed.isEmpty {
                    throw RedisURLError(
                        "\(scheme) takes no options\(scheme == "redis://" ? " (ca, cert and key are for rediss://)" : "")")
                }
                throw RedisURLError("unknown option \(name) (\(scheme) takes \(allowed.joined(separator: ", ")))")
            }
            guard parts.count == 2, !parts[1].isEmpty else { throw RedisURLError("\(name) needs a value") }
            guard options[name] == nil else { throw RedisURLError("\(name) is given twice") }
            guard let value = String(parts[1]).removingPercentEncoding else {
                throw RedisURLError("\(name): a % that is not a %-escape (write % as %25)")
            }
            options[name] = value
        }
        return options
    }
}

/// A Redis URL that can't be used.
public struct RedisURLError: Error, Sendable, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}

extension ConfigReader {
    /// A `redis://`, `rediss://` or `unix://` URL in `key`, checked (TLS files, database
    /// number); nil, with the problem recorded, when it is missing or wrong.
    public func redisURL(_ key: String, required: Bool) -> String? {
        guard let url = string(key, required: required) else { return nil }
        do {
            let problems = try RedisEndpoint(url: url).problems()
            for problem in problems { log.add(childPath(key), problem) }
            return problems.isEmpty ? url : nil
        } catch {
            log.add(childPath(key), "\(error)")
            return nil
        }
    }
}
