import Foundation
import WebhookCore
import WebhookEncoding

/// An `http` sink's settings (`url`, `headers`, `timeoutMs`, `mode`, `sign`, `maxInFlight`,
/// `ca`, `certificate`, `privateKey`, `breaker`).
public struct HTTPSinkSettings: SinkSettings {
    /// How the event travels (the CloudEvents HTTP binding).
    public enum Mode: String, Sendable, CaseIterable {
        /// The raw body; the attributes as `ce-` headers; `Content-Type` the event's.
        case binary
        /// The CloudEvent JSON object, `application/cloudevents+json`.
        case structured
    }

    /// `http` or `https`, the host and the port: fixed by the config.
    public var secure: Bool
    public var host: String
    public var port: Int
    /// The path and query, the only parts templates may fill (values percent-encoded).
    public var target: Template
    /// The URL as configured, for logs and receipts.
    public var url: String
    public var headers: [(name: String, value: String)]
    public var timeoutMs: Int
    public var mode: Mode
    /// `sign.secrets`, each the raw key behind `whsec_`.
    public var signingKeys: [[UInt8]]
    /// `sign.secrets` as configured, fingerprinted in ``restartDescription``.
    var signingSecrets: [String]
    public var maxInFlight: Int
    public var caFile: String?
    public var certificateFile: String?
    public var privateKeyFile: String?
    /// `breaker.failures`: transient failures in a row that open the breaker.
    public var breakerFailures: Int
    /// `breaker.openMs`: how long it first stays open.
    public var breakerOpenMs: Int

    public var templates: [Template] { [target] }

    public var restartDescription: String {
        let secrets = signingSecrets.map(SettingFingerprint.of).joined(separator: ",")
        let extra = headers.map { "\($0.name)=\(SettingFingerprint.of($0.value))" }.joined(separator: ",")
        return "url=\(url) headers=\(extra) timeoutMs=\(timeoutMs) mode=\(mode.rawValue) sign=\(secrets) "
            + "maxInFlight=\(maxInFlight) ca=\(caFile ?? "-") certificate=\(certificateFile ?? "-") "
            + "privateKey=\(privateKeyFile ?? "-") breaker=\(breakerFailures)/\(breakerOpenMs)"
    }

    /// The headers the sink writes itself, which `headers` may not set.
    static let ownHeaders: Set<String> = [
        "host", "content-length", "content-type", "transfer-encoding", "connection", "keep-alive", "upgrade", "te",
        "trailer", "webhook-id", "webhook-timestamp", "webhook-signature",
    ]

    /// Reads the settings, recording each problem at its path.
    static func read(_ reader: ConfigReader) -> HTTPSinkSettings? {
        let before = reader.log.problems.count
        let parsedURL = reader.string("url", required: true).flatMap { parseURL($0, reader: reader) }
        var headers: [(name: String, value: String)] = []
        if let object = reader.object("headers") {
            for (name, value) in object.members {
                let lower = name.lowercased()
                if ownHeaders.contains(lower) || lower.hasPrefix("ce-") {
                    object.problem(
                        at: name, lower.hasPrefix("ce-") ? "is set by the sink (a CloudEvent attribute)" : "is set by the sink")
                } else if !name.isHTTPToken {
                    object.problem(at: name, "is not a valid header name")
                } else if case .string(let text) = value {
                    if text.utf8.contains(where: { $0 == 0x0A || $0 == 0x0D || $0 == 0x00 }) {
                        object.problem(at: name, "must not contain a line break")
                    } else {
                        headers.append((name, text))
                    }
                } else {
                    object.problem(at: name, "must be a string, not \(value.kindName)")
                }
            }
        }
        let timeoutMs = reader.integer("timeoutMs", in: 1...600_000) ?? 10_000
        var mode = Mode.binary
        if let text = reader.string("mode") {
            if let chosen = Mode(rawValue: text) {
                mode = chosen
            } else {
                reader.problem(at: "mode", "must be binary or structured, not \"\(text)\"")
            }
        }
        var keys: [[UInt8]] = []
        var secrets: [String] = []
        if let sign = reader.object("sign") {
            sign.rejectUnknownKeys(["secrets"])
            if let list = sign.stringArray("secrets", required: true) {
                for (index, secret) in list.enumerated() {
                    guard secret.hasPrefix("whsec_"), let key = Base64.decode(secret.dropFirst(6)), !key.isEmpty else {
                        sign.log.add(
                            "\(sign.childPath("secrets"))[\(index)]",
                            "must be whsec_ followed by the base64 of the key (a Standard Webhooks secret)")
                        continue
                    }
                    keys.append(key)
                    secrets.append(secret)
                }
            }
        }
        let maxInFlight = reader.integer("maxInFlight", in: 1...4096) ?? 64
        let caFile = reader.string("ca")
        let certificateFile = reader.string("certificate")
        let privateKeyFile = reader.string("privateKey")
        if (certificateFile == nil) != (privateKeyFile == nil) {
            // Named at the one that is missing.
            reader.problem(
                at: certificateFile == nil ? "certificate" : "privateKey",
                "is required with \(certificateFile == nil ? "privateKey" : "certificate")")
        }
        for (key, path) in [("ca", caFile), ("certificate", certificateFile), ("privateKey", privateKeyFile)] {
            guard let path else { continue }
            if let parsedURL, !parsedURL.secure {
                reader.problem(at: key, "is for an https url; this url is http")
            } else if !FileManager.default.isReadableFile(atPath: path) {
                reader.problem(at: key, "cannot read \(path)")
            }
        }
        var breakerFailures = 10
        var breakerOpenMs = 30_000
        if let breaker = reader.object("breaker") {
            breaker.rejectUnknownKeys(["failures", "openMs"])
            breakerFailures = breaker.integer("failures", in: 1...1_000_000) ?? breakerFailures
            breakerOpenMs = breaker.integer("openMs", in: 1...600_000) ?? breakerOpenMs
        }
        guard let parsedURL, reader.log.problems.count == before else { return nil }
        return HTTPSinkSettings(
            secure: parsedURL.secure, host: parsedURL.host, port: parsedURL.port, target: parsedURL.target,
            url: parsedURL.text, headers: headers, timeoutMs: timeoutMs, mode: mode, signingKeys: keys,
            signingSecrets: secrets, maxInFlight: maxInFlight, caFile: caFile, certificateFile: certificateFile,
            privateKeyFile: privateKeyFile, breakerFailures: breakerFailures, breakerOpenMs: breakerOpenMs)
    }

    /// `http[s]://host[:port]/path?query`: the scheme, host and port fixed, templates only
    /// after the first `/`.
    static func parseURL(_ text: String, reader: ConfigReader) -> (
        secure: Bool, host: String, port: Int, target: Template, text: String
    )? {
        let secure: Bool
        let rest: Substring
        if text.lowercased().hasPrefix("https://") {
            secure = true
            rest = text.dropFirst(8)
        } else if text.lowercased().hasPrefix("http://") {
            secure = false
            rest = text.dropFirst(7)
        } else {
            reader.problem(at: "url", "must start with http:// or https://")
            return nil
        }
        let authority = rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        var target = String(rest.dropFirst(authority.count))
        if authority.contains("{") || authority.contains("}") {
            reader.problem(at: "url", "the host is fixed: templates may fill the path and query only")
            return nil
        }
        if authority.contains("@") {
            reader.problem(at: "url", "must not hold credentials (user@host): put them in headers")
            return nil
        }
        if target.contains("#") {
            reader.problem(at: "url", "must not have a fragment (#)")
            return nil
        }
        var host = String(authority)
        var port = secure ? 443 : 80
        if host.hasPrefix("[") {
            // [IPv6]:port
            guard let close = host.firstIndex(of: "]") else {
                reader.problem(at: "url", "has an unclosed [ in its host")
                return nil
            }
            let after = host[host.index(after: close)...]
            if after.hasPrefix(":") {
                guard let number = Int(after.dropFirst()), (1...65535).contains(number) else {
                    reader.problem(at: "url", "has an invalid port")
                    return nil
                }
                port = number
            } else if !after.isEmpty {
                reader.problem(at: "url", "has an invalid host")
                return nil
            }
            host = String(host[host.index(after: host.startIndex)..<close])
        } else if let colon = host.lastIndex(of: ":") {
            guard let number = Int(host[host.index(after: colon)...]), (1...65535).contains(number) else {
                reader.problem(at: "url", "has an invalid port")
                return nil
            }
            port = number
            host = String(host[..<colon])
        }
        guard !host.isEmpty, host.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "." || $0 == "-" || $0 == ":" }) else {
            reader.problem(at: "url", "has an invalid host")
            return nil
        }
        if target.isEmpty || target.hasPrefix("?") { target = "/" + target }
        guard !target.utf8.contains(where: { $0 <= 0x20 || $0 >= 0x7F }) else {
            reader.problem(at: "url", "must not contain spaces or non-ASCII characters in its path (percent-encode them)")
            return nil
        }
        do {
            return (secure, host, port, try Template(parsing: target), text)
        } catch {
            reader.problem(at: "url", error.message)
            return nil
        }
    }
}
