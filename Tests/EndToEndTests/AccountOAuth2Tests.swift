import AppleProtocol
import Foundation
import OrchardCore
import OrchardCrypto
import OrchardTestSupport
import XCTest

/// Account-driven enrollment with the OAuth 2 flow (`method="apple-oauth2"`, REFERENCE §5.3–5.4), Orchard as the
/// authorization server: the challenge names the endpoints, the user signs in on the authorization endpoint (a real
/// browser, against slapd), the device exchanges the code (PKCE) at the token endpoint, enrolls with the access token,
/// and refreshes it (rotation). Then the refusals: reused code, another redirect_uri, a wrong verifier, a reused
/// refresh token.
final class AccountOAuth2Tests: XCTestCase {
    static let user = "frank@oauth.example.com"

    static func configure(_ stack: Fixture.Ready) async throws {
        _ = try await stack.admin.expect(.PUT, "/account-domains/\(AccountEnrollment.oauth)", json: [
            "mode": "mdm-byod", "authentication": "apple-oauth2", "ldap": try AccountEnrollment.ldapSettings()])
    }

    /// The parameters of an `apple-oauth2` challenge (`name="value"`, comma-separated).
    static func parameters(_ challenge: String) -> [String: String] {
        var out: [String: String] = [:]
        let pattern = try! NSRegularExpression(pattern: #"([a-z-]+)="([^"]*)""#)
        for m in pattern.matches(in: challenge, range: NSRange(challenge.startIndex..., in: challenge)) {
            out[String(challenge[Range(m.range(at: 1), in: challenge)!])] = String(challenge[Range(m.range(at: 2), in: challenge)!])
        }
        return out
    }

    static func pkce() throws -> (verifier: String, challenge: String) {
        let verifier = try SecureRandom.token(byteCount: 48)
        return (verifier, base64URL(Digest.sha256(Array(verifier.utf8))))
    }

    func testTheOAuth2FlowAuthorizesExchangesRefreshesAndEnrolls() async throws {
        let stack = try await Fixture.shared.prepare()
        try await Self.configure(stack)
        let baseURL = "\(stack.gateway)/mdm/account/enroll/\(AccountEnrollment.oauth)"
        let request = try CMS.sign(AccountEnrollment.machineInfo(), identity: try AccountEnrollment.deviceIdentity(stack))
        var challenge: [String: String] = [:], code = "", tokens: [String: Any] = [:]
        let state = "st-\(UUID().uuidString)", pkce = try Self.pkce()

        try await step("1. The first POST is answered 401 with the apple-oauth2 challenge naming Orchard's endpoints") {
            let first = try await AccountEnrollment.post(baseURL, request)
            XCTAssertEqual(first.status, 401, first.text)
            let header = try unwrap(first.headers["www-authenticate"])
            XCTAssertTrue(header.hasPrefix(#"Bearer method="apple-oauth2", "#), header)
            challenge = Self.parameters(header)
            let auth = try AccountEnrollment.auth
            XCTAssertEqual(challenge["authorization-url"], "\(auth)/account/oauth2/authorize")
            XCTAssertEqual(challenge["token-url"], "\(auth)/account/oauth2/token")
            XCTAssertEqual(challenge["redirect-url"], "apple-remotemanagement-user-login:/oauth2/redirection")
            XCTAssertEqual(challenge["client-id"], "orchard-enrollment")
            XCTAssertEqual(challenge["scope"], "enroll")
        }

        try await step("2. The web view opens the authorization endpoint; frank signs in; 308 to the redirect with code and state") {
            let query = FormEncoding.encode([("response_type", "code"), ("client_id", challenge["client-id"]!),
                                             ("redirect_uri", challenge["redirect-url"]!), ("state", state),
                                             ("login_hint", Self.user), ("code_challenge", pkce.challenge), ("code_challenge_method", "S256")])
            let result = try AccountEnrollment.browserSignIn("\(challenge["authorization-url"]!)?\(query)", password: AccountEnrollment.passwords["frank"]!,
                                                             screenshot: "\(AccountEnrollment.artifacts)/account-oauth2-sign-in.png")
            XCTAssertEqual(result["prefilled"] as? String, Self.user, "login_hint fills in the account")
            XCTAssertEqual(result["status"] as? Int, 308, "\(result)")
            let location = try unwrap(URLComponents(string: try unwrap(result["location"] as? String)))
            XCTAssertEqual("\(location.scheme ?? ""):\(location.path)", challenge["redirect-url"])
            XCTAssertEqual(location.queryItems?.first { $0.name == "state" }?.value, state, "the client's state comes back")
            code = try unwrap(location.queryItems?.first { $0.name == "code" }?.value)
        }

        try await step("3. The device exchanges the code (client_id, redirect_uri, PKCE verifier) for Bearer tokens") {
            let answer = try await AccountEnrollment.token([("grant_type", "authorization_code"), ("code", code),
                                                            ("redirect_uri", challenge["redirect-url"]!), ("client_id", challenge["client-id"]!),
                                                            ("code_verifier", pkce.verifier)])
            XCTAssertEqual(answer.status, 200, answer.text)
            XCTAssertEqual(answer.headers["cache-control"], "no-store")
            tokens = try answer.json()
            XCTAssertEqual(tokens["token_type"] as? String, "Bearer")
            XCTAssertEqual(tokens["scope"] as? String, "enroll")
            XCTAssertEqual(tokens["expires_in"] as? Int, 3600)
            XCTAssertNotNil(tokens["refresh_token"] as? String)
        }

        let enrollmentID = "\(UUID().uuidString)-\(UUID().uuidString.prefix(8))"
        var device: SimulatedDevice!
        try await step("4. The second POST with the access token gets the BYOD profile; the device enrolls with its EnrollmentID") {
            let second = try await AccountEnrollment.post(baseURL, request, bearer: tokens["access_token"] as? String)
            XCTAssertEqual(second.status, 200, second.text)
            let (_, mdm) = try AccountEnrollment.mdmPayload(second.body, stack: stack)
            XCTAssertEqual(mdm["EnrollmentMode"]?.string, "BYOD")
            XCTAssertEqual(mdm["AssignedManagedAppleID"]?.string, Self.user)
            device = try SimulatedDevice.installing(second.body, roots: [stack.profileCA], udid: newUDID(), serial: "").0
            device.enrollmentID = enrollmentID
            device.bearer = tokens["access_token"] as? String
            let authenticated = try await device.authenticate()
            XCTAssertEqual(authenticated.status, 200, authenticated.text)
            let updated = try await device.tokenUpdate()
            XCTAssertEqual(updated.status, 200, updated.text)
        }

        try await step("5. The device refreshes silently: a new pair; the new access token serves its requests; the old refresh token is spent") {
            let refreshed = try await AccountEnrollment.token([("grant_type", "refresh_token"), ("refresh_token", tokens["refresh_token"] as! String),
                                                               ("client_id", challenge["client-id"]!)])
            XCTAssertEqual(refreshed.status, 200, refreshed.text)
            let next = try refreshed.json()
            XCTAssertNotEqual(next["refresh_token"] as? String, tokens["refresh_token"] as? String, "rotated")
            device.bearer = next["access_token"] as? String
            let idle = try await device.idle()
            XCTAssertEqual(idle?.requestType, "DeviceInformation")
            let logged = try await AccountEnrollment.logged(stack, "account.token.refreshed", Self.user)
            XCTAssertTrue(logged)
        }
    }

    func testTheTokenEndpointRefusesReusedCodesOtherRedirectsWrongVerifiersAndReusedRefreshTokens() async throws {
        let stack = try await Fixture.shared.prepare()
        try await Self.configure(stack)
        let baseURL = "\(stack.gateway)/mdm/account/enroll/\(AccountEnrollment.oauth)"
        let request = try CMS.sign(AccountEnrollment.machineInfo(), identity: try AccountEnrollment.deviceIdentity(stack))
        let redirect = "apple-remotemanagement-user-login:/oauth2/redirection", client = "orchard-enrollment"
        func authorize(_ pkce: (verifier: String, challenge: String)?) async throws -> String {
            var query = [("response_type", "code"), ("client_id", client), ("redirect_uri", redirect), ("state", "s1"), ("login_hint", Self.user)]
            if let pkce { query += [("code_challenge", pkce.challenge), ("code_challenge_method", "S256")] }
            let answer = try await AccountEnrollment.oauthSignIn(query, password: AccountEnrollment.passwords["frank"]!, address: "192.0.2.40")
            XCTAssertEqual(answer.status, 308, answer.text)
            return try unwrap(URLComponents(string: answer.headers["location"] ?? "")?.queryItems?.first { $0.name == "code" }?.value)
        }
        func exchange(_ code: String, redirect: String = redirect, verifier: String? = nil) async throws -> HTTPResult {
            var form = [("grant_type", "authorization_code"), ("code", code), ("redirect_uri", redirect), ("client_id", client)]
            if let verifier { form.append(("code_verifier", verifier)) }
            return try await AccountEnrollment.token(form)
        }

        try await step("1. The authorization endpoint refuses another redirect_uri or client_id with a page, never a redirect") {
            for (name, value) in [("redirect_uri", "https://evil.example/cb"), ("client_id", "someone-else"), ("response_type", "token")] {
                var query = [("response_type", "code"), ("client_id", client), ("redirect_uri", redirect), ("state", "s")]
                query.removeAll { $0.0 == name }
                query.append((name, value))
                let page = try await http(.GET, "\(try AccountEnrollment.auth)/account/oauth2/authorize?" + FormEncoding.encode(query))
                XCTAssertEqual(page.status, 400, "\(name): \(page.text)")
                XCTAssertNil(page.headers["location"])
            }
        }

        try await step("2. A code presented with another redirect_uri, or with the wrong PKCE verifier: invalid_grant (and not spent)") {
            let pkce = try Self.pkce()
            let code = try await authorize(pkce)
            let other = try await exchange(code, redirect: "apple-remotemanagement-user-login:/elsewhere", verifier: pkce.verifier)
            XCTAssertEqual(other.status, 400, other.text)
            XCTAssertEqual(try other.json()["error"] as? String, "invalid_grant")
            let wrong = try await exchange(code, verifier: try Self.pkce().verifier)
            XCTAssertEqual(try wrong.json()["error"] as? String, "invalid_grant")
            let missing = try await exchange(code)
            XCTAssertEqual(try missing.json()["error"] as? String, "invalid_grant", "a code bound to PKCE needs the verifier")
            let right = try await exchange(code, verifier: pkce.verifier)
            XCTAssertEqual(right.status, 200, "the refusals did not spend it: \(right.text)")
        }

        try await step("3. A code used twice: invalid_grant, and the tokens its first use gave stop working") {
            let code = try await authorize(nil)
            let first = try await exchange(code)
            XCTAssertEqual(first.status, 200, first.text)
            let access = try unwrap(try first.json()["access_token"] as? String)
            let served = try await AccountEnrollment.post(baseURL, request, bearer: access)
            XCTAssertEqual(served.status, 200)
            let again = try await exchange(code)
            XCTAssertEqual(again.status, 400, again.text)
            XCTAssertEqual(try again.json()["error"] as? String, "invalid_grant")
            let challenged = try await eventually(timeout: 60) {
                try await AccountEnrollment.post(baseURL, request, bearer: access).status == 401
            }
            XCTAssertTrue(challenged, "the access token from the reused code is revoked")
        }

        try await step("4. A rotated refresh token used again: invalid_grant, and the whole sign-in's tokens are revoked") {
            let first = try await exchange(try await authorize(nil))
            let refresh = try unwrap(try first.json()["refresh_token"] as? String)
            let rotated = try await AccountEnrollment.token([("grant_type", "refresh_token"), ("refresh_token", refresh), ("client_id", client)])
            XCTAssertEqual(rotated.status, 200, rotated.text)
            let newAccess = try unwrap(try rotated.json()["access_token"] as? String)
            let reused = try await AccountEnrollment.token([("grant_type", "refresh_token"), ("refresh_token", refresh), ("client_id", client)])
            XCTAssertEqual(try reused.json()["error"] as? String, "invalid_grant")
            let newRefresh = try unwrap(try rotated.json()["refresh_token"] as? String)
            let afterTheft = try await AccountEnrollment.token([("grant_type", "refresh_token"), ("refresh_token", newRefresh), ("client_id", client)])
            XCTAssertEqual(try afterTheft.json()["error"] as? String, "invalid_grant", "the family is revoked")
            let challenged = try await eventually(timeout: 60) {
                try await AccountEnrollment.post(baseURL, request, bearer: newAccess).status == 401
            }
            XCTAssertTrue(challenged)
            let unsupported = try await AccountEnrollment.token([("grant_type", "password"), ("client_id", client)])
            XCTAssertEqual(try unsupported.json()["error"] as? String, "unsupported_grant_type")
            let logged = try await AccountEnrollment.logged(stack, "account.token.revoked", "refresh token was used again")
            XCTAssertTrue(logged)
        }

        try await step("5. Hardening issue 18, item 5: a code outstanding when an admin revokes the user's tokens exchanges for nothing") {
            let pkce = try Self.pkce()
            let code = try await authorize(pkce)
            _ = try await stack.admin.expect(.POST, "/account-users/\(Self.user)/revoke-tokens")
            let late = try await exchange(code, verifier: pkce.verifier)
            XCTAssertEqual(late.status, 400, late.text)
            XCTAssertEqual(try late.json()["error"] as? String, "invalid_grant")
            XCTAssertNil(try late.json()["access_token"], "no access token, no 90-day refresh token")
            let logged = try await AccountEnrollment.logged(stack, "account.token.revoked", "1 authorization code(s)")
            XCTAssertTrue(logged)
        }

        try await step("6. A code of a user the directory disabled after the sign-in exchanges for nothing either") {
            var query = [("response_type", "code"), ("client_id", client), ("redirect_uri", redirect), ("state", "s6"),
                         ("login_hint", "gina@oauth.example.com")]
            let pkce = try Self.pkce()
            query += [("code_challenge", pkce.challenge), ("code_challenge_method", "S256")]
            let signedIn = try await AccountEnrollment.oauthSignIn(query, password: AccountEnrollment.passwords["gina"]!, address: "192.0.2.41")
            XCTAssertEqual(signedIn.status, 308, signedIn.text)
            let code = try unwrap(URLComponents(string: signedIn.headers["location"] ?? "")?.queryItems?.first { $0.name == "code" }?.value)
            try AccountEnrollment.ldapModify("dn: uid=gina,ou=people,dc=example,dc=com\nchangetype: modify\nadd: employeeType\nemployeeType: disabled\n")
            defer { try? AccountEnrollment.ldapModify("dn: uid=gina,ou=people,dc=example,dc=com\nchangetype: modify\ndelete: employeeType\n") }
            let late = try await exchange(code, verifier: pkce.verifier)
            XCTAssertEqual(late.status, 400, late.text)
            XCTAssertEqual(try late.json()["error"] as? String, "invalid_grant")
        }
    }

    /// The sign-in page, the authorization endpoint and the token endpoint, attacked as an outsider: random and
    /// malformed forms and queries get a 4xx (or the page), never a 5xx, and the service stays healthy.
    func testHostileFormsAndQueriesGetClearRefusals() async throws {
        _ = try await Fixture.shared.prepare()
        let auth = try AccountEnrollment.auth
        var random = SplitMix64(seed: 0x0A17)
        let alphabet = Array("abcdefghijklmnopqrstuvwxyz0123456789@.=&%+-_~/:;'\"<>(){}[]*!?éü\u{0}")
        func noise(_ n: Int) -> String { String((0..<n).map { _ in alphabet[Int(random.next() % UInt64(alphabet.count))] }) }
        var statuses: [Int: Int] = [:]
        for i in 0..<240 {
            let answer: HTTPResult
            switch i % 4 {
            case 0:
                answer = try await http(.POST, "\(auth)/account/sign-in", headers: [("Content-Type", "application/x-www-form-urlencoded"),
                                                                                   ("X-Forwarded-For", "203.0.113.\(i % 200)")],
                                        body: Array(noise(Int(random.next() % 400)).utf8))
            case 1:
                let form = "user=\(noise(40).addingPercentEncoding(withAllowedCharacters: .alphanumerics)!)&password=\(noise(30))&csrf=\(noise(60))"
                    + "&client_id=orchard-enrollment&redirect_uri=\(noise(20))&state=\(noise(10))"
                answer = try await http(.POST, "\(auth)/account/sign-in", headers: [("Content-Type", "application/x-www-form-urlencoded"),
                                                                                   ("X-Forwarded-For", "203.0.114.\(i % 200)")], body: Array(form.utf8))
            case 2:
                answer = try await http(.POST, "\(auth)/account/oauth2/token", headers: [("Content-Type", "application/x-www-form-urlencoded")],
                                        body: Array(["grant_type=authorization_code&code=\(noise(50))&redirect_uri=\(noise(30))&client_id=\(noise(10))",
                                                     "grant_type=refresh_token&refresh_token=\(noise(80))&client_id=orchard-enrollment",
                                                     noise(300)][Int(random.next() % 3)].utf8))
            default:
                let query = (noise(Int(random.next() % 200))).addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed) ?? "x"
                answer = try await http(.GET, "\(auth)/account/oauth2/authorize?response_type=code&client_id=orchard-enrollment&\(query)")
            }
            statuses[answer.status, default: 0] += 1
            XCTAssertTrue((200..<500).contains(answer.status) && answer.status != 308, "case \(i % 4) → \(answer.status) \(answer.text.prefix(200))")
        }
        print("hostile sign-in and token requests:", statuses.sorted { $0.key < $1.key }.map { "\($0.key)×\($0.value)" }.joined(separator: ", "))
        let health = try await http(.GET, "\(auth)/healthz")
        XCTAssertEqual(health.status, 200)
    }
}
