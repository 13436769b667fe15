import AppleProtocol
import Foundation
import OrchardCrypto
import OrchardTestSupport
import XCTest

/// Enrollment SSO (Apple's "Implementing the Enrollment SSO flow"): a domain names its identity app; the enrollment's
/// first 401 carries `X-Apple-MDM-ESSO` with the URL of the `EnrollmentSSODocument` Orchard serves; the document
/// names the app and carries the profile that configures the app's SSO extension. Without it, nothing changes.
final class AccountEnrollmentSSOTests: XCTestCase {
    func testADomainWithAnEnrollmentSSOAppSendsTheHeaderAndServesTheDocument() async throws {
        let stack = try await Fixture.shared.prepare()
        try await AccountEnrollment.configureDomains(stack)
        let domain = "esso-\(UUID().uuidString.prefix(6).lowercased()).example.com"
        let app: [String: Any] = ["appStoreID": 1_234_567_890, "extensionIdentifier": "com.example.identity.sso", "teamIdentifier": "ABCDE12345",
                                  "type": "Redirect", "urls": ["https://login.example.com/sso"], "associatedDomains": ["authsrv:login.example.com"]]
        var documentURL = ""

        try await step("1. The administrator names the domain's identity app; the domain shows it and where its document is") {
            let saved = try await stack.admin.expect(.PUT, "/account-domains/\(domain)", json: [
                "mode": "mdm-byod", "ldap": try AccountEnrollment.ldapSettings(), "enrollmentSSO": app])
            XCTAssertEqual((saved["enrollmentSSO"] as? [String: Any])?["appStoreID"] as? Int, 1_234_567_890)
            documentURL = try unwrap(saved["enrollmentSSOURL"] as? String)
            XCTAssertEqual(documentURL, "\(try AccountEnrollment.auth)/account/esso/\(domain)")
        }

        try await step("2. An iPhone's first POST: 401 with the challenge and X-Apple-MDM-ESSO naming the document") {
            let request = try CMS.sign(AccountEnrollment.machineInfo(), identity: try AccountEnrollment.deviceIdentity(stack))
            let first = try await AccountEnrollment.post("\(stack.gateway)/mdm/account/enroll/\(domain)", request)
            XCTAssertEqual(first.status, 401, first.text)
            XCTAssertTrue(first.headers["www-authenticate"]?.hasPrefix(#"Bearer method="apple-as-web""#) == true)
            XCTAssertEqual(first.headers["x-apple-mdm-esso"], documentURL)
        }

        try await step("3. The document, checked against Apple's schema: the app, its associated domains, the extension's profile") {
            let answer = try await http(.GET, documentURL)
            XCTAssertEqual(answer.status, 200, answer.text)
            XCTAssertEqual(answer.headers["content-type"], "application/json")
            let json = try answer.json()
            XCTAssertEqual(json["iTunesStoreID"] as? Int, 1_234_567_890)
            XCTAssertEqual(json["AssociatedDomains"] as? [String], ["authsrv:login.example.com"])
            let profileBytes = try unwrap((json["ConfigurationProfile"] as? String).flatMap { Data(base64Encoded: $0) })
            let document: [String: PlistValue] = ["iTunesStoreID": .integer(json["iTunesStoreID"] as? Int ?? 0),
                                                  "AssociatedDomains": .array([.string("authsrv:login.example.com")]), "ConfigurationProfile": .data(Array(profileBytes))]
            XCTAssertEqual(AppleSchema.problems(document, try AppleSchema.load("other/esso.yaml").payloadKeys, platform: "iOS"), [])
            XCTAssertEqual(Set(json.keys), ["iTunesStoreID", "AssociatedDomains", "ConfigurationProfile"], "only keys Apple's document has")
            let profile = try Plist.parseDictionary(Array(profileBytes))
            XCTAssertEqual(try AppleSchema.profileProblems(profile, platform: "iOS"), [])
            let sso = try unwrap(profile["PayloadContent"]?.array?.first?.dictionary)
            XCTAssertEqual(sso["PayloadType"]?.string, "com.apple.extensiblesso")
            XCTAssertEqual(sso["ExtensionIdentifier"]?.string, "com.example.identity.sso")
            XCTAssertEqual(sso["Type"]?.string, "Redirect")
            XCTAssertEqual(sso["URLs"]?.array?.compactMap(\.string), ["https://login.example.com/sso"])
            let again = try await http(.GET, documentURL)
            XCTAssertEqual(again.body, answer.body, "the same settings give the same document (the device sees no change)")
        }

        try await step("4. A Mac (Enrollment SSO is iOS and visionOS), and a domain without an app: no header; no document") {
            let mac = try CMS.sign(AccountEnrollment.machineInfo(product: "Mac16,1", osVersion: "15.3"), identity: try AccountEnrollment.deviceIdentity(stack))
            let macFirst = try await AccountEnrollment.post("\(stack.gateway)/mdm/account/enroll/\(domain)", mac)
            XCTAssertEqual(macFirst.status, 401, macFirst.text)
            XCTAssertNil(macFirst.headers["x-apple-mdm-esso"])
            let plain = try CMS.sign(AccountEnrollment.machineInfo(), identity: try AccountEnrollment.deviceIdentity(stack))
            let plainFirst = try await AccountEnrollment.post("\(stack.gateway)/mdm/account/enroll/\(AccountEnrollment.byod)", plain)
            XCTAssertEqual(plainFirst.status, 401, plainFirst.text)
            XCTAssertNil(plainFirst.headers["x-apple-mdm-esso"], "the flow without Enrollment SSO is unchanged")
            let none = try await http(.GET, "\(try AccountEnrollment.auth)/account/esso/\(AccountEnrollment.byod)")
            XCTAssertEqual(none.status, 404, none.text)
            let garbage = try await http(.GET, "\(try AccountEnrollment.auth)/account/esso/..%2F..%2Fetc")
            XCTAssertEqual(garbage.status, 404, garbage.text)
        }

        try await step("5. Incomplete or malformed app details: 400 naming the field, and the saved settings unchanged") {
            for (change, field) in [(["type": "Redirect", "urls": [String]()], "urls"), (["appStoreID": 0], "appStoreID"),
                                    (["associatedDomains": ["login.example.com"]], "associatedDomains"),
                                    (["extensionIdentifier": "not a bundle id"], "extensionIdentifier"), (["type": "Kerberos"], "type"),
                                    (["type": "Credential"], "hosts and realm"), (["urls": ["javascript:alert(1)"]], "urls")] as [([String: Any], String)] {
                let bad = app.merging(change) { $1 }
                let answer = try await stack.admin.call(.PUT, "/account-domains/\(domain)", json: [
                    "mode": "mdm-byod", "ldap": try AccountEnrollment.ldapSettings(), "enrollmentSSO": bad])
                XCTAssertEqual(answer.status, 400, "\(change): \(answer.text)")
                XCTAssertTrue(answer.text.contains("enrollmentSSO.\(field)"), "\(change): \(answer.text)")
            }
            let listed = try await stack.admin.expect(.GET, "/account-domains")["items"] as? [[String: Any]] ?? []
            let kept = try unwrap(listed.first { $0["domain"] as? String == domain })
            XCTAssertEqual((kept["enrollmentSSO"] as? [String: Any])?["extensionIdentifier"] as? String, "com.example.identity.sso")
            XCTAssertEqual((kept["enrollmentSSO"] as? [String: Any])?["appStoreID"] as? Int, 1_234_567_890)
            _ = try await stack.admin.call(.DELETE, "/account-domains/\(domain)")
        }
    }
}
