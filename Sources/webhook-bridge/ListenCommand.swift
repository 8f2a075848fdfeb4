import ArgumentParser
import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL
import WebhookBridge
import WebhookCore
import WebhookEncoding
import WebhookProviders

/// `webhook-bridge listen`: follows a bridge's inspector event stream and POSTs each event
/// to a local URL, so an app on a laptop gets the webhooks a deployed bridge receives.
struct ListenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "listen",
        abstract: "Follows a bridge's inspector event stream and POSTs each event to a local URL.",
        discussion: """
            Each accepted event is POSTed to --forward-to with the body and headers the provider sent \
            (or, with --scheme and --secret, signed again for a local secret), and one line is printed \
            with the local answer and its latency. A lost stream is reconnected with backoff and resumed \
            after the last event handled, which is also kept in a state file, so a restarted listen goes \
            on where it stopped (as far as the bridge still holds the events: admin.recent).
            """)

    @Argument(help: "The bridge's admin URL, e.g. https://bridge.internal:9090.")
    var adminURL: String

    @Option(help: "The admin token (default: $WEBHOOK_BRIDGE_ADMIN_TOKEN).")
    var token: String?

    @Option(name: .customLong("source"), help: "Only events of this source; repeatable (default: all).")
    var sources: [String] = []

    @Option(name: .customLong("forward-to"), help: "Where to POST each event, e.g. http://localhost:3000/webhooks.")
    var forwardTo: String

    @Option(help: "Sign each event again with this scheme (with --secret) instead of passing the provider's headers on.")
    var scheme: String?

    @Option(help: "The local secret to sign with (with --scheme).")
    var secret: String?

    @Option(help: "The file that keeps the last event handled (default: under $XDG_STATE_HOME or ~/.local/state).")
    var state: String?

    @Option(help: "Seconds to wait for the local app's answer.")
    var timeout: Int = 10

    func validate() throws {
        guard HTTPTarget(adminURL) != nil else { throw ValidationError("\(adminURL): not an http(s)://host[:port] URL") }
        guard HTTPTarget(forwardTo) != nil else {
            throw ValidationError("--forward-to \(forwardTo): not an http(s)://host[:port]/path URL")
        }
        guard (scheme == nil) == (secret == nil) else { throw ValidationError("--scheme and --secret go together") }
        if let scheme, !WebhookSigner.schemes.contains(scheme) {
            throw ValidationError(
                "--scheme: unknown scheme \"\(scheme)\"; one of \(WebhookSigner.schemes.joined(separator: ", "))")
        }
        guard token ?? ProcessInfo.processInfo.environment["WEBHOOK_BRIDGE_ADMIN_TOKEN"] != nil else {
            throw ValidationError("--token (or WEBHOOK_BRIDGE_ADMIN_TOKEN) is required")
        }
    }

    func run() async throws {
        let admin = HTTPTarget(adminURL)!
        let token = self.token ?? ProcessInfo.processInfo.environment["WEBHOOK_BRIDGE_ADMIN_TOKEN"]!
        let statePath = state ?? Self.defaultStatePath(for: "\(adminURL) \(sources.sorted()) \(forwardTo)")
        var last = statePath.flatMap(Self.readState)
        var base = admin.path
        while base.hasSuffix("/") { base.removeLast() }
        let query = sources.map { "source=" + ($0.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? $0) }
        let path = base + "/api/events" + (query.isEmpty ? "" : "?" + query.joined(separator: "&"))
        say(
            "following \(adminURL) \(sources.isEmpty ? "(all sources)" : sources.joined(separator: ", ")) -> \(forwardTo), "
                + (last.map { "after event \($0)" } ?? "from now"))
        var backoff = Self.initialBackoff
        while true {
            var headers = [("Authorization", "Bearer \(token)")]
            if let last { headers.append(("Last-Event-ID", last)) }
            var connected = false
            do {
                try await EventStreamClient.follow(
                    host: admin.host, port: admin.port, path: path, headers: headers,
                    tls: admin.secure ? .makeClientConfiguration() : nil
                ) { message in
                    if !connected {
                        connected = true
                        backoff = Self.initialBackoff
                        say("connected to \(adminURL)")
                    }
                    switch message {
                    case .event(let event):
                        let line = await forward(event)
                        if let id = event.id { last = id }
                        // Saved before the line is printed: what is printed is not sent again.
                        if let statePath, let last { Self.writeState(last, to: statePath) }
                        say(line)
                    case .position(let id):
                        last = id
                        if let statePath { Self.writeState(id, to: statePath) }
                    case .comment(let text):
                        if text.contains("no longer held") || text.contains("restarted") { say("! \(text)") }
                    }
                }
                say("stream ended by the bridge; reconnecting in \(Self.seconds(backoff))")
            } catch let failure as EventStreamClient.Failure {
                if let status = failure.status, status == .unauthorized || status == .notFound || status == .forbidden {
                    printError(
                        "webhook-bridge: listen: \(adminURL) refused the stream: \(failure)"
                            + (status == .unauthorized ? " (check --token)" : ""))
                    throw ExitCode(1)
                }
                say("stream lost: \(failure); reconnecting in \(Self.seconds(backoff))")
            } catch {
                say("stream lost: \(error); reconnecting in \(Self.seconds(backoff))")
            }
            try await Task.sleep(for: backoff)
            backoff = min(backoff * 2, Self.maximumBackoff)
        }
    }

    static let initialBackoff = Duration.milliseconds(500)
    static let maximumBackoff = Duration.seconds(15)

    static func seconds(_ duration: Duration) -> String {
        let milliseconds = duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
        return milliseconds % 1000 == 0 ? "\(milliseconds / 1000) s" : "\(Double(milliseconds) / 1000) s"
    }

    // MARK: - One event

    /// Headers never passed on: the connection's own (the client sets them).
    static let connectionHeaders: Set<String> = ["host", "content-length", "connection", "transfer-encoding", "expect"]

    /// POSTs `event` to the local URL (three tries while the app can't be connected to; one
    /// when the request went out, as a timeout does not say it was not received); the line
    /// to print: time, sequence, source, type, id, and the answer with its latency.
    func forward(_ message: EventStreamClient.Event) async -> String {
        let sequence = message.id.map { "#\($0)" } ?? "#?"
        guard let json = try? JSONParser.parse(Array(message.data.utf8)), let id = json["id"]?.scalarText else {
            return "\(Self.clock()) \(sequence) skipped: not a CloudEvent"
        }
        let source = json["source"]?.scalarText ?? "?"
        let type = json["type"]?.scalarText ?? "?"
        let prefix = "\(Self.clock()) \(sequence) \(source) \(type) \(id)"
        if let omitted = json["webhookdataomitted"]?.scalarText {
            return "\(prefix) skipped: its body (\(omitted) bytes) is over the bridge's admin.maxBodyBytes"
        }
        var body: [UInt8] = []
        if let encoded = json["data_base64"]?.scalarText {
            body = Base64.decode(encoded) ?? []
        } else if let data = json["data"] {
            JSONWriter.append(data, to: &body)
        }
        var headers: [(String, String)] = []
        if case .object(let members)? = json["webhookheaders"] {
            for (name, value) in members where !Self.connectionHeaders.contains(name.lowercased()) && name.isHTTPToken {
                if let text = value.scalarText, !text.utf8.contains(where: { $0 == 0x0D || $0 == 0x0A || $0 == 0 }) {
                    headers.append((name, text))
                }
            }
        }
        let target = HTTPTarget(forwardTo)!
        var url = forwardTo
        if let scheme, let secret {
            do {
                let output = try WebhookSigner.sign(
                    scheme: scheme,
                    WebhookSigner.Input(
                        body: body, secret: secret, timestamp: Timestamp.now().secondsSince1970, id: id, type: type,
                        url: forwardTo))
                // The provider's signature headers give way to the local ones.
                let signed = Set(output.headers.map { $0.0.lowercased() })
                headers.removeAll { signed.contains($0.0.lowercased()) || Self.carriesSignature($0.0) }
                headers += output.headers
                body = output.body ?? body
                url = output.url ?? forwardTo
            } catch {
                return "\(prefix) not signed: \(error)"
            }
        }
        if !headers.contains(where: { $0.0.lowercased() == "content-type" }), let type = json["datacontenttype"]?.scalarText {
            headers.append(("Content-Type", type))
        }
        let destination = HTTPTarget(url) ?? target
        let clock = ContinuousClock()
        var failure = ""
        for attempt in 0..<3 {
            if attempt > 0 { try? await Task.sleep(for: .milliseconds(500 << (attempt - 1))) }
            let started = clock.now
            do {
                let answer = try await WebhookClient.send(
                    host: destination.host, port: destination.port, path: destination.path, headers: headers, body: body,
                    timeout: .seconds(Int64(timeout)), tls: destination.secure ? .makeClientConfiguration() : nil)
                let elapsed = clock.now - started
                let milliseconds = Double(elapsed.components.attoseconds) / 1e15 + Double(elapsed.components.seconds) * 1000
                return
                    "\(prefix) -> \(answer.status.code) \(answer.status.reasonPhrase) \(String(format: "%.1f", milliseconds)) ms"
            } catch let error as WebhookClient.Failure where !error.connected {
                // Not sent: the app is not listening (yet).
                failure = "\(error)"
            } catch {
                // Sent, perhaps received: not sent again (the app may be slow, not down).
                return "\(prefix) -> failed: \(error) (not sent again: the app may have received it)"
            }
        }
        return "\(prefix) -> failed: \(failure)"
    }

    static func carriesSignature(_ name: String) -> Bool {
        let lower = name.lowercased()
        return ["signature", "hmac", "token"].contains { lower.contains($0) }
    }

    static func clock() -> String {
        let now = Timestamp.now().rfc3339
        // 2026-12-04T10:11:12.345Z -> 10:11:12
        guard let t = now.firstIndex(of: "T") else { return now }
        return String(now[now.index(after: t)...].prefix(8))
    }

    // MARK: - Where it left off

    /// `$XDG_STATE_HOME/webhook-bridge/listen-HASH` (else `~/.local/state/…`), one file per
    /// admin URL, sources and local URL; nil without a home.
    static func defaultStatePath(for key: String) -> String? {
        let environment = ProcessInfo.processInfo.environment
        guard let directory = environment["XDG_STATE_HOME"] ?? environment["HOME"].map({ $0 + "/.local/state" }) else {
            return nil
        }
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in key.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        return "\(directory)/webhook-bridge/listen-\(String(hash, radix: 16))"
    }

    static func readState(_ path: String) -> String? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return UInt64(text) != nil ? text : nil
    }

    static func writeState(_ id: String, to path: String) {
        let directory = (path as NSString).deletingLastPathComponent
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        // Written aside and renamed: a listen killed mid-write leaves the previous id.
        let temporary = path + ".tmp"
        guard FileManager.default.createFile(atPath: temporary, contents: Data((id + "\n").utf8)) else { return }
        _ = rename(temporary, path)
    }
}

/// One line to standard output, written at once (not held in a buffer while piped).
private func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}
