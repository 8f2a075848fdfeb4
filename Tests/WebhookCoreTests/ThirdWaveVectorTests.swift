import NIOCore
import WebhookCrypto
import WebhookEncoding
import Testing
import WebhookCore
@testable import WebhookProviders

/// The third wave's providers against the vectors their SDKs' own tests hold. Providers whose
/// SDKs publish none (Sentry, Checkout.com, ClickUp, Segment, Customer.io, Persona, Frame.io,
/// Vercel, Gitea, Forgejo, Paystack, Nylas, Grafana and the token and Basic presets) are
/// covered by the every-provider suites: what `sign` makes verifies, a changed body or
/// another secret does not.
@Suite("Catalog, third wave: SDK vectors")
struct ThirdWaveVectorTests {
    @Test("coinbase-commerce: coinbase-commerce-php tests/WebhookTest.php testSuccessfullyVerifyBody, and its wrong secret")
    func coinbaseCommerce() throws {
        let body =
            #"{"id":1,"scheduled_for":"2017-01-31T20:50:02Z","attempt_number":1,"event":{"id":"24934862-d980-46cb-9402-43c81b0cdba6","type":"charge:created","api_version":"2018-03-22","created_at":"2017-01-31T20:49:02Z","data":{"code":"66BEOV2A","name":"The Sovereign Individual","description":"Mastering the Transition to the Information Age","hosted_url":"https://commerce.coinbase.com/charges/66BEOV2A","created_at":"2017-01-31T20:49:02Z","expires_at":"2017-01-31T21:04:02Z","timeline":[{"time":"2017-01-31T20:49:02Z","status":"NEW"}],"metadata":{},"pricing_type":"no_price","payments":[],"addresses":{"bitcoin":"0000000000000000000000000000000000","ethereum":"0x0000000000000000000000000000000000000000","litecoin":"3000000000000000000000000000000000","bitcoincash":"bitcoincash:000000000000000000000000000000000000000000"}}}}"#
        let signature = "8be7742c7d372f08a6a3224edadf18a22b65fa9e28f3f2de97376cdaa092590d"
        let scheme = try catalogScheme(#"{"scheme": "coinbase-commerce", "secrets": ["30291a20-0bd1-4267-9b0f-e6e7b123c0bf"]}"#)
        let verified = try scheme.verify(request([("X-CC-Webhook-Signature", signature)], body: body, at: 0))
        #expect(verified.id == "24934862-d980-46cb-9402-43c81b0cdba6")
        #expect(verified.type == "charge:created")
        let wrong = try catalogScheme(#"{"scheme": "coinbase-commerce", "secrets": ["30291a20-0bd1-4267-9b0f-e6e7b123c0bg"]}"#)
        #expect(failureCode(wrong, request([("X-CC-Webhook-Signature", signature)], body: body, at: 0)) == "signature_invalid")
    }

    @Test(
        "workos: workos-ruby spec/lib/workos/webhooks_spec.rb, a millisecond timestamp after \", \"; outside the tolerance it is expired"
    )
    func workos() throws {
        let body =
            #"{"data":{"id":"directory_user_01FAEAJCR3ZBZ30D8BD1924TVG","state":"active","emails":[{"type":"work","value":"blair@foo-corp.com","primary":true}],"idp_id":"00u1e8mutl6wlH3lL4x7","object":"directory_user","username":"blair@foo-corp.com","last_name":"Lunceford","first_name":"Blair","directory_id":"directory_01F9M7F68PZP8QXP8G7X5QRHS7","raw_attributes":{"name":{"givenName":"Blair","familyName":"Lunceford","middleName":"Elizabeth","honorificPrefix":"Ms."},"title":"Developer Success Engineer","active":true,"emails":[{"type":"work","value":"blair@foo-corp.com","primary":true}],"groups":[],"locale":"en-US","schemas":["urn:ietf:params:scim:schemas:core:2.0:User","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],"userName":"blair@foo-corp.com","addresses":[{"region":"CO","primary":true,"locality":"Steamboat Springs","postalCode":"80487"}],"externalId":"00u1e8mutl6wlH3lL4x7","displayName":"Blair Lunceford","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"manager":{"value":"2","displayName":"Kathleen Chung"},"division":"Engineering","department":"Customer Success"}}},"event":"dsync.user.created"}"#
        let header = "t=1626125972272, v1=80f7ab7efadc306eb5797c588cee9410da9be4416782b497bf1e1bf4175fb928"
        let scheme = try catalogScheme(#"{"scheme": "workos", "secrets": ["FrQWzvMo0eqse22Ceyia2uuww"]}"#)
        let verified = try scheme.verify(request([("WorkOS-Signature", header)], body: body, at: 1_626_125_980))
        #expect(verified.id == nil)
        #expect(verified.type == "dsync.user.created")
        #expect(
            failureCode(scheme, request([("WorkOS-Signature", header)], body: body, at: 1_626_125_972 + 301))
                == "timestamp_expired")
        #expect(
            failureCode(scheme, request([("WorkOS-Signature", header)], body: body + " ", at: 1_626_125_980))
                == "signature_invalid")
    }

    @Test(
        "gocardless: gocardless-nodejs src/webhooks.test.ts with its fixture; typed by the first event, one event under the body hash"
    )
    func gocardless() throws {
        let body =
            #"{"events":[{"id":"EV00BD05S5VM2T","created_at":"2018-07-05T09:13:51.404Z","resource_type":"subscriptions","action":"created","links":{"subscription":"SB0003JJQ2MR06"},"details":{"origin":"api","cause":"subscription_created","description":"Subscription created via the API."},"metadata":{}},{"id":"EV00BD05TB8K63","created_at":"2018-07-05T09:13:56.893Z","resource_type":"mandates","action":"created","links":{"mandate":"MD000AMA19XGEC"},"details":{"origin":"api","cause":"mandate_created","description":"Mandate created via the API."},"metadata":{}}]}"#
        let scheme = try catalogScheme(#"{"scheme": "gocardless", "secrets": ["ED7D658C-D8EB-4941-948B-3973214F2D49"]}"#)
        let signature = "2693754819d3e32d7e8fcb13c729631f316c6de8dc1cf634d6527f1c07276e7e"
        let verified = try scheme.verify(request([("Webhook-Signature", signature)], body: body, at: 0))
        #expect(verified.type == "subscriptions.created")
        #expect(verified.id == nil)
        #expect(failureCode(scheme, request([("Webhook-Signature", signature)], body: body + "\n", at: 0)) == "signature_invalid")
    }

    @Test("persona: two t=,v1= sets separated by a space (a secret being rotated): either secret verifies")
    func personaRotation() throws {
        let body = #"{"data":{"id":"evt_1","attributes":{"name":"inquiry.completed"}}}"#
        func mac(_ secret: String) -> String {
            Hex.encode(
                HMACAlgorithm.sha256.mac(
                    key: Array(secret.utf8), parts: [.text("1700000000."), .bytes(ByteBuffer(string: body))]))
        }
        let header = "t=1700000000,v1=\(mac("wbhsec_old")) t=1700000000,v1=\(mac("wbhsec_new"))"
        for secret in ["wbhsec_old", "wbhsec_new"] {
            let scheme = try catalogScheme(#"{"scheme": "persona", "secrets": ["\#(secret)"]}"#)
            let verified = try scheme.verify(request([("Persona-Signature", header)], body: body, at: 1_700_000_010))
            #expect(verified.id == "evt_1" && verified.type == "inquiry.completed", "\(secret)")
        }
        let other = try catalogScheme(#"{"scheme": "persona", "secrets": ["wbhsec_other"]}"#)
        #expect(
            failureCode(other, request([("Persona-Signature", header)], body: body, at: 1_700_000_010)) == "signature_invalid")
    }

    @Test("Base64 and Hex refuse malformed text; a decode into a buffer too small is nil, not a partial count")
    func decoding() {
        for text in ["Q", "QQ=A", "QQ===", "Q!==", "QUJD\u{e9}"] { #expect(Base64.decode(text) == nil, "\(text)") }
        #expect(Base64.decode("QUJD") == Array("ABC".utf8))
        #expect(Base64.decode("QUI=") == Array("AB".utf8))
        for text in ["abc", "zz", "0\u{e9}"] { #expect(Hex.decode(text) == nil, "\(text)") }
        #expect(Hex.decode("00fFaB") == [0x00, 0xFF, 0xAB])
        withUnsafeTemporaryAllocation(byteCount: 2, alignment: 1) { buffer in
            #expect(Base64.decode("QUJD", into: buffer) == nil)
            #expect(Base64.decode("QUI=", into: buffer) == 2)
        }
    }

}
