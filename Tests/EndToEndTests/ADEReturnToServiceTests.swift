import AppleProtocol
import Foundation
import OrchardCrypto
import OrchardTestSupport
import XCTest

/// Return to Service (iOS 26, REFERENCE §4.8): an administrator erases a supervised ADE iPhone with Return to Service;
/// the EraseDevice carries the Wi-Fi profile and the escrowed bootstrap token; the erased device enrolls again through
/// ADE with no one touching it (no new profile push from ABM); the device's own `ReturnToService` check-in gets the
/// same configuration.
final class ADEReturnToServiceTests: XCTestCase {
    static func wifiProfile(ssid: String) -> [UInt8] {
        Plist.xml([
            "PayloadType": .string("Configuration"), "PayloadVersion": .integer(1), "PayloadIdentifier": .string("com.example.rts.wifi"),
            "PayloadUUID": .string(UUID().uuidString), "PayloadDisplayName": .string("Store Wi-Fi"),
            "PayloadContent": .array([.dictionary([
                "PayloadType": .string("com.apple.wifi.managed"), "PayloadVersion": .integer(1), "PayloadIdentifier": .string("com.example.rts.wifi.1"),
                "PayloadUUID": .string(UUID().uuidString), "SSID_STR": .string(ssid), "EncryptionType": .string("WPA2"),
                "Password": .string("store-wifi-password"), "AutoJoin": .bool(true),
            ])]),
        ])
    }

    func testEraseAndReturnToServiceReenrollsTheDeviceWithoutAnyone() async throws {
        let stack = try await Fixture.shared.prepare()
        let standIn = try ABMStandIn()
        let tag = UUID().uuidString.prefix(6).uppercased()
        let consumerKey = "CK_rts_\(tag)"
        let tokenID = try await uploadedToken(stack, standIn: standIn, consumerKey: consumerKey)
        let ade = try SimulatedADEDevice(udid: newUDID(), serial: "RT\(tag)", product: "iPhone17,1", osVersion: "26.0", appleCA: stack.appleCA)
        try await standIn.control("devices", ["consumer_key": consumerKey, "devices": [["serial_number": ade.serial, "model": "iPhone"]]])
        _ = try await stack.admin.expect(.POST, "/abm/tokens/\(tokenID)/sync")
        let defined = try await stack.admin.expect(.POST, "/abm/tokens/\(tokenID)/profiles", json: [
            "profile": ["profile_name": "RTS \(tag)", "is_supervised": true, "is_return_to_service": true], "default": true])
        let profileID = try unwrap(defined["id"] as? String)
        let assigned = await eventually(timeout: 60) {
            let items = (try? await stack.admin.expect(.GET, "/ade/devices?after=\(ade.serial.dropLast())&limit=5"))?["items"] as? [[String: Any]] ?? []
            return items.contains { $0["serialNumber"] as? String == ade.serial && $0["state"] as? String == "assigned" }
        }
        XCTAssertTrue(assigned)
        let enrollURL = "\(stack.gateway)/mdm/ade/enroll"
        let first = try await ade.post(enrollURL)
        XCTAssertEqual(first.status, 200, first.text)
        var device = try SimulatedDevice.installing(first.body, roots: [stack.profileCA], udid: ade.udid, serial: ade.serial, platform: "iOS",
                                                    productName: ade.product, osVersion: ade.osVersion).0
        try await Fixture.shared.completeEnrollment(device, supervised: true)
        let wifi = Self.wifiProfile(ssid: "Store-\(tag)")
        func commands() async throws -> Int {
            (try await stack.admin.expect(.GET, "/devices/\(ade.udid)/commands")["items"] as? [[String: Any]] ?? []).count
        }

        try await step("1. Return to Service settings that are not a Wi-Fi profile, or for no profile: refused, nothing stored") {
            let notWifi = Plist.xml(["PayloadType": .string("Configuration"), "PayloadContent": .array([.dictionary(["PayloadType": .string("com.apple.mdm")])])])
            for (body, status) in [(["wifiProfile": "not base64!"], 400), (["wifiProfile": Data(notWifi).base64EncodedString()], 400)] as [([String: Any], Int)] {
                let answer = try await stack.admin.call(.PUT, "/ade/profiles/\(profileID)/return-to-service", json: body)
                XCTAssertEqual(answer.status, status, answer.text)
            }
            let unknown = try await stack.admin.call(.PUT, "/ade/profiles/\(UUID().uuidString)/return-to-service", json: [String: Any]())
            XCTAssertEqual(unknown.status, 404, unknown.text)
            let none = try await stack.admin.call(.GET, "/ade/profiles/\(profileID)/return-to-service")
            XCTAssertEqual(none.status, 404, "nothing was stored: \(none.text)")
            let erase = try await stack.admin.call(.POST, "/devices/\(ade.udid)/commands", json: ["type": "EraseDevice", "returnToService": true])
            XCTAssertEqual(erase.status, 409, "no settings for its profile: \(erase.text)")
        }

        try await step("2. With the settings but no escrowed bootstrap token: 409 naming it, nothing queued") {
            let saved = try await stack.admin.expect(.PUT, "/ade/profiles/\(profileID)/return-to-service", json: ["wifiProfile": Data(wifi).base64EncodedString()])
            XCTAssertEqual(saved["wifiProfile"] as? Bool, true)
            let before = try await commands()
            let erase = try await stack.admin.call(.POST, "/devices/\(ade.udid)/commands", json: ["type": "EraseDevice", "returnToService": true])
            XCTAssertEqual(erase.status, 409, erase.text)
            XCTAssertTrue(erase.text.contains("bootstrap token"), erase.text)
            let after = try await commands()
            XCTAssertEqual(after, before, "nothing queued")
        }

        let bootstrap = Array("bootstrap-\(tag)".utf8)
        try await step("3. The device escrows its bootstrap token; the erase with Return to Service carries the Wi-Fi profile and the token") {
            let escrowed = try await device.checkin(device.identifiers.merging([
                "MessageType": .string("SetBootstrapToken"), "BootstrapToken": .data(bootstrap), "AwaitingConfiguration": .bool(false)]) { $1 })
            XCTAssertEqual(escrowed.status, 200, escrowed.text)
            _ = try await stack.admin.expect(.POST, "/devices/\(ade.udid)/commands", json: ["type": "EraseDevice", "returnToService": true])
            let command = try unwrap(try await device.idle())
            XCTAssertEqual(command.requestType, "EraseDevice")
            let rts = try unwrap(command.parameters["ReturnToService"]?.dictionary)
            XCTAssertEqual(rts["Enabled"], .bool(true))
            XCTAssertEqual(rts["WiFiProfileData"], .data(wifi))
            XCTAssertEqual(rts["BootstrapToken"], .data(bootstrap))
            XCTAssertNil(rts["MDMProfileData"], "its ADE profile has no configuration_web_url: the device fetches its profile itself")
            // Against Apple's schema (our copy predates ReturnToService.BootstrapToken, which Apple's current schema lists).
            let problems = try AppleSchema.commandProblems(command, schema: "device.erase", platform: "iOS").filter { !$0.contains("BootstrapToken") }
            XCTAssertEqual(problems, [])
            _ = try await device.respond(to: command, status: "Acknowledged")
        }

        try await step("4. The erased device enrolls again through ADE, though ABM pushed no new profile, and no one allowed it by hand") {
            let again = try await ade.post(enrollURL)
            XCTAssertEqual(again.status, 200, again.text)
            device = try SimulatedDevice.installing(again.body, roots: [stack.profileCA], udid: ade.udid, serial: ade.serial, platform: "iOS",
                                                    productName: ade.product, osVersion: ade.osVersion).0
            try await Fixture.shared.completeEnrollment(device, supervised: true)
            let view = try await stack.admin.expect(.GET, "/devices/\(ade.udid)")
            XCTAssertEqual(view["status"] as? String, "enrolled")
            let third = try await ade.post(enrollURL)
            XCTAssertEqual(third.status, 403, "the return to service's re-enrollment was spent: \(third.text)")
        }

        try await step("5. The device's own ReturnToService check-in: Enabled, the Wi-Fi profile; without settings, Enabled false") {
            let asked = try await device.checkin(device.identifiers.merging(["MessageType": .string("ReturnToService")]) { $1 })
            XCTAssertEqual(asked.status, 200, asked.text)
            let answer = try unwrap(try Plist.parseDictionary(asked.body)["ReturnToService"]?.dictionary)
            XCTAssertEqual(answer["Enabled"], .bool(true))
            XCTAssertEqual(answer["WiFiProfileData"], .data(wifi))
            _ = try await stack.admin.call(.DELETE, "/ade/profiles/\(profileID)/return-to-service")
            let off = try await device.checkin(device.identifiers.merging(["MessageType": .string("ReturnToService")]) { $1 })
            XCTAssertEqual(off.status, 200, off.text)
            XCTAssertEqual(try Plist.parseDictionary(off.body)["ReturnToService"]?.dictionary?["Enabled"], .bool(false))
        }
    }
}
