import AppleProtocol
import Foundation
import OrchardCore
import OrchardCrypto
import OrchardTestSupport
import XCTest

/// A domain whose users sign in at an external OpenID Connect provider (the tests' stand-in): the challenge names the
/// provider's endpoints from its discovery document, and Orchard accepts the provider's JWT access tokens only when
/// the signature (its JWKS), issuer, audience, expiry and account all hold.
final class AccountOIDCTests: XCTestCase {
    static let domain = "oidc.example.com", client = "orchard-test-client"

    func testAProvidersTokensEnrollDevicesAndEveryBadTokenIsChallenged() async throws {
        let stack = try await Fixture.shared.prepare()
        let issuer = try TestEnvironment.require("ORCHARD_TEST_OIDC_URL")
        _ = try await stack.admin.expect(.PUT, "/account-domains/\(Self.domain)", json: [
            "mode": "mdm-byod", "authentication": "apple-oauth2", "oidc": ["issuer": issuer, "clientID": Self.client]])
        let baseURL = "\(stack.gateway)/mdm/account/enroll/\(Self.domain)"
        let request = try CMS.sign(AccountEnrollment.machineInfo(), identity: try AccountEnrollment.deviceIdentity(stack))
        let now = Int(Date().timeIntervalSince1970)
        func mint(_ claims: [String: Any], kid: String = "k1") async throws -> String {
            let body = try JSONSerialization.data(withJSONObject: ["claims": claims, "kid": kid])
            let answer = try await http(.POST, "\(issuer)/_control/token", headers: [("Content-Type", "application/json")], body: Array(body))
            return try unwrap(try answer.json()["token"] as? String)
        }
        let good: [String: Any] = ["iss": issuer, "aud": Self.client, "exp": now + 600, "iat": now - 5, "email": "Grace@oidc.example.com", "sub": "g1"]

        try await step("1. The first POST is answered with an apple-oauth2 challenge naming the provider's endpoints and client") {
            let first = try await AccountEnrollment.post(baseURL, request)
            XCTAssertEqual(first.status, 401, first.text)
            let challenge = AccountOAuth2Tests.parameters(first.headers["www-authenticate"] ?? "")
            XCTAssertEqual(challenge["method"], "apple-oauth2")
            XCTAssertEqual(challenge["authorization-url"], "\(issuer)/authorize")
            XCTAssertEqual(challenge["token-url"], "\(issuer)/token")
            XCTAssertEqual(challenge["client-id"], Self.client)
            XCTAssertEqual(challenge["redirect-url"], "apple-remotemanagement-user-login:/oauth2/redirection")
        }

        var device: SimulatedDevice!
        let token = try await mint(good)
        try await step("2. With the provider's access token: the BYOD profile for the account in its email claim, and enrollment") {
            let served = try await AccountEnrollment.post(baseURL, request, bearer: token)
            XCTAssertEqual(served.status, 200, served.text)
            let (_, mdm) = try AccountEnrollment.mdmPayload(served.body, stack: stack)
            XCTAssertEqual(mdm["AssignedManagedAppleID"]?.string, "grace@oidc.example.com")
            XCTAssertEqual(mdm["EnrollmentMode"]?.string, "BYOD")
            device = try SimulatedDevice.installing(served.body, roots: [stack.profileCA], udid: newUDID(), serial: "").0
            device.enrollmentID = "\(UUID().uuidString)-OIDC"
            device.bearer = token
            let authenticated = try await device.authenticate()
            XCTAssertEqual(authenticated.status, 200, authenticated.text)
            let updated = try await device.tokenUpdate()
            XCTAssertEqual(updated.status, 200, updated.text)
        }

        try await step("3. Expired, another audience, another issuer, an unpublished key, a changed payload, another domain's account: 401") {
            var tampered = token.split(separator: ".").map(String.init)
            var claims = good
            claims["email"] = "mallory@oidc.example.com"
            tampered[1] = base64URL(Array(try JSONSerialization.data(withJSONObject: claims)))
            let cases: [(String, String)] = [
                ("expired", try await mint(good.merging(["exp": now - 120]) { $1 })),
                ("audience", try await mint(good.merging(["aud": "someone-else"]) { $1 })),
                ("issuer", try await mint(good.merging(["iss": "https://evil.example"]) { $1 })),
                ("unpublished key", try await mint(good, kid: "k2")),
                ("changed payload", tampered.joined(separator: ".")),
                ("other domain", try await mint(good.merging(["email": "erin@elsewhere.example.org"]) { $1 })),
                ("no account claim", try await mint(good.filter { $0.key != "email" })),
            ]
            for (why, bad) in cases {
                let answer = try await AccountEnrollment.post(baseURL, request, bearer: bad)
                XCTAssertEqual(answer.status, 401, "\(why): \(answer.text)")
            }
            let logged = try await AccountEnrollment.logged(stack, "account.token.refused", "audience is not \(Self.client)")
            XCTAssertTrue(logged)
        }

        try await step("4. The administrator revokes grace's tokens: the provider's token issued before is challenged on the next check-in") {
            _ = try await stack.admin.expect(.POST, "/account-users/grace@oidc.example.com/revoke-tokens")
            let challenged = try await eventually(timeout: 60) {
                try await device.tokenUpdate().status == 401
            }
            XCTAssertTrue(challenged)
            device.bearer = try await mint(good.merging(["iat": Int(Date().timeIntervalSince1970) + 1, "sub": "g2"]) { $1 })
            let retried = try await eventually(timeout: 30) { try await device.tokenUpdate().status == 200 }
            XCTAssertTrue(retried, "a token issued after the revocation works")
        }
    }

    /// Hardening issue 18, item 7: an issuer must be https, or http to a loopback address (a stand-in); a URL that only
    /// starts like a loopback one is another host's. Refused with 400, nothing stored.
    func testAnIssuerThatIsNotHTTPSOrLoopbackIsRefused() async throws {
        let stack = try await Fixture.shared.prepare()
        let domain = "oidc-refused-\(UUID().uuidString.prefix(6).lowercased()).example.com"
        for issuer in ["http://idp.example.com", "http://127.0.0.1:@idp.example.com", "http://localhost:80@idp.example.com/x",
                       "http://127.0.0.1.nip.io", "ftp://idp.example.com", "https://user:pw@idp.example.com"] {
            let answer = try await stack.admin.call(.PUT, "/account-domains/\(domain)", json: [
                "mode": "mdm-byod", "authentication": "apple-oauth2", "oidc": ["issuer": issuer, "clientID": Self.client]])
            XCTAssertEqual(answer.status, 400, "\(issuer): \(answer.text)")
            XCTAssertTrue(answer.text.contains("oidc.issuer"), answer.text)
        }
        let listed = try await stack.admin.expect(.GET, "/account-domains")
        XCTAssertFalse((listed["items"] as? [[String: Any]] ?? []).contains { $0["domain"] as? String == domain }, "nothing stored")
        for issuer in ["https://idp.example.com", "http://127.0.0.1:9", "http://localhost:9"] {
            let answer = try await stack.admin.call(.PUT, "/account-domains/\(domain)", json: [
                "mode": "mdm-byod", "authentication": "apple-oauth2", "oidc": ["issuer": issuer, "clientID": Self.client]])
            XCTAssertTrue([200, 201].contains(answer.status), "\(issuer): \(answer.text)")
        }
        _ = try await stack.admin.call(.DELETE, "/account-domains/\(domain)")
    }
}
