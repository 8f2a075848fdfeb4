import WebhookCore

/// The providers that sign with an HMAC in a header: each is one recipe, its defaults from
/// the provider's documentation (and its official SDK, where the tests take their vectors).
/// Adding one is a recipe here and a line in ``ProviderRegistry/all``.
extension Provider {
    /// GitHub: `X-Hub-Signature-256: sha256=<hex>`; id `X-GitHub-Delivery`, type `X-GitHub-Event`.
    static let github = recipe(
        "github",
        Recipe(
            "X-Hub-Signature-256", prefix: "sha256=", id: .header("X-GitHub-Delivery"), type: .header("X-GitHub-Event")))

    /// Shopify: `X-Shopify-Hmac-Sha256: <base64>`; id `X-Shopify-Webhook-Id`, type `X-Shopify-Topic`.
    /// Shopify's SDKs also refuse a delivery without `X-Shopify-Shop-Domain` (and the
    /// JavaScript one without `X-Shopify-API-Version`): `sign` sends both.
    static let shopify = recipe(
        "shopify",
        Recipe(
            "X-Shopify-Hmac-Sha256", .hmac(.sha256, .base64), id: .header("X-Shopify-Webhook-Id"),
            type: .header("X-Shopify-Topic"),
            exampleHeaders: [("X-Shopify-Shop-Domain", "example.myshopify.com"), ("X-Shopify-API-Version", "2025-01")]))

    /// Stripe: `Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>…]`, each `v1` an HMAC-SHA256 of
    /// `"<t>.<body>"` keyed with the whole `whsec_…` string. A timestamp outside the tolerance
    /// is refused either way (SPEC section 4; Stripe's SDKs check only staleness).
    static let stripe = recipe(
        "stripe",
        Recipe(
            "Stripe-Signature", items: .stripeStyle,
            signing: .timestampThenBody("."), id: .pointer("/id"), type: .pointer("/type")),
        note: "keyed with the whole whsec_ string"
    )
    .checkingSecrets { secret in
        secret.hasPrefix("whsec_") && secret.dropFirst(6).allSatisfy(\.isWhitespace)
            ? "is only the prefix whsec_: the key after it is empty (is its variable set?)" : nil
    }

    /// Paddle Billing: `Paddle-Signature: ts=<unix>;h1=<hex HMAC-SHA256 of "<ts>:<body>">`, any
    /// number of `h1` entries (rotation).
    static let paddle = recipe(
        "paddle",
        Recipe(
            "Paddle-Signature", items: Recipe.Items(separator: ";", timestampKey: "ts", signatureKey: "h1"),
            signing: .timestampThenBody(":"), id: .pointer("/event_id"), type: .pointer("/event_type")))

    /// Bitbucket Cloud: `X-Hub-Signature: sha256=<hex>`; id `X-Request-UUID`, type `X-Event-Key`.
    static let bitbucket = recipe(
        "bitbucket",
        Recipe("X-Hub-Signature", prefix: "sha256=", id: .header("X-Request-UUID"), type: .header("X-Event-Key")))

    /// Jira: `X-Hub-Signature: sha256=<hex>`; id `X-Atlassian-Webhook-Identifier`, type body
    /// `webhookEvent`.
    static let jira = recipe(
        "jira",
        Recipe(
            "X-Hub-Signature", prefix: "sha256=", id: .header("X-Atlassian-Webhook-Identifier"),
            type: .pointer("/webhookEvent")))

    /// Intercom: `X-Hub-Signature: sha1=<hex HMAC-SHA1>` keyed with the app's client secret.
    static let intercom = recipe(
        "intercom",
        Recipe("X-Hub-Signature", .hmac(.sha1, .hex), prefix: "sha1=", id: .pointer("/id"), type: .pointer("/topic")))

    /// Typeform: `Typeform-Signature: sha256=<base64>`.
    static let typeform = recipe(
        "typeform",
        Recipe(
            "Typeform-Signature", .hmac(.sha256, .base64), prefix: "sha256=", id: .pointer("/event_id"),
            type: .pointer("/event_type")))

    /// Cal.com: `X-Cal-Signature-256: <hex>`.
    static let calcom = recipe("calcom", Recipe("X-Cal-Signature-256", type: .pointer("/triggerEvent")))

    /// Razorpay: `X-Razorpay-Signature: <hex>`; id `X-Razorpay-Event-Id`.
    static let razorpay = recipe(
        "razorpay", Recipe("X-Razorpay-Signature", id: .header("X-Razorpay-Event-Id"), type: .pointer("/event")))

    /// Lemon Squeezy: `X-Signature: <hex>`.
    /// Lemon Squeezy also sends the event's name as `X-Event-Name` (unsigned: the signed
    /// body's name comes first; `sign` fills the header).
    static let lemonsqueezy = recipe(
        "lemonsqueezy", Recipe("X-Signature", type: FieldSource([.pointer("/meta/event_name"), .header("X-Event-Name")])))

    /// Webex: `X-Spark-Signature: <hex HMAC-SHA1>`; type `resource.event` from the body.
    static let webex = recipe(
        "webex",
        Recipe(
            "X-Spark-Signature", .hmac(.sha1, .hex),
            type: FieldSource([
                .computed("body resource + . + body event") { request in
                    let json = request.bodyJSON
                    guard let resource = json?["resource"]?.scalarText, let event = json?["event"]?.scalarText else { return nil }
                    return resource + "." + event
                }
            ])))

    /// DocuSign Connect: any of `X-DocuSign-Signature-1`, `-2`, … (one per HMAC key
    /// configured in DocuSign, up to 100) holding the base64 HMAC-SHA256 of the body, with
    /// `X-Authorization-Digest: HMACSHA256`.
    static let docusign = recipe(
        "docusign",
        Recipe(
            "X-DocuSign-Signature-1", extraHeaders: (2...100).map { "X-DocuSign-Signature-\($0)" }, .hmac(.sha256, .base64),
            type: .pointer("/event"), constantHeaders: [("X-Authorization-Digest", "HMACSHA256")]))

    /// PagerDuty (v3 webhooks): `X-PagerDuty-Signature: v1=<hex>[,v1=<hex>…]` (one per
    /// secret being rotated); id `X-Webhook-Id`, type body `event.event_type`.
    static let pagerduty = recipe(
        "pagerduty",
        Recipe(
            "X-PagerDuty-Signature", prefix: "v1=", listSeparator: ",", id: .header("X-Webhook-Id"),
            type: .pointer("/event/event_type")))

    /// Calendly: `Calendly-Webhook-Signature: t=T,v1=S`, S the HMAC of `T.body`.
    static let calendly = recipe(
        "calendly",
        Recipe(
            "Calendly-Webhook-Signature", items: .stripeStyle,
            signing: .timestampThenBody("."), type: .pointer("/event")))

    /// Mux: `Mux-Signature: t=T,v1=S[,v1=S2]`; id body `id`, type body `type`.
    static let mux = recipe(
        "mux",
        Recipe(
            "Mux-Signature", items: .stripeStyle,
            signing: .timestampThenBody("."), id: .pointer("/id"), type: .pointer("/type")))

    /// Zendesk: `X-Zendesk-Webhook-Signature: <base64 HMAC-SHA256 of timestamp + body>` with
    /// `X-Zendesk-Webhook-Signature-Timestamp` (ISO 8601) within the tolerance.
    static let zendesk = recipe(
        "zendesk",
        Recipe(
            "X-Zendesk-Webhook-Signature", .hmac(.sha256, .base64), timestampHeader: "X-Zendesk-Webhook-Signature-Timestamp",
            timestampFormat: .rfc3339, signing: .timestampThenBody(), id: .pointer("/id"),
            type: FieldSource([.pointer("/type"), .constant("zendesk")])))

    /// Box: `BOX-SIGNATURE-PRIMARY` or `BOX-SIGNATURE-SECONDARY: <base64 HMAC-SHA256 of body +
    /// timestamp>` with `BOX-DELIVERY-TIMESTAMP` (RFC 3339) within the tolerance; either header
    /// with either secret (Box's primary and secondary keys). Box also sends
    /// `BOX-SIGNATURE-VERSION: 1`, `BOX-SIGNATURE-ALGORITHM: HmacSHA256` (its SDKs refuse a
    /// message without them, or with other values: other values are refused here) and
    /// `BOX-DELIVERY-ID`.
    static let box = recipe(
        "box",
        Recipe(
            "BOX-SIGNATURE-PRIMARY", extraHeaders: ["BOX-SIGNATURE-SECONDARY"], .hmac(.sha256, .base64),
            timestampHeader: "BOX-DELIVERY-TIMESTAMP", timestampFormat: .rfc3339, signing: .bodyThenTimestamp,
            id: .pointer("/id"), type: .pointer("/trigger"),
            constantHeaders: [("BOX-SIGNATURE-VERSION", "1"), ("BOX-SIGNATURE-ALGORITHM", "HmacSHA256")],
            deliveryHeader: "BOX-DELIVERY-ID"),
        note: "either key")
}
