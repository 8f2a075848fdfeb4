/// The built-in providers, in the order `providers` lists them. Adding a provider: one file
/// with its scheme and its `Provider` (see `GitHubScheme.swift`), and one line here.
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
        .microsoftGraph,
        .eventGrid,
        .sns,
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
        .mailgun,
        .telegram,
        .basic,
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
}
