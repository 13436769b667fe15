import AppleProtocol
import Foundation
import OrchardCrypto
import OrchardTestSupport
import XCTest

/// Platform SSO in Setup Assistant (macOS 26, Apple's "Implementing Platform SSO during device enrollment"): an ADE
/// profile requires it; a Mac whose MachineInfo says MDM_CAN_REQUEST_PSSO_CONFIG gets 403 com.apple.psso.required
/// naming the SSO app, its profile and the authentication URL; it comes back with the identity provider's token and
/// gets its profile; a Mac that cannot follows the profile's fallback.
final class ADEPlatformSSOTests: XCTestCase {
    func testAMacOS26MachineInfoIsToldToDoPlatformSSOThenEnrollsWithTheProvidersToken() async throws {
        let stack = try await Fixture.shared.prepare()
        let issuer = try TestEnvironment.require("ORCHARD_TEST_OIDC_URL")
        // A domain of its own (the same stand-in provider): other tests' domains keep their settings.
        let domain = "psso-\(UUID().uuidString.prefix(6).lowercased()).example.com", client = AccountOIDCTests.client
        _ = try await stack.admin.expect(.PUT, "/account-domains/\(domain)", json: [
            "mode": "mdm-adde", "authentication": "apple-oauth2", "oidc": ["issuer": issuer, "clientID": client]])
        let standIn = try ABMStandIn()
        let tag = UUID().uuidString.prefix(6).uppercased()
        let consumerKey = "CK_psso_\(tag)"
        let tokenID = try await uploadedToken(stack, standIn: standIn, consumerKey: consumerKey)
        var mac = try SimulatedADEDevice(udid: newUDID(), serial: "PS\(tag)", product: "Mac16,1", osVersion: "26.0", appleCA: stack.appleCA)
        mac.canRequestPlatformSSO = true
        let older = try SimulatedADEDevice(udid: newUDID(), serial: "PO\(tag)", product: "Mac15,3", osVersion: "15.6", appleCA: stack.appleCA)
        try await standIn.control("devices", ["consumer_key": consumerKey, "devices": [
            ["serial_number": mac.serial, "model": "Mac"], ["serial_number": older.serial, "model": "Mac"]]])
        _ = try await stack.admin.expect(.POST, "/abm/tokens/\(tokenID)/sync")
        let defined = try await stack.admin.expect(.POST, "/abm/tokens/\(tokenID)/profiles", json: [
            "profile": ["profile_name": "PSSO \(tag)", "is_supervised": true, "await_device_configured": true], "default": true])
        let profileID = try unwrap(defined["id"] as? String)
        let assigned = await eventually(timeout: 60) {
            let view = try? await stack.admin.expect(.GET, "/ade/devices?after=P&limit=500")
            let items = view?["items"] as? [[String: Any]] ?? []
            return [mac.serial, older.serial].allSatisfy { serial in items.contains { $0["serialNumber"] as? String == serial && $0["state"] as? String == "assigned" } }
        }
        XCTAssertTrue(assigned, "the gateway's copy shows both Macs assigned")
        let enrollURL = "\(stack.gateway)/mdm/ade/enroll"
        let settings: [String: Any] = ["profileURL": "https://idp.example.com/psso.mobileconfig", "manifestURL": "https://idp.example.com/psso-app.plist",
                                       "authURL": "https://idp.example.com/authenticate", "domain": domain, "fallback": "refuse"]

        try await step("1. A Platform SSO requirement without the app's details, with http URLs, or with an unknown domain: 400, nothing stored") {
            for (change, text) in [(["manifestURL": ""], "manifestURL"), (["authURL": "http://idp.example.com/a"], "authURL"),
                                   (["fallback": "sign-in"], "sign-in page"), (["fallback": "maybe"], "fallback"),
                                   (["domain": "nowhere.example.org"], "not a Managed Apple Account domain"),
                                   (["pinningCerts": ["bm90IGEgY2VydA=="]], "pinningCerts")] as [([String: Any], String)] {
                let answer = try await stack.admin.call(.PUT, "/ade/profiles/\(profileID)/platform-sso", json: settings.merging(change) { $1 })
                XCTAssertEqual(answer.status, 400, "\(change): \(answer.text)")
                XCTAssertTrue(answer.text.contains(text), "\(change): \(answer.text)")
            }
            let missing = try await stack.admin.call(.GET, "/ade/profiles/\(profileID)/platform-sso")
            XCTAssertEqual(missing.status, 404, "nothing was stored: \(missing.text)")
            let before = try await mac.post(enrollURL)
            XCTAssertEqual(before.status, 200, "without the requirement the Mac gets its profile: \(before.text.prefix(200))")
        }

        try await step("2. The administrator requires Platform SSO; the macOS 26 Mac is answered 403 com.apple.psso.required") {
            _ = try await stack.admin.expect(.PUT, "/ade/profiles/\(profileID)/platform-sso", json: settings)
            let answer = try await mac.post(enrollURL)
            XCTAssertEqual(answer.status, 403, answer.text)
            XCTAssertEqual(answer.headers["content-type"], "application/json")
            let body = try answer.json()
            XCTAssertEqual(body["code"] as? String, "com.apple.psso.required")
            XCTAssertEqual(Set(body.keys).subtracting(["code", "description", "message", "details"]), [], "only Apple's keys")
            let details = try unwrap(body["details"] as? [String: Any])
            XCTAssertEqual(details["ProfileURL"] as? String, "https://idp.example.com/psso.mobileconfig")
            XCTAssertEqual(details["AuthURL"] as? String, "https://idp.example.com/authenticate")
            XCTAssertEqual((details["Package"] as? [String: Any])?["ManifestURL"] as? String, "https://idp.example.com/psso-app.plist")
            XCTAssertTrue(answer.body.count < 4096)
        }

        let now = Int(Date().timeIntervalSince1970)
        func mint(_ claims: [String: Any]) async throws -> String {
            let body = try JSONSerialization.data(withJSONObject: ["claims": claims, "kid": "k1"])
            let answer = try await http(.POST, "\(issuer)/_control/token", headers: [("Content-Type", "application/json")], body: Array(body))
            return try unwrap(try answer.json()["token"] as? String)
        }
        mac.canRequestPlatformSSO = false   // the retry after Platform SSO carries no MDM_CAN_REQUEST_PSSO_CONFIG

        try await step("3. A forged or expired token, or a token without one: no profile, told to do Platform SSO again") {
            let expired = try await mint(["iss": issuer, "aud": client, "exp": now - 60, "iat": now - 600, "email": "grace@\(domain)", "sub": "g1"])
            var forged = try await mint(["iss": issuer, "aud": client, "exp": now + 600, "iat": now, "email": "grace@\(domain)", "sub": "g1"])
                .split(separator: ".").map(String.init)
            forged[1] = base64URL(Array(#"{"iss":"\#(issuer)","aud":"\#(client)","exp":\#(now + 600),"email":"mallory@\#(domain)"}"#.utf8))
            for bad in [expired, forged.joined(separator: "."), "orc_at_" + String(repeating: "A", count: 43)] {
                let answer = try await mac.post(enrollURL, bearer: bad)
                XCTAssertEqual(answer.status, 403, answer.text)
                XCTAssertEqual(try answer.json()["code"] as? String, "com.apple.psso.required")
            }
        }

        try await step("4. With the provider's token: the profile, served for the signed-in user, and the Mac enrolls") {
            let token = try await mint(["iss": issuer, "aud": client, "exp": now + 600, "iat": now - 5, "email": "grace@\(domain)", "sub": "g1"])
            let answer = try await mac.post(enrollURL, bearer: token)
            XCTAssertEqual(answer.status, 200, answer.text)
            XCTAssertEqual(answer.headers["content-type"], "application/x-apple-aspen-config")
            let (installed, _) = try SimulatedDevice.installing(answer.body, roots: [stack.profileCA], udid: mac.udid, serial: mac.serial,
                                                                platform: "macOS", productName: mac.product, osVersion: mac.osVersion)
            let authenticated = try await installed.authenticate()
            XCTAssertEqual(authenticated.status, 200, authenticated.text)
            let log = try await stack.admin.expect(.GET, "/activity?deviceID=\(mac.udid)&limit=100")["items"] as? [[String: Any]] ?? []
            XCTAssertTrue(log.contains { $0["action"] as? String == "ade.enrollment-profile.served" && $0["actor"] as? String == "user:grace@\(domain)" },
                          "\(log.map { "\($0["action"] ?? ""): \($0["actor"] ?? "")" })")
            XCTAssertTrue(log.contains { $0["action"] as? String == "ade.platform-sso.required" })
        }

        try await step("5. A Mac that cannot do Platform SSO (macOS 15) gets the profile's fallback: refused, with the reason") {
            let answer = try await older.post(enrollURL)
            XCTAssertEqual(answer.status, 403, answer.text)
            XCTAssertEqual(try answer.json()["code"] as? String, "orchard.ade.platform-sso-unsupported")
            XCTAssertTrue(answer.text.contains("macOS 26"), answer.text)
            // Nor can a Mac go around it through the ADE sign-in page (fallback refuse).
            for device in [older, mac] {
                let page = try await device.get("\(stack.gateway)/mdm/ade/sign-in")
                XCTAssertEqual(page.status, 403, page.text)
                XCTAssertEqual(try page.json()["code"] as? String, "orchard.ade.platform-sso-only")
            }
            _ = try await stack.admin.call(.DELETE, "/ade/profiles/\(profileID)/platform-sso")
            _ = try await stack.admin.call(.DELETE, "/account-domains/\(domain)")
            let without = try await older.post(enrollURL)
            XCTAssertEqual(without.status, 200, "the requirement removed, the old Mac enrolls: \(without.text.prefix(200))")
        }
    }
}
