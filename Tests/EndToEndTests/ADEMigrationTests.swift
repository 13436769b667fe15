import AppleProtocol
import Foundation
import OrchardCrypto
import OrchardTestSupport
import XCTest

/// Migration from another MDM server (iOS/iPadOS/macOS 26, REFERENCE §4.8): ABM moves a Mac here with a deadline; Orchard
/// gives it only a profile that waits for DeviceConfigured; the Mac enrolls while in use, its setup items run (here the
/// FileVault escrow profile and a query), DeviceConfigured releases it before the deadline; the admin API follows each
/// migrating device, and one past its deadline is reported overdue.
final class ADEMigrationTests: XCTestCase {
    func testAMigratingMacGetsAWaitingProfileIsSetUpAndReleasedBeforeItsDeadline() async throws {
        let stack = try await Fixture.shared.prepare()
        let standIn = try ABMStandIn()
        let tag = UUID().uuidString.prefix(6).uppercased()
        let consumerKey = "CK_mig_\(tag)"
        let tokenID = try await uploadedToken(stack, standIn: standIn, consumerKey: consumerKey)
        let mac = try SimulatedADEDevice(udid: newUDID(), serial: "MG\(tag)", product: "Mac16,1", osVersion: "26.0", appleCA: stack.appleCA)
        let late = "MH\(tag)"
        let deadline = ISO8601DateFormatter().string(from: Date().addingTimeInterval(30 * 86400))
        try await standIn.control("devices", ["consumer_key": consumerKey, "devices": [
            ["serial_number": mac.serial, "model": "Mac", "mdm_migration_deadline": deadline],
            ["serial_number": late, "model": "Mac", "mdm_migration_deadline": "2026-01-15T00:00:00Z"]]])
        _ = try await stack.admin.expect(.POST, "/abm/tokens/\(tokenID)/sync")

        try await step("1. A default profile that does not wait for DeviceConfigured is not given to a migrating device") {
            _ = try await stack.admin.expect(.POST, "/abm/tokens/\(tokenID)/profiles", json: [
                "profile": ["profile_name": "Plain \(tag)", "is_supervised": true], "default": true])
            let refused = await eventually(timeout: 60) {
                let items = (try? await stack.admin.expect(.GET, "/abm/devices?tokenId=\(tokenID)&limit=10"))?["items"] as? [[String: Any]] ?? []
                return [mac.serial, late].allSatisfy { s in
                    items.contains { $0["serialNumber"] as? String == s && $0["lastOutcome"] as? String == "MIGRATION_NEEDS_AWAIT_DEVICE_CONFIGURED" }
                }
            }
            XCTAssertTrue(refused, "both migrating devices' outcome names the missing await_device_configured")
            let answer = try await mac.post("\(stack.gateway)/mdm/ade/enroll")
            XCTAssertEqual(answer.status, 403, "no profile assigned, no enrollment: \(answer.text)")
        }

        var profileID = ""
        try await step("2. A profile that waits for DeviceConfigured, with the migration's setup items, is assigned: SUCCESS") {
            let defined = try await stack.admin.expect(.POST, "/abm/tokens/\(tokenID)/profiles", json: [
                "profile": ["profile_name": "Migration \(tag)", "is_supervised": true, "await_device_configured": true]])
            profileID = try unwrap(defined["id"] as? String)
            let escrow = Plist.xml([
                "PayloadType": .string("Configuration"), "PayloadVersion": .integer(1), "PayloadIdentifier": .string("com.example.fv.\(tag)"),
                "PayloadUUID": .string(UUID().uuidString), "PayloadContent": .array([.dictionary([
                    "PayloadType": .string("com.apple.security.FDERecoveryKeyEscrow"), "PayloadVersion": .integer(1),
                    "PayloadIdentifier": .string("com.example.fv.\(tag).escrow"), "PayloadUUID": .string(UUID().uuidString),
                    "Location": .string("Acme IT"), "EncryptCertPayloadUUID": .string(UUID().uuidString)])])])
            _ = try await stack.admin.expect(.PUT, "/ade/profiles/\(profileID)/setup", json: ["commands": [
                ["type": "InstallProfile", "profile": Data(escrow).base64EncodedString()],
                ["type": "DeviceInformation", "queries": ["IsActivationLockEnabled", "OSVersion"]]]])
            let assigned = try await stack.admin.expect(.POST, "/abm/profiles/\(profileID)/assign", json: ["serials": [mac.serial, late]])
            XCTAssertEqual(assigned["outcomes"] as? [String: String], [mac.serial: "SUCCESS", late: "SUCCESS"])
        }

        try await step("3. The admin API follows each migrating device: deadline, state, whether its profile waits; the late one is overdue") {
            var mine: [[String: Any]] = []
            let listed = await eventually(timeout: 60) {
                let items = (try? await stack.admin.expect(.GET, "/ade/migrations"))?["items"] as? [[String: Any]] ?? []
                mine = items.filter { [mac.serial, late].contains($0["serialNumber"] as? String ?? "") }
                return mine.count == 2 && mine.allSatisfy { $0["state"] as? String == "assigned" }
            }
            XCTAssertTrue(listed, "\(mine)")
            let m = try unwrap(mine.first { $0["serialNumber"] as? String == mac.serial })
            let shown = try unwrap((m["deadline"] as? String).flatMap { ISO8601DateFormatter.withFractions.date(from: $0) })
            XCTAssertEqual(shown.timeIntervalSince1970, try unwrap(ISO8601DateFormatter().date(from: deadline)).timeIntervalSince1970, accuracy: 1)
            XCTAssertEqual(m["awaitsDeviceConfigured"] as? Bool, true)
            XCTAssertEqual(m["overdue"] as? Bool, false)
            XCTAssertGreaterThanOrEqual(m["daysLeft"] as? Int ?? -1, 28)
            let l = try unwrap(mine.first { $0["serialNumber"] as? String == late })
            XCTAssertEqual(l["overdue"] as? Bool, true, "past its deadline and not released")
        }

        var enrolled: SimulatedDevice!
        try await step("4. The Mac enrolls while in use, runs the setup items, is released by DeviceConfigured before the deadline") {
            let answer = try await mac.post("\(stack.gateway)/mdm/ade/enroll")
            XCTAssertEqual(answer.status, 200, answer.text)
            let device = try SimulatedDevice.installing(answer.body, roots: [stack.profileCA], udid: mac.udid, serial: mac.serial, platform: "macOS",
                                                        productName: mac.product, osVersion: mac.osVersion).0
            device.awaitingConfiguration = true
            let authenticated = try await device.authenticate()
            XCTAssertEqual(authenticated.status, 200, authenticated.text)
            let updated = try await device.tokenUpdate()
            XCTAssertEqual(updated.status, 200, updated.text)
            let setting = try await stack.admin.expect(.GET, "/ade/migrations")["items"] as? [[String: Any]] ?? []
            let during = try unwrap(setting.first { $0["serialNumber"] as? String == mac.serial })
            XCTAssertEqual(during["state"] as? String, "setting up")
            XCTAssertGreaterThanOrEqual(during["setupOpen"] as? Int ?? 0, 2, "\(during)")
            var seen: [String] = []
            var command = try await device.idle()
            while let current = command, current.requestType != "DeviceConfigured", seen.count < 10 {
                seen.append(current.requestType)
                let extra = current.requestType == "DeviceInformation" ? device.informationAnswers(supervised: true) : [:]
                command = try await device.respond(to: current, status: "Acknowledged", extra: extra)
            }
            XCTAssertTrue(seen.contains("InstallProfile"), "\(seen)")
            let configured = try unwrap(command, "DeviceConfigured after the setup items")
            XCTAssertEqual(configured.requestType, "DeviceConfigured")
            _ = try await device.respond(to: configured, status: "Acknowledged")
            let released = await eventually(timeout: 30) {
                let items = (try? await stack.admin.expect(.GET, "/ade/migrations"))?["items"] as? [[String: Any]] ?? []
                let m = items.first { $0["serialNumber"] as? String == mac.serial }
                return m?["state"] as? String == "released" && m?["overdue"] as? Bool == false && m?["setupOpen"] as? Int == 0
            }
            XCTAssertTrue(released, "released before its deadline, nothing left")
            enrolled = device
        }

        try await step("5. Orchard as the old server: ABM moves the Mac on; its enrollment says so, its history stays, it still checks in") {
            try await standIn.control("devices", ["consumer_key": consumerKey, "op_type": "deleted", "devices": [["serial_number": mac.serial]]])
            _ = try await stack.admin.expect(.POST, "/abm/tokens/\(tokenID)/sync")
            var view: [String: Any] = [:]
            let marked = await eventually(timeout: 60) {
                view = (try? await stack.admin.expect(.GET, "/devices/\(mac.udid)")) ?? [:]
                return view["leftABMAt"] as? String != nil
            }
            XCTAssertTrue(marked, "\(view)")
            XCTAssertEqual(view["status"] as? String, "enrolled", "no CheckOut yet: the device may still be in use here")
            let logged = await eventually(timeout: 30) {
                let items = (try? await stack.admin.expect(.GET, "/activity?deviceID=\(mac.udid)&limit=200"))?["items"] as? [[String: Any]] ?? []
                return items.contains { $0["action"] as? String == "ade.device.left-abm" }
                    && items.contains { $0["action"] as? String == "ade.enrollment-profile.served" }
            }
            XCTAssertTrue(logged, "the departure is logged and the history kept")
            let still = try await enrolled.idle()
            XCTAssertNil(still, "it still checks in until it enrolls elsewhere")
            let checkout = try await enrolled.checkin(enrolled.identifiers.merging(["MessageType": .string("CheckOut"), "Topic": .string(enrolled.topic)]) { $1 })
            XCTAssertEqual(checkout.status, 200, checkout.text)
            let after = try await stack.admin.expect(.GET, "/devices/\(mac.udid)")
            XCTAssertEqual(after["status"] as? String, "checked-out")
        }
    }
}

extension ISO8601DateFormatter {
    static var withFractions: ISO8601DateFormatter {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return f
    }
}
