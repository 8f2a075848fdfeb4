import WebhookCore

/// The third wave of the catalog: providers platform teams meet that sign with an HMAC or a
/// shared token in a header (one recipe each), or authenticate with HTTP Basic credentials
/// (a `basic` preset with their id and type). Each from the provider's documentation and,
/// where one exists, its SDK's verifier (named in the comment; the tests hold their vectors).
extension Provider {
    /// `<first>.<second>` of two body fields (`task.changed`), else the first alone.
    static func dotted(_ description: String, _ first: String, _ second: String) -> FieldSource.Place {
        .computed(description) { request in
            let json = request.bodyJSON
            guard let head = json?.value(atPointer: first)?.scalarText else { return nil }
            guard let tail = json?.value(atPointer: second)?.scalarText else { return head }
            return head + "." + tail
        }
    }

    /// Sentry integration platform: `Sentry-Hook-Signature: <hex HMAC-SHA256 of the body>`
    /// keyed with the integration's client secret (sentry `SentryApp.build_signature`). Id
    /// `Request-ID`; type `Sentry-Hook-Resource` + `.` + body `action` (`issue.created`).
    /// Sentry also sends `Sentry-Hook-Timestamp` (unsigned, not checked).
    static let sentry = recipe(
        "sentry",
        Recipe(
            "Sentry-Hook-Signature", id: .header("Request-ID"),
            type: FieldSource([
                .computed("Sentry-Hook-Resource + . + body action") { request in
                    guard let resource = request.headers.first(name: "Sentry-Hook-Resource") else { return nil }
                    return request.bodyJSON?["action"]?.scalarText.map { resource + "." + $0 } ?? resource
                },
                .header("Sentry-Hook-Resource"),
            ]),
            sentAtHeader: "Sentry-Hook-Timestamp"))

    /// Coinbase Commerce: `X-CC-Webhook-Signature: <hex HMAC-SHA256 of the body>` keyed with
    /// the shared secret (coinbase-commerce-php `Webhook::verifySignature`). Id body
    /// `event.id`, type `event.type` (`charge:created`).
    static let coinbaseCommerce = recipe(
        "coinbase-commerce",
        Recipe("X-CC-Webhook-Signature", id: .pointer("/event/id"), type: .pointer("/event/type")))

    /// Checkout.com (workflow webhooks): `Cko-Signature: <hex HMAC-SHA256 of the body>` keyed
    /// with the webhook's signature key. Id body `id` (`evt_…`), type `type`.
    static let checkout = recipe("checkout", Recipe("Cko-Signature", id: .pointer("/id"), type: .pointer("/type")))

    /// ClickUp: `X-Signature: <hex HMAC-SHA256 of the body>` keyed with the webhook's
    /// `secret`. Type body `event` (`taskCreated`); no event id (the body hash).
    static let clickup = recipe("clickup", Recipe("X-Signature", type: .pointer("/event")))

    /// Segment (Webhooks destination): `X-Signature: <hex HMAC-SHA1 of the body>` keyed with
    /// the shared secret (segmentio/action-destinations `webhook`). Id body `messageId`, type
    /// `type` (`track`, `identify`, …). Segment's batched deliveries sign only the first
    /// event, so they can't be verified as a body: send them unbatched.
    static let segment = recipe(
        "segment", Recipe("X-Signature", .hmac(.sha1, .hex), id: .pointer("/messageId"), type: .pointer("/type")))

    /// Customer.io reporting webhooks: `X-CIO-Signature: <hex HMAC-SHA256 of v0:T:body>`,
    /// T = `X-CIO-Timestamp`. Id body `event_id`; type `object_type` + `.` + `metric`
    /// (`email.opened`).
    static let customerio = recipe(
        "customerio",
        Recipe(
            "X-CIO-Signature", timestampHeader: "X-CIO-Timestamp", signing: .v0, id: .pointer("/event_id"),
            type: FieldSource([dotted("body object_type + . + metric", "/object_type", "/metric")])))

    /// WorkOS: `WorkOS-Signature: t=T, v1=S`, S the hex HMAC-SHA256 of `T.body`, T in
    /// milliseconds (workos-node `SignatureProvider`). Id body `id`, type `event`.
    static let workos = recipe(
        "workos",
        Recipe(
            "WorkOS-Signature", items: .stripeStyle,
            timestampFormat: .unixMilliseconds, signing: .timestampThenBody("."), id: .pointer("/id"),
            type: .pointer("/event")))

    /// Persona: `Persona-Signature: t=T,v1=S` (one set per secret while rotating, separated
    /// by a space), S the hex HMAC-SHA256 of `T.body`. Id body `data.id`, type
    /// `data.attributes.name` (`inquiry.completed`).
    static let persona = recipe(
        "persona",
        Recipe(
            "Persona-Signature", items: .stripeStyle,
            signing: .timestampThenBody("."), id: .pointer("/data/id"), type: .pointer("/data/attributes/name")))

    /// Frame.io: `X-Frameio-Signature: v0=<hex HMAC-SHA256 of v0:T:body>`, T =
    /// `X-Frameio-Request-Timestamp`. Type body `type` (`file.ready`); no event id.
    static let frameio = recipe(
        "frameio",
        Recipe(
            "X-Frameio-Signature", prefix: "v0=", timestampHeader: "X-Frameio-Request-Timestamp", signing: .v0,
            type: .pointer("/type")))

    /// GoCardless: `Webhook-Signature: <hex HMAC-SHA256 of the body>` keyed with the endpoint
    /// secret (gocardless-nodejs `webhooks.parse`). A body is a batch (`events[]`), split by
    /// default into one event per element (id `id`, type `resource_type.action`); with
    /// `"split": false`, one event under the body hash typed by its first element.
    static let gocardless = recipe(
        "gocardless",
        Recipe(
            "Webhook-Signature",
            type: FieldSource([dotted("events[0] resource_type + . + action", "/events/0/resource_type", "/events/0/action")])))

    /// Vercel: `x-vercel-signature: <hex HMAC-SHA1 of the body>` keyed with the webhook secret
    /// (or an integration's client secret). Id body `id`, type `type` (`deployment.succeeded`).
    static let vercel = recipe(
        "vercel", Recipe("x-vercel-signature", .hmac(.sha1, .hex), id: .pointer("/id"), type: .pointer("/type")))

    /// Gitea: `X-Gitea-Signature: <hex HMAC-SHA256 of the body>`; id `X-Gitea-Delivery`, type
    /// `X-Gitea-Event` (gitea `services/webhook/deliver.go`, which also sends GitHub's headers).
    static let gitea = recipe(
        "gitea",
        Recipe(
            "X-Gitea-Signature", id: .header("X-Gitea-Delivery"), type: .header("X-Gitea-Event"),
            exampleHeaders: [("X-Gitea-Event-Type", "push")]))

    /// Forgejo: `X-Forgejo-Signature`, `X-Forgejo-Delivery`, `X-Forgejo-Event`, as Gitea's.
    static let forgejo = recipe(
        "forgejo",
        Recipe(
            "X-Forgejo-Signature", id: .header("X-Forgejo-Delivery"), type: .header("X-Forgejo-Event"),
            exampleHeaders: [("X-Forgejo-Event-Type", "push")]))

    /// Paystack: `x-paystack-signature: <hex HMAC-SHA512 of the body>` keyed with the secret
    /// key (`sk_…`). Type body `event` (`charge.success`); no event id.
    static let paystack = recipe("paystack", Recipe("x-paystack-signature", .hmac(.sha512, .hex), type: .pointer("/event")))

    /// Grafana alerting (webhook contact point with HMAC signing): `X-Grafana-Alerting-Signature:
    /// <hex HMAC-SHA256 of the body>` (`header` renames it; Grafana's timestamp header, when
    /// set, is an `hmac` source's job). Type body `status` (`firing`, `resolved`).
    static let grafana = recipe("grafana", Recipe("X-Grafana-Alerting-Signature", type: .pointer("/status")))

    /// Prometheus Alertmanager: `Authorization: Bearer <secret>` (`http_config.authorization`).
    /// Type body `status`.
    static let alertmanager = recipe(
        "alertmanager", Recipe("Authorization", .token, prefix: "Bearer ", type: .pointer("/status")))

    /// Cloudflare notifications: `cf-webhook-auth` equals the destination's secret. Type body
    /// `alert_type`.
    static let cloudflare = recipe("cloudflare", Recipe("cf-webhook-auth", .token, type: .pointer("/alert_type")))

    /// Flutterwave: `verif-hash` equals the dashboard's secret hash. Type body `event`.
    static let flutterwave = recipe("flutterwave", Recipe("verif-hash", .token, type: .pointer("/event")))

    /// Auth0 log streams (custom webhook): `Authorization` equals the configured token, as
    /// written. Id body `log_id`, type `data.type` (Auth0's log event code).
    static let auth0 = recipe(
        "auth0", Recipe("Authorization", .token, id: .pointer("/log_id"), type: .pointer("/data/type")))

    /// Azure DevOps service hooks (Web Hooks): Basic credentials. Id body `id`, type
    /// `eventType` (`git.push`).
    static let azureDevOps = basicPreset("azure-devops", id: .pointer("/id"), type: .pointer("/eventType"))

    /// Chargebee: Basic credentials. Id body `id` (`ev_…`), type `event_type`.
    static let chargebee = basicPreset("chargebee", id: .pointer("/id"), type: .pointer("/event_type"))

    /// Postmark: Basic credentials (in the webhook URL). Type body `RecordType`.
    static let postmark = basicPreset("postmark", type: .pointer("/RecordType"))

    /// Pipedrive: Basic credentials (`http_auth_user`/`http_auth_password`). Id body `meta.id`
    /// in v2 (`meta.version` 2.0: the event's UUID, the same on a retry, whose `meta.attempt`
    /// grows); v1's `meta.id` is the changed object's (every change to one deal carries it),
    /// so a v1 event's id is the body's hash. Type `meta.entity` + `.` + `meta.action` (v2),
    /// else `meta.object` + `.` + `meta.action` (v1).
    static let pipedrive = basicPreset(
        "pipedrive",
        id: FieldSource([
            .computed("body meta.id when meta.version is 2.0, else hash") { request in
                let meta = request.bodyJSON?.value(atPointer: "/meta")
                guard meta?.value(atPointer: "/version")?.scalarText == "2.0" else { return nil }
                return meta?.value(atPointer: "/id")?.scalarText
            }
        ]),
        type: FieldSource([
            dotted("body meta.entity + . + meta.action", "/meta/entity", "/meta/action"),
            dotted("meta.object + . + meta.action", "/meta/object", "/meta/action"),
        ]))
}
