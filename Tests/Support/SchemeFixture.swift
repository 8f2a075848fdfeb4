import WebhookBridge
import WebhookCore
import WebhookCrypto
import WebhookEncoding
import WebhookProviders

/// Keys and settings for signing and verifying every scheme in the tests.
public struct SchemeFixture: Sendable {
    public let scheme: String
    /// What the config holds (public keys for the asymmetric schemes).
    public let verifySecret: String
    /// What the provider holds.
    public let signSecret: String
    /// The header that carries the signature (or token).
    public let signatureHeader: String
    public let url: String?
    /// More of `verify` (`, "verifyToken": "vt"`).
    public var extra: String = ""

    /// For test arguments: the scheme's name.
    public var testDescription: String { scheme + (signSecret.hasPrefix("whsk_") ? " (Ed25519)" : "") }

    public static let body = Array(
        #"{"id":"evt_1","type":"thing.happened","event_id":"e_1","event_type":"thing.happened","event":"thing.happened","webhookTimestamp":TS000}"#
            .utf8)

    /// A fixture for every provider of the registry that `sign` can sign for: those below
    /// need keys of their own kind or a URL; every other one is signed and verified with a
    /// plain secret (and its `publicUrl` when it takes one), so a new provider is covered
    /// by these tests as soon as it is in the registry.
    public static func all() -> [SchemeFixture] {
        let special = specials()
        let named = Set(special.map(\.scheme)).union(notGenerated.keys)
        let generated = ProviderRegistry.all.filter { $0.canSign && !named.contains($0.name) }.map { provider in
            let secret = "fx-\(provider.name)"
            let url = provider.keys.contains("publicUrl") ? "https://hooks.example.com/\(provider.name)" : nil
            let probe = SchemeFixture(
                scheme: provider.name, verifySecret: secret, signSecret: secret, signatureHeader: "", url: url)
            // The header that carries the signature: the one of sign's headers the verifier reads it
            // from, or (a scheme with an unsigned handshake names none) the catalog's description starts with.
            let described = provider.signature.split(separator: ":").first.map(String.init) ?? ""
            let names = Set((((try? probe.verifier())?.signatureHeaders ?? []) + [described]).map { $0.lowercased() })
            let signed = (try? probe.signed(body: body, at: 1_764_000_000))?.headers ?? []
            let header = signed.first { names.contains($0.0.lowercased()) }?.0 ?? "none found for \(provider.name)"
            return SchemeFixture(
                scheme: provider.name, verifySecret: secret, signSecret: secret, signatureHeader: header, url: url)
        }
        return special + generated
    }

    /// Providers `sign` can sign for that these fixtures leave to their own tests, each with
    /// the reason; any other provider of the registry gets a fixture.
    public static let notGenerated: [String: String] = [
        "none": "no signature",
        "hmac": "needs header settings in verify (HMACTests)",
        "event-grid": "a query-parameter secret, not a header (CatalogTests)",
        "mailgun": "signs inside the body (CatalogTests, MailgunReplayTests)",
    ]

    /// Schemes that sign a timestamp and refuse one outside the tolerance.
    public static let timestamped: Set<String> = [
        "stripe", "standard-webhooks", "svix", "clerk", "resend", "slack", "paddle", "zoom", "sendgrid", "discord", "linear",
        "box", "calendly", "hubspot", "mux", "twitch", "zendesk", "jwt", "vonage", "monday", "netlify", "customerio", "workos",
        "persona", "frameio",
    ]

    /// Schemes whose secret travels as it is (a token) rather than signing the body.
    /// (monday.com's signed token covers no body either.)
    public static let tokenSchemes: Set<String> = [
        "gitlab", "basic", "okta", "telegram", "token", "monday", "alertmanager", "cloudflare", "flutterwave", "auth0",
        "azure-devops", "chargebee", "postmark", "pipedrive",
    ]

    public static func specials() -> [SchemeFixture] {
        let sendgrid = P256PrivateKey()
        let discord = Ed25519PrivateKey()
        let ed25519 = Ed25519PrivateKey()
        return [
            .init(
                scheme: "stripe", verifySecret: "whsec_s", signSecret: "whsec_s", signatureHeader: "Stripe-Signature", url: nil),
            .init(scheme: "github", verifySecret: "g", signSecret: "g", signatureHeader: "X-Hub-Signature-256", url: nil),
            .init(
                scheme: "standard-webhooks", verifySecret: "whsec_c2VjcmV0", signSecret: "whsec_c2VjcmV0",
                signatureHeader: "webhook-signature", url: nil),
            .init(
                scheme: "standard-webhooks", verifySecret: "whpk_" + Base64.encode(Array(ed25519.publicKey.rawRepresentation)),
                signSecret: "whsk_" + Base64.encode(ed25519.seed), signatureHeader: "webhook-signature",
                url: nil),
            .init(
                scheme: "svix", verifySecret: "whsec_c2VjcmV0", signSecret: "whsec_c2VjcmV0", signatureHeader: "svix-signature",
                url: nil),
            .init(
                scheme: "clerk", verifySecret: "whsec_c2VjcmV0", signSecret: "whsec_c2VjcmV0", signatureHeader: "svix-signature",
                url: nil),
            .init(
                scheme: "resend", verifySecret: "whsec_c2VjcmV0", signSecret: "whsec_c2VjcmV0", signatureHeader: "svix-signature",
                url: nil),
            .init(
                scheme: "meta", verifySecret: "mt", signSecret: "mt", signatureHeader: "X-Hub-Signature-256", url: nil,
                extra: #", "verifyToken": "vt""#),
            .init(scheme: "slack", verifySecret: "sl", signSecret: "sl", signatureHeader: "X-Slack-Signature", url: nil),
            .init(
                scheme: "jwt", verifySecret: "jw", signSecret: "jw", signatureHeader: "Authorization", url: nil,
                extra: #", "algorithms": ["HS256"], "bodyHashClaim": "sha256""#),
            .init(scheme: "shopify", verifySecret: "sh", signSecret: "sh", signatureHeader: "X-Shopify-Hmac-Sha256", url: nil),
            .init(
                scheme: "twilio", verifySecret: "tw", signSecret: "tw", signatureHeader: "X-Twilio-Signature",
                url: "https://hooks.example.com/twilio"),
            .init(scheme: "paddle", verifySecret: "pd", signSecret: "pd", signatureHeader: "Paddle-Signature", url: nil),
            .init(
                scheme: "square", verifySecret: "sq", signSecret: "sq", signatureHeader: "x-square-hmacsha256-signature",
                url: "https://hooks.example.com/square"),
            .init(scheme: "gitlab", verifySecret: "gl", signSecret: "gl", signatureHeader: "X-Gitlab-Token", url: nil),
            .init(scheme: "linear", verifySecret: "ln", signSecret: "ln", signatureHeader: "Linear-Signature", url: nil),
            .init(scheme: "zoom", verifySecret: "zm", signSecret: "zm", signatureHeader: "x-zm-signature", url: nil),
            .init(
                scheme: "sendgrid", verifySecret: Base64.encode(Array(sendgrid.publicKey.derRepresentation)),
                signSecret: Base64.encode(Array(sendgrid.derRepresentation)), signatureHeader: SendGridFixture.signatureHeader,
                url: nil),
            .init(
                scheme: "discord", verifySecret: Hex.encode(discord.publicKey.rawRepresentation),
                signSecret: Hex.encode(discord.seed),
                signatureHeader: "X-Signature-Ed25519", url: nil),
        ]
    }

    /// The body with `webhookTimestamp` set to `now` (Linear signs its timestamp in the body).
    public static func body(at now: Int64) -> [UInt8] {
        Array(String(decoding: body, as: UTF8.self).replacing("TS000", with: String(now * 1000)).utf8)
    }

    /// The verifier the config would build.
    public func verifier() throws -> any WebhookScheme {
        let publicUrl = url.map { #", "publicUrl": "\#($0)""# } ?? ""
        let text = """
            {"sinks": {"a": {"type": "file", "path": "x"}}, "spool": {"directory": "spool"},
             "sources": {"s": {"path": "/s", "sinks": ["a"],
                               "verify": {"scheme": "\(scheme)", "secrets": ["\(verifySecret)"]\(publicUrl)\(extra)}}}}
            """
        // The source is the config's only one: loadConfig throws if it could not be read.
        return try Bridge.loadConfig(Array(text.utf8), environment: [:]).sources.values.first!.scheme
    }

    public func signed(body: [UInt8], at now: Int64) throws -> (headers: [(String, String)], uri: String) {
        let output = try WebhookSigner.sign(scheme: scheme, .init(body: body, secret: signSecret, timestamp: now, url: url))
        let signedURL = output.url ?? url ?? "/s"
        let uri = signedURL.firstIndex(of: "?").map { "/s" + signedURL[$0...] } ?? "/s"
        return (output.headers, uri)
    }
}

public enum SendGridFixture {
    public static let signatureHeader = "X-Twilio-Email-Event-Webhook-Signature"
}
