/// Where Redis is: `redis://[[user]:password@]host[:port][/db]` or `unix:///path/to.sock[?db=N]`.
public struct RedisEndpoint: Sendable, Equatable {
    public enum Address: Sendable, Equatable {
        case tcp(host: String, port: Int)
        case unix(path: String)
    }

    public let address: Address
    public let username: String?
    public let password: String?
    public let database: Int

    /// The address without credentials, for logs and errors.
    public var display: String {
        switch address {
        case .tcp(let host, let port): return "redis://\(host):\(port)/\(database)"
        case .unix(let path): return "unix://\(path)"
        }
    }

    /// Parses `url`; throws a message that says what is wrong (never echoing a password).
    public init(url: String) throws(RedisURLError) {
        if url.hasPrefix("unix://") {
            let rest = url.dropFirst(7)
            let parts = rest.split(separator: "?", maxSplits: 1)
            guard let path = parts.first, !path.isEmpty else { throw RedisURLError("unix:// needs a socket path") }
            var database = 0
            if parts.count == 2, parts[1].hasPrefix("db=") {
                guard let db = Int(parts[1].dropFirst(3)), db >= 0 else { throw RedisURLError("db must be a number") }
                database = db
            }
            self.address = .unix(path: String(path))
            self.username = nil
            self.password = nil
            self.database = database
            return
        }
        guard url.hasPrefix("redis://") else {
            throw RedisURLError(
                url.hasPrefix("rediss://")
                    ? "rediss:// (TLS) is not supported by this build's hiredis; use a TLS proxy" : "must start with redis://")
        }
        var rest = url.dropFirst(8)
        var username: String?
        var password: String?
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
        self.address = .tcp(host: host, port: port)
        self.username = username
        self.password = password
        self.database = database
    }
}

/// A Redis URL that can't be used.
public struct RedisURLError: Error, Sendable, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
