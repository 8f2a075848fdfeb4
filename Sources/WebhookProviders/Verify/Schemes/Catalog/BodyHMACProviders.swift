import WebhookCore

/// Providers that sign the body with an HMAC in one header: each is data over the `hmac`
/// engine (``Provider/hmacVariant(name:settings:signature:id:type:refine:)``), its defaults
/// from the provider's documentation.
extension Provider {
    /// Bitbucket Cloud: `X-Hub-Signature: sha256=<hex>`; id `X-Request-UUID`, type `X-Event-Key`.
    static let bitbucket = hmacVariant(
        name: "bitbucket",
        settings: .variant("X-Hub-Signature", prefix: "sha256=", idHeader: "X-Request-UUID", typeHeader: "X-Event-Key"),
        signature: "X-Hub-Signature: sha256= hex HMAC-SHA256 of the body", id: "X-Request-UUID", type: "X-Event-Key")

    /// Jira: `X-Hub-Signature: sha256=<hex>`; id `X-Atlassian-Webhook-Identifier`, type body
    /// `webhookEvent`.
    static let jira = hmacVariant(
        name: "jira",
        settings: .variant(
            "X-Hub-Signature", prefix: "sha256=", idHeader: "X-Atlassian-Webhook-Identifier", typePointer: "/webhookEvent"),
        signature: "X-Hub-Signature: sha256= hex HMAC-SHA256 of the body", id: "X-Atlassian-Webhook-Identifier",
        type: "body webhookEvent")

    /// Intercom: `X-Hub-Signature: sha1=<hex HMAC-SHA1>` keyed with the app's client secret.
    static let intercom = hmacVariant(
        name: "intercom",
        settings: .variant("X-Hub-Signature", prefix: "sha1=", algorithm: .sha1, idPointer: "/id", typePointer: "/topic"),
        signature: "X-Hub-Signature: sha1= hex HMAC-SHA1 of the body", id: "body id", type: "body topic")

    /// Typeform: `Typeform-Signature: sha256=<base64>`.
    static let typeform = hmacVariant(
        name: "typeform",
        settings: .variant(
            "Typeform-Signature", prefix: "sha256=", encoding: .base64, idPointer: "/event_id", typePointer: "/event_type"),
        signature: "Typeform-Signature: sha256= base64 HMAC-SHA256 of the body", id: "body event_id", type: "body event_type")

    /// Cal.com: `X-Cal-Signature-256: <hex>`.
    static let calcom = hmacVariant(
        name: "calcom", settings: .variant("X-Cal-Signature-256", typePointer: "/triggerEvent"),
        signature: "X-Cal-Signature-256: hex HMAC-SHA256 of the body", id: "hash", type: "body triggerEvent")

    /// Razorpay: `X-Razorpay-Signature: <hex>`; id `X-Razorpay-Event-Id`.
    static let razorpay = hmacVariant(
        name: "razorpay",
        settings: .variant("X-Razorpay-Signature", idHeader: "X-Razorpay-Event-Id", typePointer: "/event"),
        signature: "X-Razorpay-Signature: hex HMAC-SHA256 of the body", id: "X-Razorpay-Event-Id", type: "body event")

    /// Lemon Squeezy: `X-Signature: <hex>`.
    static let lemonsqueezy = hmacVariant(
        name: "lemonsqueezy", settings: .variant("X-Signature", typePointer: "/meta/event_name"),
        signature: "X-Signature: hex HMAC-SHA256 of the body", id: "hash", type: "body meta.event_name")

    /// Webex: `X-Spark-Signature: <hex HMAC-SHA1>`; type `resource.event` from the body.
    static let webex = hmacVariant(
        name: "webex", settings: .variant("X-Spark-Signature", algorithm: .sha1),
        signature: "X-Spark-Signature: hex HMAC-SHA1 of the body", id: "hash", type: "body resource + . + body event",
        refine: { verified, request in
            let json = request.bodyJSON
            if let resource = json?["resource"]?.scalarText, let event = json?["event"]?.scalarText {
                verified.type = resource + "." + event
            }
        })

    /// DocuSign Connect: any of `X-DocuSign-Signature-1`, `-2`, … (one per HMAC key
    /// configured in DocuSign, up to 100) holding the base64 HMAC-SHA256 of the body.
    static let docusign = hmacVariant(
        name: "docusign",
        settings: {
            var settings = HMACScheme.Settings.variant("X-DocuSign-Signature-1", encoding: .base64, typePointer: "/event")
            settings.extraHeaders = (2...100).map { "X-DocuSign-Signature-\($0)" }
            return settings
        }(),
        signature: "any of X-DocuSign-Signature-1, -2, …: base64 HMAC-SHA256 of the body", id: "hash", type: "body event")

    /// PagerDuty (v3 webhooks): `X-PagerDuty-Signature: v1=<hex>[,v1=<hex>…]` (one per
    /// secret being rotated); id `X-Webhook-Id`, type body `event.event_type`.
    static let pagerduty = hmacVariant(
        name: "pagerduty",
        settings: {
            var settings = HMACScheme.Settings.variant(
                "X-PagerDuty-Signature", prefix: "v1=", idHeader: "X-Webhook-Id", typePointer: "/event/event_type")
            settings.listSeparator = ","
            return settings
        }(),
        signature: "X-PagerDuty-Signature: v1= hex HMAC-SHA256 of the body (several v1= values allowed)", id: "X-Webhook-Id",
        type: "body event.event_type")
}
