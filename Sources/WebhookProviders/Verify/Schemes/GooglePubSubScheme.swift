import Foundation
import WebhookCore
import WebhookEncoding

extension Provider {
    /// Google's OIDC signing keys.
    static let googleKeySet = "https://www.googleapis.com/oauth2/v3/certs"

    /// Google Cloud Pub/Sub push with OIDC authentication: a `jwt` preset. RS256 tokens by
    /// Google's keys, issued by `accounts.google.com`, for `verify.audience`, whose `email`
    /// is `verify.serviceAccount` with `email_verified` true (without the account, any
    /// Google service account could mint a token for the audience). Id: body
    /// `message.messageId`; type: the attribute `verify.typeAttribute` of
    /// `message.attributes`, else the subscription's name.
    static let gcpPubSub = Provider(
        name: "gcp-pubsub",
        signature:
            "Authorization: Bearer <Google OIDC token>: RS256 by Google's keys (verify.jwksUrl to override), iss accounts.google.com, aud verify.audience, email verify.serviceAccount with email_verified",
        id: "body message.messageId", type: "message.attributes[verify.typeAttribute], else the subscription's name",
        keys: ["audience", "serviceAccount", "typeAttribute", "jwksUrl", "caFile", "leewaySeconds"], usesSecrets: false,
        make: { config in
            let reader = config.reader
            let audiences: [String]?
            switch reader.raw("audience") {
            case .string?: audiences = reader.string("audience").map { [$0] }
            case nil:
                reader.problem(at: "audience", "is required: the push endpoint's URL, or the audience set on the subscription")
                return nil
            default: audiences = reader.stringArray("audience")
            }
            guard let audiences,
                let account = reader.string("serviceAccount", required: true)
            else { return nil }
            guard case .set(let keySet) = JSONWebKeySet.read(reader, default: googleKeySet) else { return nil }
            var policy = JSONWebToken.Policy(algorithms: [.rs256])
            policy.issuers = ["https://accounts.google.com", "accounts.google.com"]
            policy.audiences = audiences
            policy.claims = [("email", .string(account)), ("email_verified", .bool(true))]
            policy.requiresExpiry = true
            policy.leewaySeconds = Int64(reader.integer("leewaySeconds", in: 0...3600) ?? 60)
            let typeAttribute = reader.string("typeAttribute")
            var scheme = JWTScheme(
                header: "Authorization", prefix: "Bearer ", keys: [], policy: policy,
                id: FieldSource([.pointer("/message/messageId")]),
                type: FieldSource(
                    typeAttribute.map {
                        let escaped = $0.replacingOccurrences(of: "~", with: "~0").replacingOccurrences(of: "/", with: "~1")
                        return [.pointer("/message/attributes/" + escaped)]
                    } ?? []),
                keySet: keySet)
            scheme.name = "gcp-pubsub"
            scheme.defaultType = { request in
                request.bodyJSON?["subscription"]?.scalarText.flatMap { $0.split(separator: "/").last.map(String.init) }
            }
            return scheme
        },
        sign: nil)
}
