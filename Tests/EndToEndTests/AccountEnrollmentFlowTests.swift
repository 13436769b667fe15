import AppleProtocol
import Foundation
import OrchardCrypto
import OrchardTestSupport
import XCTest

/// Account-driven User Enrollment of a personal iPhone, end to end as seed 003 tells it, against the real services, a
/// real slapd and a real headless browser: discovery → first POST → 401 → sign-in page → 308 with the token → second
/// POST → BYOD profile → Authenticate/TokenUpdate with EnrollmentID and the bearer → a command.
final class AccountEnrollmentFlowTests: XCTestCase {
    func testAPersonalIPhoneEnrollsWithAManagedAppleAccountSignedInAgainstTheDirectory() async throws {
        let stack = try await Fixture.shared.prepare()
        let auth = try AccountEnrollment.auth
        let user = "alice@byod.example.com"
        let deviceIdentity = try AccountEnrollment.deviceIdentity(stack)
        let request = try CMS.sign(AccountEnrollment.machineInfo(), identity: deviceIdentity)
        var baseURL = "", challengeURL = "", token = "", signedProfile: [UInt8] = []

        try await step("1. The administrator connects byod.example.com (User Enrollment) to the organisation's LDAP directory") {
            try await AccountEnrollment.configureDomains(stack)
            let domains = try await stack.admin.expect(.GET, "/account-domains")["items"] as? [[String: Any]] ?? []
            let byod = try unwrap(domains.first { $0["domain"] as? String == AccountEnrollment.byod })
            XCTAssertEqual(byod["directory"] as? String, "ldap")
            let ldap = try unwrap(byod["ldap"] as? [String: Any])
            XCTAssertEqual(ldap["bindPasswordSet"] as? Bool, true)
            XCTAssertNil(ldap["bindPassword"], "the search account's password is never returned")
        }

        try await step("2. Discovery: the device asks the organisation's domain where to enroll") {
            let answer = try await http(.GET, "\(auth)/.well-known/com.apple.remotemanagement?user-identifier=\(user)&model-family=iPhone",
                                        headers: [("X-Forwarded-For", "198.51.100.50")])
            XCTAssertEqual(answer.status, 200, answer.text)
            let server = try unwrap((try answer.json()["Servers"] as? [[String: Any]])?.first)
            XCTAssertEqual(server["Version"] as? String, "mdm-byod")
            baseURL = try unwrap(server["BaseURL"] as? String)
            XCTAssertEqual(baseURL, "\(stack.gateway)/mdm/account/enroll/byod.example.com")
        }

        try await step("3. The first POST of the signed MachineInfo (no UDID, no serial) is answered 401 with Apple's challenge") {
            let first = try await AccountEnrollment.post(baseURL, request)
            XCTAssertEqual(first.status, 401, first.text)
            let challenge = try unwrap(first.headers["www-authenticate"])
            XCTAssertEqual(challenge, #"Bearer method="apple-as-web", url="\#(auth)/account/sign-in""#, "Apple's comma form")
            challengeURL = "\(auth)/account/sign-in"
        }

        try await step("4. The web view opens the sign-in page; alice signs in against slapd; the page ends with 308 and the token") {
            let screenshot = "\(AccountEnrollment.artifacts)/account-sign-in.png"
            try? FileManager.default.removeItem(atPath: screenshot)
            let result = try AccountEnrollment.browserSignIn("\(challengeURL)?user-identifier=\(user)",
                                                             password: AccountEnrollment.passwords["alice"]!, screenshot: screenshot)
            XCTAssertEqual(result["prefilled"] as? String, user, "the Managed Apple Account is filled in from user-identifier")
            XCTAssertEqual(result["labelled"] as? Bool, true, "every field has a label")
            XCTAssertEqual(result["status"] as? Int, 308, "\(result)")
            let location = try unwrap(result["location"] as? String)
            XCTAssertTrue(location.hasPrefix("apple-remotemanagement-user-login://authentication-results?access-token="), location)
            token = try unwrap(AccountEnrollment.token(location))
            let png = try Data(contentsOf: URL(fileURLWithPath: screenshot))
            XCTAssertEqual(Array(png.prefix(4)), [0x89, 0x50, 0x4E, 0x47], "a PNG screenshot of the page is kept at \(screenshot)")
        }

        try await step("5. The second POST with the bearer gets the signed BYOD profile: EnrollmentMode BYOD, no AccessRights") {
            let second = try await AccountEnrollment.post(baseURL, request, bearer: token)
            XCTAssertEqual(second.status, 200, second.text)
            XCTAssertEqual(second.headers["content-type"], "application/x-apple-aspen-config")
            signedProfile = second.body
            let (profile, mdm) = try AccountEnrollment.mdmPayload(signedProfile, stack: stack)
            XCTAssertEqual(mdm["EnrollmentMode"]?.string, "BYOD")
            XCTAssertEqual(mdm["AssignedManagedAppleID"]?.string, user)
            XCTAssertNil(mdm["AccessRights"], "AccessRights cancels a User Enrollment")
            XCTAssertNil(mdm["ManagedAppleID"], "the legacy key is gone from iOS 18")
            XCTAssertEqual(try AppleSchema.profileProblems(profile, platform: "iOS"), [])
            // Re-sent (the device asks again): the same EnrollmentMode and AssignedManagedAppleID, byte for byte.
            let again = try await AccountEnrollment.post(baseURL, request, bearer: token)
            let (_, mdmAgain) = try AccountEnrollment.mdmPayload(again.body, stack: stack)
            XCTAssertEqual(Plist.xml(["m": mdmAgain["EnrollmentMode"]!, "a": mdmAgain["AssignedManagedAppleID"]!]),
                           Plist.xml(["m": mdm["EnrollmentMode"]!, "a": mdm["AssignedManagedAppleID"]!]))
        }

        let enrollmentID = "\(UUID().uuidString)-\(UUID().uuidString.prefix(8))"
        var device: SimulatedDevice!
        try await step("6. Authenticate and TokenUpdate carry EnrollmentID only, and the bearer") {
            device = try SimulatedDevice.installing(signedProfile, roots: [stack.profileCA], udid: newUDID(), serial: "")
                .0
            device.enrollmentID = enrollmentID
            device.bearer = token
            let authenticated = try await device.authenticate()
            XCTAssertEqual(authenticated.status, 200, authenticated.text)
            let updated = try await device.tokenUpdate()
            XCTAssertEqual(updated.status, 200, updated.text)
            let listed = try await stack.admin.expect(.GET, "/devices?managedAppleID=\(user)")["items"] as? [[String: Any]] ?? []
            let enrolled = try unwrap(listed.first { $0["id"] as? String == enrollmentID }, "the enrollment is listed under alice")
            XCTAssertEqual(enrolled["status"] as? String, "enrolled")
            XCTAssertEqual(enrolled["kind"] as? String, "user")
            XCTAssertEqual(enrolled["enrollmentMode"] as? String, "mdm-byod")
            XCTAssertNil(enrolled["udid"], "a User Enrollment has no UDID")
            XCTAssertNil(enrolled["serialNumber"], "and no serial number")
        }

        try await step("7. Commands reach the enrollment over the command channel; every request carries the bearer") {
            _ = try await stack.admin.expect(.POST, "/devices/\(enrollmentID)/commands", json: ["type": "DeviceLock", "message": "Lost"])
            var seen: [MDMCommand] = []
            var command = try await device.idle()
            while let current = command, seen.count < 5 {
                seen.append(current)
                command = try await device.respond(to: current, status: "Acknowledged")
            }
            XCTAssertEqual(seen.map(\.requestType), ["DeviceInformation", "DeviceLock"], "the enrollment's DeviceInformation, then the admin's")
            let queries = seen.first?.parameters["Queries"]?.array?.compactMap(\.string) ?? []
            XCTAssertFalse(queries.contains("UDID") || queries.contains("SerialNumber") || queries.contains("IMEI"),
                           "a User Enrollment is not asked what Apple's schema forbids it: \(queries)")
            let commands = try await stack.admin.expect(.GET, "/devices/\(enrollmentID)/commands")["items"] as? [[String: Any]] ?? []
            XCTAssertEqual(commands.compactMap { $0["status"] as? String }, ["acknowledged", "acknowledged"])
        }

        try await step("7b. An administrator's DeviceInformation with the default queries asks a User Enrollment only what it may be asked") {
            let alone = try await stack.admin.expect(.POST, "/devices/\(enrollmentID)/commands", json: ["type": "DeviceInformation"])
            XCTAssertNil(alone["commands"], "one enrollment, one command")
            // Queued for the user enrollment and a device enrolled through a link at once: two commands, each listed.
            let plain = try await Fixture.shared.enrollThroughLink()
            let both = try await stack.admin.expect(.POST, "/commands", json: [
                "enrollmentIDs": [enrollmentID, plain.udid], "command": ["type": "DeviceInformation"]])
            let parts = both["commands"] as? [[String: Any]] ?? []
            XCTAssertEqual(parts.count, 2, "\(both)")
            XCTAssertEqual(Set(parts.flatMap { $0["queuedFor"] as? [String] ?? [] }), [enrollmentID, plain.udid])
            func asked(_ d: SimulatedDevice) async throws -> [[String]] {
                var queries: [[String]] = []
                var command = try await d.idle()
                while let current = command, queries.count < 5 {
                    queries.append(current.parameters["Queries"]?.array?.compactMap(\.string) ?? [])
                    command = try await d.respond(to: current, status: "Acknowledged")
                }
                return queries
            }
            let mine = try await asked(device)
            XCTAssertEqual(mine.count, 2, "the single one and its part of the bulk one")
            for queries in mine {
                XCTAssertTrue(queries.contains("OSVersion"), "\(queries)")
                XCTAssertFalse(queries.contains("UDID") || queries.contains("SerialNumber") || queries.contains("IMEI"),
                               "a User Enrollment is not asked what Apple's schema forbids it: \(queries)")
            }
            let theirs = try await asked(plain)
            XCTAssertTrue(theirs.last?.contains("UDID") == true && theirs.last?.contains("SerialNumber") == true,
                          "other enrollments still get the standard queries: \(theirs)")
        }

        try await step("7c. Queries Apple forbids for a User Enrollment, named by an administrator: 400 naming them, nothing queued") {
            let before = try await stack.admin.expect(.GET, "/devices/\(enrollmentID)/commands")["items"] as? [[String: Any]] ?? []
            let refused = try await stack.admin.call(.POST, "/devices/\(enrollmentID)/commands",
                                                     json: ["type": "DeviceInformation", "queries": ["OSVersion", "SerialNumber", "IMEI"]])
            XCTAssertEqual(refused.status, 400, refused.text)
            XCTAssertTrue(refused.text.contains("SerialNumber, IMEI") && refused.text.contains("User Enrollment"), refused.text)
            // In a bulk request with another device too: the whole request is refused, for no one.
            let plain = try await Fixture.shared.enrollThroughLink()
            let theirsBefore = try await stack.admin.expect(.GET, "/devices/\(plain.udid)/commands")["items"] as? [[String: Any]] ?? []
            let bulk = try await stack.admin.call(.POST, "/commands", json: [
                "enrollmentIDs": [plain.udid, enrollmentID], "command": ["type": "DeviceInformation", "queries": ["UDID"]]])
            XCTAssertEqual(bulk.status, 400, bulk.text)
            let after = try await stack.admin.expect(.GET, "/devices/\(enrollmentID)/commands")["items"] as? [[String: Any]] ?? []
            XCTAssertEqual(after.count, before.count, "nothing queued for the User Enrollment")
            let theirsAfter = try await stack.admin.expect(.GET, "/devices/\(plain.udid)/commands")["items"] as? [[String: Any]] ?? []
            XCTAssertEqual(theirsAfter.count, theirsBefore.count, "nor for the other device")
            // What a User Enrollment may be asked is queued as named.
            let allowed = try await stack.admin.expect(.POST, "/devices/\(enrollmentID)/commands",
                                                       json: ["type": "DeviceInformation", "queries": ["OSVersion", "BuildVersion"]])
            XCTAssertNotNil(allowed["commandUUID"])
            let command = try await device.idle()
            XCTAssertEqual(command?.parameters["Queries"]?.array?.compactMap(\.string), ["OSVersion", "BuildVersion"])
            if let command { _ = try await device.respond(to: command, status: "Acknowledged") }
        }

        try await step("8. Without the bearer, or with another account's, the request is challenged (401), and nothing is applied") {
            device.bearer = nil
            let bare = try await device.put(device.serverURL, body: Plist.xml(["EnrollmentID": .string(enrollmentID), "Status": .string("Idle")]),
                                            contentType: "application/x-apple-aspen-mdm", signer: device.identity)
            XCTAssertEqual(bare.status, 401, bare.text)
            XCTAssertEqual(bare.headers["www-authenticate"], #"Bearer method="apple-as-web", url="\#(challengeURL)""#)
            device.bearer = try await AccountEnrollment.signedIn("carol@adde.example.com")
            let other = try await device.tokenUpdate()
            XCTAssertEqual(other.status, 401, "carol's token does not serve alice's enrollment: \(other.text)")
            device.bearer = token
            let idle = try await device.idle()
            XCTAssertNil(idle, "with alice's token it works again")
        }

        try await step("9. The activity log holds each step, and never the password") {
            for (action, text) in [("account.discovery", user), ("account.challenged", "byod.example.com"),
                                   ("account.sign-in.succeeded", user), ("account.token.issued", user),
                                   ("account.enrollment-profile.served", user), ("device.authenticated", enrollmentID),
                                   ("account.reauthentication-required", "no bearer token")] {
                let found = try await AccountEnrollment.logged(stack, action, text)
                XCTAssertTrue(found, "\(action) mentioning \(text)")
            }
            let all = try await stack.admin.expect(.GET, "/activity?limit=500")
            let text = String(decoding: try JSONSerialization.data(withJSONObject: all), as: UTF8.self)
            XCTAssertFalse(text.contains(AccountEnrollment.passwords["alice"]!), "no password in the activity log")
            XCTAssertFalse(text.contains(token), "no access token in the activity log")
        }
    }

    /// Account-driven Device Enrollment (`mdm-adde`) of an organisation's iPhone and Mac: the same sign-in, a profile with
    /// `EnrollmentMode` ADDE and AccessRights, an enrollment keyed by the UDID. The Mac's device channel sends no bearer.
    func testOrganisationDevicesEnrollWithAccountDrivenDeviceEnrollment() async throws {
        let stack = try await Fixture.shared.prepare()
        let user = "carol@adde.example.com"
        try await AccountEnrollment.configureDomains(stack)
        let discovered = try await http(.GET, "\(try AccountEnrollment.auth)/.well-known/com.apple.remotemanagement?user-identifier=\(user)&model-family=iPhone")
        let server = try unwrap((try discovered.json()["Servers"] as? [[String: Any]])?.first)
        XCTAssertEqual(server["Version"] as? String, "mdm-adde")
        let baseURL = try unwrap(server["BaseURL"] as? String)

        for (product, os, platform) in [("iPhone17,2", "18.3", "iOS"), ("Mac16,1", "15.3", "macOS")] {
            try await step("\(platform): 401, sign-in, the ADDE profile, Authenticate with the UDID") {
                let udid = newUDID()
                let request = try CMS.sign(AccountEnrollment.machineInfo(product: product, osVersion: os), identity: try AccountEnrollment.deviceIdentity(stack))
                let first = try await AccountEnrollment.post(baseURL, request)
                XCTAssertEqual(first.status, 401, first.text)
                // The iPhone signs in in the real browser; the Mac through the same page over plain HTTP.
                let token: String
                if platform == "iOS" {
                    let signIn = AccountOAuth2Tests.parameters(first.headers["www-authenticate"] ?? "")["url"] ?? ""
                    let result = try AccountEnrollment.browserSignIn("\(signIn)?user-identifier=\(user)", password: AccountEnrollment.passwords["carol"]!,
                                                                     screenshot: "\(AccountEnrollment.artifacts)/account-adde-sign-in.png")
                    XCTAssertEqual(result["status"] as? Int, 308, "\(result)")
                    token = try unwrap(AccountEnrollment.token(result["location"] as? String))
                } else {
                    token = try await AccountEnrollment.signedIn(user, address: "192.0.2.30")
                }
                let second = try await AccountEnrollment.post(baseURL, request, bearer: token)
                XCTAssertEqual(second.status, 200, second.text)
                let (profile, mdm) = try AccountEnrollment.mdmPayload(second.body, stack: stack)
                XCTAssertEqual(mdm["EnrollmentMode"]?.string, "ADDE")
                XCTAssertEqual(mdm["AssignedManagedAppleID"]?.string, user)
                XCTAssertEqual(mdm["AccessRights"]?.integer, 8191, "a Device Enrollment keeps its rights")
                XCTAssertEqual(try AppleSchema.profileProblems(profile, platform: platform), [])
                let device = try SimulatedDevice.installing(second.body, roots: [stack.profileCA], udid: udid, serial: "SER\(udid.prefix(8))",
                                                            platform: platform, productName: product, osVersion: os).0
                if platform == "iOS" { device.bearer = token }
                let r_authenticate = try await device.authenticate()
                XCTAssertEqual(r_authenticate.status, 200, r_authenticate.text)
                let r_tokenUpdate = try await device.tokenUpdate()
                XCTAssertEqual(r_tokenUpdate.status, 200, r_tokenUpdate.text)
                let enrolled = try await stack.admin.expect(.GET, "/devices/\(udid)")
                XCTAssertEqual(enrolled["status"] as? String, "enrolled")
                XCTAssertEqual(enrolled["udid"] as? String, udid)
                XCTAssertEqual(enrolled["managedAppleID"] as? String, user)
                XCTAssertEqual(enrolled["enrollmentMode"] as? String, "mdm-adde")
                let command = try await device.idle()
                XCTAssertEqual(command?.requestType, "DeviceInformation")
                XCTAssertTrue(command?.parameters["Queries"]?.array?.contains(.string("SerialNumber")) == true, "a device enrollment may ask for the serial")
                if platform == "iOS" {
                    device.bearer = nil
                    let bare = try await device.tokenUpdate()
                    XCTAssertEqual(bare.status, 401, "an iPhone's requests carry the bearer: \(bare.text)")
                }
            }
        }
    }
}
