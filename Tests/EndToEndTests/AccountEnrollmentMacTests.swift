import AppleProtocol
import Foundation
import OrchardCrypto
import OrchardStorage
import OrchardTestSupport
import XCTest

/// Account-driven User Enrollment of a personal Mac (seed 003, REFERENCE §5.7): the profile opens a user channel
/// (`com.apple.mdm.per-user-connections`); the device channel goes on without a bearer, as Apple specifies; the user
/// channel (`EnrollmentUserID`) carries the bearer on every request, and a revoked token or a user the directory
/// disabled is challenged there (401 with the domain's challenge) within the minute.
final class AccountEnrollmentMacTests: XCTestCase {
    func testAMacsUserChannelCarriesTheBearerAndIsChallengedWhenTheAccountIsRevokedOrDisabled() async throws {
        let stack = try await Fixture.shared.prepare()
        try await AccountEnrollment.configureDomains(stack)
        let user = "dave@byod.example.com"
        var baseURL = "", token = "", signed: [UInt8] = []
        let request = try CMS.sign(AccountEnrollment.machineInfo(product: "Mac16,1", osVersion: "15.3"),
                                   identity: try AccountEnrollment.deviceIdentity(stack))

        try await step("1. Discovery for a Mac, 401, sign-in, and the BYOD profile that opens a user channel") {
            let discovered = try await http(.GET, "\(try AccountEnrollment.auth)/.well-known/com.apple.remotemanagement?user-identifier=\(user)&model-family=Mac")
            baseURL = try unwrap((try discovered.json()["Servers"] as? [[String: Any]])?.first?["BaseURL"] as? String)
            let first = try await AccountEnrollment.post(baseURL, request)
            XCTAssertEqual(first.status, 401, first.text)
            token = try await AccountEnrollment.signedIn(user, address: "192.0.2.60")
            let second = try await AccountEnrollment.post(baseURL, request, bearer: token)
            XCTAssertEqual(second.status, 200, second.text)
            signed = second.body
            let (profile, mdm) = try AccountEnrollment.mdmPayload(signed, stack: stack)
            XCTAssertEqual(mdm["EnrollmentMode"]?.string, "BYOD")
            XCTAssertEqual(mdm["AssignedManagedAppleID"]?.string, user)
            XCTAssertTrue(mdm["ServerCapabilities"]?.array?.contains(.string("com.apple.mdm.per-user-connections")) == true,
                          "a Mac's bearer travels on the user channel: the profile must open one: \(String(describing: mdm["ServerCapabilities"]))")
            XCTAssertEqual(try AppleSchema.profileProblems(profile, platform: "macOS"), [])
        }

        let device = try SimulatedDevice.installing(signed, roots: [stack.profileCA], udid: newUDID(), serial: "", platform: "macOS",
                                                    productName: "Mac16,1", osVersion: "15.3").0
        let enrollmentID = "\(UUID().uuidString)-\(UUID().uuidString.prefix(8))"
        device.enrollmentID = enrollmentID
        device.user = (id: UUID().uuidString, shortName: "dave", longName: "Dave Example")

        try await step("2. The device channel enrolls without a bearer; the user's TokenUpdate without one is challenged") {
            let authenticated = try await device.authenticate()
            XCTAssertEqual(authenticated.status, 200, authenticated.text)
            let updated = try await device.tokenUpdate()
            XCTAssertEqual(updated.status, 200, "the device channel carries no bearer on a Mac: \(updated.text)")
            let bare = try await device.userTokenUpdate()
            XCTAssertEqual(bare.status, 401, bare.text)
            XCTAssertTrue(bare.headers["www-authenticate"]?.hasPrefix(#"Bearer method="apple-as-web""#) == true, "\(bare.headers)")
        }

        try await step("3. With the bearer the user channel is registered, apart from the device's push credentials") {
            device.userBearer = token
            let updated = try await device.userTokenUpdate()
            XCTAssertEqual(updated.status, 200, updated.text)
            let view = try await stack.admin.expect(.GET, "/devices/\(enrollmentID)")
            let channels = view["userChannels"] as? [[String: Any]] ?? []
            XCTAssertEqual(channels.count, 1, "\(view)")
            XCTAssertEqual(channels.first?["shortName"] as? String, "dave")
            XCTAssertEqual(channels.first?["userID"] as? String, device.user?.id)
            let gateway = try Database(conninfo: try TestEnvironment.require("ORCHARD_DATABASE_URL"), schema: "checkin_gateway", maxConnections: 1)
            let row = try await gateway.query("SELECT push_token FROM enrollments WHERE id = $1", [.text(enrollmentID)]).first
            XCTAssertEqual(row?.bytes("push_token"), device.pushToken, "the user's TokenUpdate did not replace the device's push token")
            let idle = try await device.userIdle()
            XCTAssertEqual(idle.status, 200, idle.text)
            XCTAssertTrue(idle.body.isEmpty, "no device command is sent on the user channel")
            let command = try await device.idle()
            XCTAssertEqual(command?.requestType, "DeviceInformation", "the device channel gets the device's commands")
            if let command { _ = try await device.respond(to: command, status: "Acknowledged") }
        }

        try await step("4. A user-channel request of another device's identity, or a message Orchard does not take there: refused") {
            // Another Mac's identity (a profile served to someone else), with dave's good bearer.
            let other = try await AccountEnrollment.post(baseURL, request, bearer: token)
            XCTAssertEqual(other.status, 200, other.text)
            let stranger = try SimulatedDevice.installing(other.body, roots: [stack.profileCA], udid: newUDID(), serial: "", platform: "macOS",
                                                          productName: "Mac16,1", osVersion: "15.3").0
            stranger.enrollmentID = enrollmentID
            stranger.user = device.user
            stranger.userBearer = token
            let swapped = try await stranger.userIdle()
            XCTAssertTrue([401, 403].contains(swapped.status), "another identity cannot speak for this enrollment's user: \(swapped.status) \(swapped.text)")
            var declarative = device.userIdentifiers
            declarative["MessageType"] = .string("DeclarativeManagement")
            declarative["Endpoint"] = .string("tokens")
            let dm = try await device.checkin(declarative)
            XCTAssertEqual(dm.status, 400, dm.text)
            // A device that invents users: 64 user channels at most per enrollment, the rest refused, nothing over-written.
            let original = device.user
            var refused = 0
            for i in 0..<70 {
                device.user = (id: "FAKE-\(i)-\(UUID().uuidString.prefix(8))", shortName: "u\(i)", longName: "User \(i)")
                let answer = try await device.userTokenUpdate()
                if answer.status == 403 { refused += 1 } else { XCTAssertEqual(answer.status, 200, answer.text) }
            }
            device.user = original
            XCTAssertEqual(refused, 70 - 63, "one channel was dave's already: 63 more fit")
            let channels = try await stack.admin.expect(.GET, "/devices/\(enrollmentID)")["userChannels"] as? [[String: Any]] ?? []
            XCTAssertEqual(channels.count, 64)
            XCTAssertTrue(channels.contains { $0["userID"] as? String == original?.id }, "dave's channel is still there")
            let again = try await device.userTokenUpdate()
            XCTAssertEqual(again.status, 200, "a known user's channel is updated even when the enrollment is full: \(again.text)")
        }

        /// Waits (at most 2 minutes) for the user channel's 401 challenge; asserts it came within the minute; the seconds it took.
        func challengedWithinAMinute(_ why: String, since started: Date) async throws -> Int {
            var last: HTTPResult?
            let challenged = try await eventually(timeout: 120) {
                last = try await device.userIdle()
                return last?.status == 401
            }
            let seconds = Date().timeIntervalSince(started)
            XCTAssertTrue(challenged, "\(why): \(last?.status ?? 0) \(last?.text ?? "")")
            XCTAssertLessThan(seconds, 60, "\(why): challenged within the minute (took \(Int(seconds)) s)")
            XCTAssertTrue(last?.headers["www-authenticate"]?.hasPrefix(#"Bearer method="apple-as-web""#) == true)
            return Int(seconds)
        }

        try await step("5. The administrator revokes dave's tokens: the user channel is challenged within the minute; the device channel goes on") {
            let started = Date()
            _ = try await stack.admin.expect(.POST, "/account-users/\(user)/revoke-tokens")
            _ = try await challengedWithinAMinute("revoked", since: started)
            let deviceChannel = try await device.idle()
            XCTAssertNil(deviceChannel, "the device channel needs no bearer and goes on")
            // Signing in again gives the user channel back.
            device.userBearer = try await AccountEnrollment.signedIn(user, address: "192.0.2.61")
            let back = try await device.userIdle()
            XCTAssertEqual(back.status, 200, back.text)
        }

        try await step("6. The directory disables dave: the user channel is challenged within the minute") {
            let started = Date()
            try AccountEnrollment.ldapModify("dn: uid=dave,ou=people,dc=example,dc=com\nchangetype: modify\nadd: employeeType\nemployeeType: disabled\n")
            defer { try? AccountEnrollment.ldapModify("dn: uid=dave,ou=people,dc=example,dc=com\nchangetype: modify\ndelete: employeeType\n") }
            let seconds = try await challengedWithinAMinute("disabled", since: started)
            print("orchard: mac user channel challenged \(seconds) s after the directory disabled the user")
        }
    }
}
