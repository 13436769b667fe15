import AppleProtocol
import Foundation
import OrchardCrypto
import OrchardStorage
import OrchardTestSupport
import XCTest

/// Account-driven enrollment refused as it must be: at the sign-in page, at BaseURL, and on the requests of an
/// enrollment whose token was revoked, expired, or whose user the directory disabled (401 challenge, then success
/// after signing in again); an enrollment Orchard no longer knows gets 403 com.apple.unrecognized.device.
final class AccountEnrollmentRefusalTests: XCTestCase {
    func testTheSignInPageRefusesWrongPasswordsDisabledAndForeignAccountsAndLocksOutGuessers() async throws {
        let stack = try await Fixture.shared.prepare()
        try await AccountEnrollment.configureDomains(stack)
        let tag = UUID().uuidString.prefix(6).lowercased()

        try await step("1. A wrong password: 401, a clear message, an activity entry without the password") {
            let answer = try await AccountEnrollment.signIn("alice@byod.example.com", "not-alices-\(tag)", address: "192.0.2.\(Int.random(in: 1...250))")
            XCTAssertEqual(answer.status, 401, answer.text)
            XCTAssertTrue(answer.text.contains("The Managed Apple Account or the password is not right."), answer.text)
            XCTAssertNil(answer.headers["location"])
            let logged = try await AccountEnrollment.logged(stack, "account.sign-in.failed", "alice@byod.example.com")
            XCTAssertTrue(logged)
            let all = String(decoding: try JSONSerialization.data(withJSONObject: try await stack.admin.expect(.GET, "/activity?limit=500")), as: UTF8.self)
            XCTAssertFalse(all.contains("not-alices-\(tag)"), "the password is not in the activity log")
        }

        try await step("2. A user disabled in the directory, with the right password: 403, told to contact IT") {
            let answer = try await AccountEnrollment.signIn("bob@byod.example.com", AccountEnrollment.passwords["bob"]!, address: "192.0.2.201")
            XCTAssertEqual(answer.status, 403, answer.text)
            XCTAssertTrue(answer.text.contains("disabled"), answer.text)
            let logged = try await AccountEnrollment.logged(stack, "account.sign-in.failed", "bob@byod.example.com from 192.0.2.201: disabled in the directory")
            XCTAssertTrue(logged)
        }

        try await step("2b. The same disabled user with any other password: only 'not right' (disabled is not told); a NUL ends nothing") {
            let answer = try await AccountEnrollment.signIn("bob@byod.example.com", "a guess \(tag)", address: "192.0.2.211")
            XCTAssertEqual(answer.status, 401, answer.text)
            XCTAssertFalse(answer.text.contains("disabled"), answer.text)
            XCTAssertTrue(answer.text.contains("The Managed Apple Account or the password is not right."), answer.text)
            // The directory's password followed by a NUL and anything: refused as malformed, never cut at the NUL.
            let cut = try await AccountEnrollment.signIn("alice@byod.example.com", AccountEnrollment.passwords["alice"]! + "\u{0}junk",
                                                         address: "192.0.2.212")
            XCTAssertEqual(cut.status, 400, cut.text)
            XCTAssertNil(cut.headers["location"], "no token for a password cut short")
        }

        try await step("3. An account of a domain that is not the organisation's, even with its directory password: 403") {
            let answer = try await AccountEnrollment.signIn("erin@elsewhere.example.org", AccountEnrollment.passwords["erin"]!, address: "192.0.2.202")
            XCTAssertEqual(answer.status, 403, answer.text)
            XCTAssertTrue(answer.text.contains("is not an account of an organisation that enrolls devices here"), answer.text)
        }

        try await step("4. A form without the page's CSRF value (another site posting it): 403, no sign-in") {
            let answer = try await AccountEnrollment.signIn("alice@byod.example.com", AccountEnrollment.passwords["alice"]!, address: "192.0.2.203",
                                                            csrf: "forged.\(Int(Date().timeIntervalSince1970) + 600).00")
            XCTAssertEqual(answer.status, 403, answer.text)
            XCTAssertNil(answer.headers["location"])
        }

        try await step("5. The directory unreachable: 503 with Retry-After, and the page says to try again later") {
            var ldap = try AccountEnrollment.ldapSettings()
            ldap["url"] = "ldap://127.0.0.1:9/"
            ldap["timeoutSeconds"] = 2
            _ = try await stack.admin.expect(.PUT, "/account-domains/down-\(tag).example.com", json: ["mode": "mdm-byod", "ldap": ldap])
            let answer = try await AccountEnrollment.signIn("alice@down-\(tag).example.com", "whatever", address: "192.0.2.204")
            XCTAssertEqual(answer.status, 503, answer.text)
            XCTAssertNotNil(answer.headers["retry-after"])
            XCTAssertTrue(answer.text.contains("cannot be reached"), answer.text)
            _ = try await stack.admin.call(.DELETE, "/account-domains/down-\(tag).example.com")
        }

        try await step("6. Five failures lock the account (429 with Retry-After, even with its password from elsewhere)") {
            let account = "mallory-\(tag)@byod.example.com"
            for i in 0..<5 {
                let answer = try await AccountEnrollment.signIn(account, "guess-\(i)", address: "198.18.0.\(i + 1)")
                XCTAssertEqual(answer.status, 401, answer.text)
            }
            let locked = try await AccountEnrollment.signIn(account, "guess-5", address: "198.18.0.99")
            XCTAssertEqual(locked.status, 429, locked.text)
            XCTAssertNotNil(locked.headers["retry-after"])
        }

        try await step("7. Twenty failures from one address lock the address, for every account (alice's right password too)") {
            let address = "198.19.\(Int.random(in: 0...255)).\(Int.random(in: 1...254))"
            for i in 0..<20 {
                let answer = try await AccountEnrollment.signIn("guess\(i)-\(tag)@byod.example.com", "x", address: address)
                XCTAssertEqual(answer.status, 401, "\(i): \(answer.status)")
            }
            let locked = try await AccountEnrollment.signIn("alice@byod.example.com", AccountEnrollment.passwords["alice"]!, address: address)
            XCTAssertEqual(locked.status, 429, locked.text)
            let elsewhere = try await AccountEnrollment.signIn("alice@byod.example.com", AccountEnrollment.passwords["alice"]!, address: "192.0.2.205")
            XCTAssertEqual(elsewhere.status, 308, "another address is not locked: \(elsewhere.text)")
        }
    }

    func testASignInPageOpenedForOneAccountSignsInOnlyThatAccount() async throws {
        let stack = try await Fixture.shared.prepare()
        try await AccountEnrollment.configureDomains(stack)

        try await step("1. The page opened for alice shows alice's account, not editable") {
            let page = try await http(.GET, "\(try AccountEnrollment.auth)/account/sign-in?user-identifier=alice%40byod.example.com")
            XCTAssertEqual(page.status, 200)
            XCTAssertTrue(page.text.contains(#"value="alice@byod.example.com" readonly"#), page.text)
        }

        try await step("2. Another domain's user, with her right password, typed into alice's page: 403, no token") {
            let answer = try await AccountEnrollment.signIn("carol@adde.example.com", AccountEnrollment.passwords["carol"]!,
                                                            address: "192.0.2.220", pageFor: "alice@byod.example.com")
            XCTAssertEqual(answer.status, 403, answer.text)
            XCTAssertNil(answer.headers["location"], "no token for an account the device did not ask for")
            XCTAssertTrue(answer.text.contains("This sign-in is for alice@byod.example.com"), answer.text)
            XCTAssertTrue(answer.text.contains(#"value="alice@byod.example.com" readonly"#), "the page stays alice's: \(answer.text)")
            let logged = try await AccountEnrollment.logged(stack, "account.sign-in.failed",
                                                            "carol@adde.example.com from 192.0.2.220: the page was opened for alice@byod.example.com")
            XCTAssertTrue(logged)
        }

        try await step("2b. alice's form with its bound account swapped for carol's: refused as a forged form") {
            // The page's own form and cookie, only the account in the CSRF value changed.
            let answer = try await AccountEnrollment.signIn("carol@adde.example.com", AccountEnrollment.passwords["carol"]!, address: "192.0.2.223",
                                                            pageFor: "alice@byod.example.com") { field in
                var parts = field.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
                if parts.count == 4 { parts[2] = base64URL(Array("carol@adde.example.com".utf8)) }
                return parts.joined(separator: ".")
            }
            XCTAssertEqual(answer.status, 403, answer.text)
            XCTAssertNil(answer.headers["location"])
        }

        try await step("3. The same with the account's case or spaces changed is the same account: signed in") {
            let answer = try await AccountEnrollment.signIn(" Alice@BYOD.example.com", AccountEnrollment.passwords["alice"]!,
                                                            address: "192.0.2.221", pageFor: "alice@byod.example.com")
            XCTAssertEqual(answer.status, 308, answer.text)
            XCTAssertNotNil(AccountEnrollment.token(answer.headers["location"]))
        }

        try await step("4. The OAuth 2 page opened with login_hint=frank signs in only frank") {
            try await AccountOAuth2Tests.configure(stack)
            let query = [("response_type", "code"), ("client_id", "orchard-enrollment"),
                         ("redirect_uri", "apple-remotemanagement-user-login:/oauth2/redirection"), ("state", "s-\(UUID().uuidString)"),
                         ("login_hint", AccountOAuth2Tests.user)]
            let other = try await AccountEnrollment.oauthSignIn(query, password: AccountEnrollment.passwords["carol"]!, address: "192.0.2.222",
                                                               typing: "carol@adde.example.com")
            XCTAssertEqual(other.status, 403, other.text)
            XCTAssertNil(other.headers["location"], "no code for an account the device did not ask for")
        }
    }

    func testBaseURLRefusesUnsignedBodiesOldSystemsAndBadTokensAndEnrollsNothing() async throws {
        let stack = try await Fixture.shared.prepare()
        try await AccountEnrollment.configureDomains(stack)
        let baseURL = "\(stack.gateway)/mdm/account/enroll/byod.example.com"
        let identity = try AccountEnrollment.deviceIdentity(stack)
        let good = try CMS.sign(AccountEnrollment.machineInfo(), identity: identity)
        let token = try await AccountEnrollment.signedIn("alice@byod.example.com", address: "192.0.2.10")
        let before = try await stack.admin.expect(.GET, "/devices?managedAppleID=alice@byod.example.com&limit=500")["items"] as? [[String: Any]] ?? []

        try await step("1. Unsigned, garbage, or signed by an identity Apple did not issue: 4xx with a reason") {
            let unsigned = try await AccountEnrollment.post(baseURL, AccountEnrollment.machineInfo(), bearer: token)
            XCTAssertEqual(unsigned.status, 400, unsigned.text)
            XCTAssertTrue(unsigned.text.contains("CMS-signed"), unsigned.text)
            let selfSignedKey = try PrivateKey.generateP256()
            let selfSigned = try SigningIdentity(certificate: try Certificate.issue(
                subject: "/CN=stranger", key: selfSignedKey, issuer: nil, usage: .clientIdentity,
                validity: Date().addingTimeInterval(-60)...Date().addingTimeInterval(3600)), key: selfSignedKey)
            let untrusted = try await AccountEnrollment.post(baseURL, try CMS.sign(AccountEnrollment.machineInfo(), identity: selfSigned), bearer: token)
            XCTAssertEqual(untrusted.status, 403, untrusted.text)
            let empty = try await AccountEnrollment.post(baseURL, [], bearer: token)
            XCTAssertEqual(empty.status, 400, empty.text)
            let unknownDomain = try await AccountEnrollment.post("\(stack.gateway)/mdm/account/enroll/nowhere.example.net", good)
            XCTAssertEqual(unknownDomain.status, 404, unknownDomain.text)
            let watch = try await AccountEnrollment.post(baseURL, try CMS.sign(AccountEnrollment.machineInfo(product: "Watch7,3", osVersion: "11.2"), identity: identity), bearer: token)
            XCTAssertEqual(watch.status, 400, watch.text)
            let logged = try await AccountEnrollment.logged(stack, "account.enrollment.refused", "unsigned body")
            XCTAssertTrue(logged)
        }

        try await step("2. An OS below the domain's minimum: 403 whose message names both versions (software update when the device can)") {
            let old = try await AccountEnrollment.post(baseURL, try CMS.sign(AccountEnrollment.machineInfo(osVersion: "17.5"), identity: identity), bearer: token)
            XCTAssertEqual(old.status, 403, old.text)
            XCTAssertEqual(old.headers["content-type"], "application/json")
            let message = try old.json()["message"] as? String ?? ""
            XCTAssertTrue(message.contains("18.2") && message.contains("17.5"), message)
            let updatable = try await AccountEnrollment.post(baseURL, try CMS.sign(AccountEnrollment.machineInfo(osVersion: "18.1", canRequestSoftwareUpdate: true),
                                                                                     identity: identity), bearer: token)
            XCTAssertEqual(updatable.status, 403, updatable.text)
            XCTAssertEqual(try updatable.json()["code"] as? String, "com.apple.softwareupdate.required")
            XCTAssertEqual((try updatable.json()["details"] as? [String: String])?["OSVersion"], "18.2")
            let preSeventeen = try await AccountEnrollment.post(baseURL, try CMS.sign(AccountEnrollment.machineInfo(osVersion: nil), identity: identity), bearer: token)
            XCTAssertEqual(preSeventeen.status, 403, "no OS_VERSION: older than iOS 17 \(preSeventeen.text)")
            let logged = try await AccountEnrollment.logged(stack, "account.enrollment.refused", "runs iOS 17.5, minimum 18.2")
            XCTAssertTrue(logged)
        }

        try await step("3. A forged token, a token of another domain, a revoked token replayed: 401 with the challenge again") {
            let forged = try await AccountEnrollment.post(baseURL, good, bearer: "orc_at_" + String(repeating: "A", count: 43))
            XCTAssertEqual(forged.status, 401, forged.text)
            XCTAssertTrue(forged.headers["www-authenticate"]?.hasPrefix(#"Bearer method="apple-as-web", url=""#) == true)
            let carol = try await AccountEnrollment.signedIn("carol@adde.example.com", address: "192.0.2.11")
            let otherDomain = try await AccountEnrollment.post(baseURL, good, bearer: carol)
            XCTAssertEqual(otherDomain.status, 401, "carol's token is for adde.example.com: \(otherDomain.text)")
            let dave = try await AccountEnrollment.signedIn("dave@byod.example.com", address: "192.0.2.12")
            _ = try await stack.admin.expect(.POST, "/account-users/dave@byod.example.com/revoke-tokens")
            let revoked = try await AccountEnrollment.post(baseURL, good, bearer: dave)
            XCTAssertEqual(revoked.status, 401, "a revoked token replayed: \(revoked.text)")
            let logged = try await AccountEnrollment.logged(stack, "account.token.refused", "byod.example.com: unknown token")
            XCTAssertTrue(logged)
        }

        try await step("4. Hostile bodies: 300 mutations of a signed request, never a 5xx, the gateway healthy; nothing was enrolled") {
            var random = SplitMix64(seed: 0xADE11)
            for i in 0..<300 {
                var body = good
                switch i % 3 {
                case 0: for _ in 0..<(1 + Int(random.next() % 8)) { body[Int(random.next() % UInt64(body.count))] = UInt8(random.next() & 0xFF) }
                case 1: body = Array(body.prefix(Int(random.next() % UInt64(body.count))))
                default: body = (0..<Int(random.next() % 2048)).map { _ in UInt8(random.next() & 0xFF) }
                }
                let answer = try await AccountEnrollment.post(baseURL, body, bearer: i % 2 == 0 ? token : nil)
                XCTAssertTrue((400..<500).contains(answer.status) || answer.status == 200, "\(i) → \(answer.status) \(answer.text.prefix(200))")
            }
            let health = try await http(.GET, "\(stack.gateway)/healthz")
            XCTAssertEqual(health.status, 200)
            let after = try await stack.admin.expect(.GET, "/devices?managedAppleID=alice@byod.example.com&limit=500")["items"] as? [[String: Any]] ?? []
            XCTAssertEqual(after.count, before.count, "no refused request enrolled anything")
        }
    }

    func testARevokedExpiredOrDisabledAccountIsChallengedAndTheDeviceRetriesAfterSigningInAgain() async throws {
        let stack = try await Fixture.shared.prepare()
        try await AccountEnrollment.configureDomains(stack)
        let baseURL = "\(stack.gateway)/mdm/account/enroll/byod.example.com"
        let user = "dave@byod.example.com"
        let identity = try AccountEnrollment.deviceIdentity(stack)
        let token = try await AccountEnrollment.signedIn(user, address: "192.0.2.20")
        let served = try await AccountEnrollment.post(baseURL, try CMS.sign(AccountEnrollment.machineInfo(), identity: identity), bearer: token)
        XCTAssertEqual(served.status, 200, served.text)
        let device = try SimulatedDevice.installing(served.body, roots: [stack.profileCA], udid: newUDID(), serial: "").0
        device.enrollmentID = "\(UUID().uuidString)-\(UUID().uuidString.prefix(8))"
        device.bearer = token
        let r_authenticate = try await device.authenticate()
        XCTAssertEqual(r_authenticate.status, 200, r_authenticate.text)
        let r_tokenUpdate = try await device.tokenUpdate()
        XCTAssertEqual(r_tokenUpdate.status, 200, r_tokenUpdate.text)
        func idleStatus() async throws -> HTTPResult {
            try await device.put(device.serverURL, body: Plist.xml(device.identifiers.merging(["Status": .string("Idle")]) { $1 }),
                                 contentType: "application/x-apple-aspen-mdm", signer: device.identity)
        }
        /// Waits for the 401 challenge, signs in again, and retries the same request with the new token.
        func challengedThenRetried(_ why: String, signIn: Bool = true) async throws {
            var last: HTTPResult?
            let challenged = try await eventually(timeout: 90) {
                last = try await idleStatus()
                return last?.status == 401
            }
            XCTAssertTrue(challenged, "\(why): the device is challenged (last \(last?.status ?? 0) \(last?.text ?? ""))")
            XCTAssertEqual(last?.headers["www-authenticate"]?.hasPrefix(#"Bearer method="apple-as-web""#), true)
            guard signIn else { return }
            device.bearer = try await AccountEnrollment.signedIn(user, address: "192.0.2.21")
            let retried = try await idleStatus()
            XCTAssertEqual(retried.status, 200, "\(why): the retry after signing in again succeeds: \(retried.text)")
        }

        try await step("1. The administrator revokes dave's tokens: his device is challenged, signs in again, and retries") {
            // As a client that percent-encodes the "@" sends it: the same account.
            let revoked = try await stack.admin.expect(.POST, "/account-users/\(user.replacingOccurrences(of: "@", with: "%40"))/revoke-tokens")
            XCTAssertGreaterThanOrEqual(revoked["revoked"] as? Int ?? 0, 1)
            try await challengedThenRetried("revoked")
            let logged = try await AccountEnrollment.logged(stack, "account.token.revoked", user)
            XCTAssertTrue(logged)
        }

        try await step("2. The token expires: challenged, then success after signing in again") {
            // Time passes: the token's expiry, at user-enrollment-auth and in the gateway's copy of it.
            let hash = Digest.sha256(Array(device.bearer!.utf8)).hexString
            let tokens = try Database(conninfo: try TestEnvironment.require("ORCHARD_DATABASE_URL"), schema: "user_enrollment_auth", maxConnections: 1)
            try await tokens.query("UPDATE account_tokens SET expires_at = now() WHERE token_hash = $1", [.text(hash)])
            let gateway = try Database(conninfo: try TestEnvironment.require("ORCHARD_DATABASE_URL"), schema: "checkin_gateway", maxConnections: 1)
            let copied = try await eventually(timeout: 30) {
                try await !gateway.query("UPDATE account_token_copy SET expires_at = now() WHERE token_hash = $1 RETURNING 1",
                                                [.text(hash)]).isEmpty
            }
            XCTAssertTrue(copied, "the gateway has a copy of the token")
            try await challengedThenRetried("expired")
        }

        try await step("3. The directory disables dave: within a minute his device is challenged, and he cannot sign in") {
            try AccountEnrollment.ldapModify("dn: uid=dave,ou=people,dc=example,dc=com\nchangetype: modify\nadd: employeeType\nemployeeType: disabled\n")
            defer { try? AccountEnrollment.ldapModify("dn: uid=dave,ou=people,dc=example,dc=com\nchangetype: modify\ndelete: employeeType\n") }
            try await challengedThenRetried("disabled", signIn: false)
            let refused = try await AccountEnrollment.signIn(user, AccountEnrollment.passwords["dave"]!, address: "192.0.2.22")
            XCTAssertEqual(refused.status, 403, refused.text)
            let logged = try await AccountEnrollment.logged(stack, "account.token.revoked", "disabled in the directory")
            XCTAssertTrue(logged)
        }

        try await step("4. Unenrolled by the administrator (RemoveProfile acknowledged), the enrollment is gone: 403 com.apple.unrecognized.device") {
            device.bearer = try await AccountEnrollment.signedIn(user, address: "192.0.2.23")
            let id = device.enrollmentID!
            _ = try await stack.admin.expect(.POST, "/devices/\(id)/commands", json: ["type": "RemoveProfile", "identifier": device.profileIdentifier ?? ""])
            var command = try await device.idle()
            while let current = command { command = try await device.respond(to: current, status: "Acknowledged") }
            let gone = try await idleStatus()
            XCTAssertEqual(gone.status, 403, gone.text)
            XCTAssertEqual(try gone.json()["code"] as? String, "com.apple.unrecognized.device")
            device.enrollmentID = "\(UUID().uuidString)-unknown"
            let unknown = try await idleStatus()
            XCTAssertEqual(unknown.status, 403, unknown.text)
            XCTAssertEqual(try unknown.json()["code"] as? String, "com.apple.unrecognized.device")
        }
    }

    /// `ldapmodify` as the tests' directory administrator.

    /// Hardening issue 18, item 2, kept: an enrolled Device Enrollment's signed MachineInfo sent again gets a challenge
    /// without a bearer, and with someone's own sign-in a profile whose identity cannot act for the enrolled device.
    func testAReplayedAccountDrivenMachineInfoCannotTakeOverTheDevice() async throws {
        let stack = try await Fixture.shared.prepare()
        try await AccountEnrollment.configureDomains(stack)
        let user = "carol@adde.example.com", udid = newUDID()
        let baseURL = "\(stack.gateway)/mdm/account/enroll/\(AccountEnrollment.adde)"
        let captured = try CMS.sign(AccountEnrollment.machineInfo(udid: udid), identity: try AccountEnrollment.deviceIdentity(stack))
        let token = try await AccountEnrollment.signedIn(user, address: "192.0.2.150")
        let served = try await AccountEnrollment.post(baseURL, captured, bearer: token)
        XCTAssertEqual(served.status, 200, served.text)
        let device = try SimulatedDevice.installing(served.body, roots: [stack.profileCA], udid: udid, serial: "SER\(udid.suffix(8))").0
        device.bearer = token
        try await Fixture.shared.completeEnrollment(device, supervised: false)

        let bare = try await AccountEnrollment.post(baseURL, captured)
        XCTAssertEqual(bare.status, 401, "the replay alone is challenged: \(bare.text)")
        let otherSession = try await AccountEnrollment.signedIn(user, address: "192.0.2.151")
        let replayed = try await AccountEnrollment.post(baseURL, captured, bearer: otherSession)
        XCTAssertEqual(replayed.status, 200, replayed.text)
        let attacker = try SimulatedDevice.installing(replayed.body, roots: [stack.profileCA], udid: udid, serial: "SER\(udid.suffix(8))").0
        attacker.bearer = otherSession
        let takeover = try await attacker.authenticate()
        XCTAssertEqual(takeover.status, 403, takeover.text)
        let nothing = try await device.idle()
        XCTAssertNil(nothing, "the enrolled device keeps working")
        let view = try await stack.admin.expect(.GET, "/devices/\(udid)")
        XCTAssertEqual(view["status"] as? String, "enrolled")
    }
}
