import WebhookCore

/// The built-in providers, in the order `providers` lists them. Adding a provider: its recipe
/// (see `Catalog/HMACRecipes.swift`), or a file with its scheme and its `Provider` (see
/// `DropboxScheme.swift`), and one line here.
public enum ProviderRegistry {
    public static let all: [Provider] = [
        .stripe,
        .github,
        .standardWebhooks,
        .slack,
        .shopify,
        .twilio,
        .paddle,
        .square,
        .gitlab,
        .linear,
        .zoom,
        .sendgrid,
        .discord,
        .meta,
        .twitch,
        .dropbox,
        .okta,
        .jwt,
        .gcpPubSub,
        .vonage,
        .monday,
        .netlify,
        .microsoftGraph,
        .eventGrid,
        .sns,
        .paypal,
        .asana,
        .trello,
        .woocommerce,
        .xero,
        .bitbucket,
        .jira,
        .intercom,
        .typeform,
        .calcom,
        .razorpay,
        .lemonsqueezy,
        .webex,
        .docusign,
        .pagerduty,
        .calendly,
        .mux,
        .hubspot,
        .zendesk,
        .box,
        .sentry,
        .coinbaseCommerce,
        .checkout,
        .clickup,
        .segment,
        .customerio,
        .workos,
        .persona,
        .frameio,
        .gocardless,
        .vercel,
        .gitea,
        .forgejo,
        .paystack,
        .nylas,
        .grafana,
        .alertmanager,
        .cloudflare,
        .flutterwave,
        .auth0,
        .mailgun,
        .telegram,
        .basic,
        .azureDevOps,
        .chargebee,
        .postmark,
        .pipedrive,
        .token,
        .hmac,
        .none,
    ]

    /// The provider `verify.scheme` names (by name or alias).
    public static func named(_ scheme: String) -> Provider? {
        all.first { $0.name == scheme || $0.aliases.contains(scheme) }
    }

    /// Every name and alias `verify.scheme` accepts.
    public static var schemeNames: [String] { all.flatMap { [$0.name] + $0.aliases } }

    /// A source's `verify` object read into its scheme; nil, with the problems recorded on
    /// `reader` at their JSON paths, when it is wrong.
    public static func readVerify(_ reader: ConfigReader) -> (any WebhookScheme)? {
        let log = reader.log
        guard let scheme = reader.string("scheme", required: true) else { return nil }
        guard let provider = ProviderRegistry.named(scheme) else {
            let names = ProviderRegistry.schemeNames
            let hint = closestKey(to: scheme, in: names).map { "; did you mean \"\($0)\"?" } ?? ""
            log.add(reader.childPath("scheme"), "unknown scheme \"\(scheme)\"\(hint)")
            return nil
        }
        guard provider.usesSecrets else {
            reader.rejectUnknownKeys(["scheme"] + provider.keys)
            return provider.make(VerifyConfig(scheme: scheme, secrets: nil, tolerance: 300, reader: reader, log: log))
        }
        reader.rejectUnknownKeys(["scheme", "secrets", "toleranceSeconds"] + provider.keys)
        let tolerance = reader.integer("toleranceSeconds", in: 0...Int(Int32.max)) ?? provider.defaultTolerance
        // A provider whose keys can come from elsewhere (`jwt`'s `jwksUrl`) needs no secrets then.
        let secrets =
            (provider.secretsOptional || provider.secretsOptionalWith.map(reader.has) == true) && !reader.has("secrets")
            ? [] : checkedSecrets(reader, provider: provider, log: log)
        return provider.make(VerifyConfig(scheme: scheme, secrets: secrets, tolerance: tolerance, reader: reader, log: log))
    }

    /// `verify.secrets`, each one usable: a blank secret, or one whose key part is empty (a
    /// bare `whsec_`, Basic credentials `:` from two empty variables), would let anyone who
    /// sends the same emptiness in, so it is a config error at its index (never printed).
    private static func checkedSecrets(_ reader: ConfigReader, provider: Provider, log: ProblemLog) -> [String]? {
        guard let secrets = reader.stringArray("secrets", required: true) else { return nil }
        var ok = true
        for (index, secret) in secrets.enumerated() {
            let problem = secret.allSatisfy(\.isWhitespace) ? "must not be blank" : provider.secretProblem?(secret)
            if let problem {
                log.add("\(reader.childPath("secrets"))[\(index)]", problem)
                ok = false
            }
        }
        return ok ? secrets : nil
    }
}
