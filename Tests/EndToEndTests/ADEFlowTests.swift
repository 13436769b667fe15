import AppleProtocol
import Foundation
import OrchardCrypto
import OrchardTestSupport
import XCTest

/// Automated Device Enrollment end to end, as seed 002's diagram: a server token uploaded, ABM's devices
/// synced, an ADE profile defined and assigned, a Mac and an iPhone in Setup Assistant send their signed
/// MachineInfo and get the signed profile, enroll, receive and acknowledge their setup items, get
/// DeviceConfigured and are released — each step in the activity log.
final class ADEFlowTests: XCTestCase {
    func testMacAndIPhoneEnrollThroughABMAndAreReleased() async throws {
        let stack = try await Fixture.shared.prepare()
        let standIn = try ABMStandIn()
        let consumerKey = "CK_ade_\(UUID().uuidString.prefix(8))"
        let tag = UUID().uuidString.prefix(6).uppercased()
        // The Mac's identity expired yesterday and it signs with SHA-1, as real devices may (REFERENCE §4.7).
        let mac = try SimulatedADEDevice(udid: newUDID(), serial: "C02\(tag)MAC", product: "Mac14,2", osVersion: "15.2",
                                         appleCA: stack.appleCA, legacy: true)
        let phone = try SimulatedADEDevice(udid: newUDID(), serial: "F17\(tag)IPH", product: "iPhone17,1", osVersion: "18.2",
                                           appleCA: stack.appleCA)
        let enrollURL = "\(stack.gateway)/mdm/ade/enroll"
        var tokenID = "", profileID = "", profileUUID = ""

        try await step("1. The administrator creates a server token and uploads ABM's .p7m for it") {
            tokenID = try await uploadedToken(stack, standIn: standIn, consumerKey: consumerKey)
        }

        try await step("2. ABM assigns a Mac and an iPhone to the MDM server; the sync mirrors them") {
            try await standIn.control("devices", ["consumer_key": consumerKey, "devices": [
                ["serial_number": mac.serial, "model": "MacBook Air", "os": "OSX", "device_family": "Mac"],
                ["serial_number": phone.serial, "model": "iPhone 16", "os": "iOS", "device_family": "iPhone"]]])
            let synced = try await stack.admin.expect(.POST, "/abm/tokens/\(tokenID)/sync")
            XCTAssertEqual(synced["added"] as? Int, 2)
            let health = try unwrap((try await stack.admin.expect(.GET, "/abm/tokens")["items"] as? [[String: Any]])?.first { $0["id"] as? String == tokenID })
            XCTAssertNotNil(health["lastSyncAt"] as? String, "the token's health shows its last sync")
            XCTAssertNil(health["lastSyncError"] as? String)
            XCTAssertEqual(health["devices"] as? Int, 2)
        }

        try await step("3. An ADE profile is defined with ABM (validated first) and made the token's default: both devices get it") {
            let anchor = Data(stack.profileCA.der).base64EncodedString()
            let defined = try await stack.admin.expect(.POST, "/abm/tokens/\(tokenID)/profiles", json: [
                "profile": ["profile_name": "Acme ADE \(tag)", "is_supervised": true, "is_mdm_removable": false,
                            "await_device_configured": true, "is_mandatory": true, "skip_setup_items": ["Siri", "Privacy", "TOS"],
                            "anchor_certs": [anchor], "department": "IT", "support_email_address": "it@example.com"],
                "minimumOS": ["iOS": "18.0", "macOS": "15.0"], "default": true,
            ])
            profileID = try unwrap(defined["id"] as? String)
            profileUUID = try unwrap(defined["profileUUID"] as? String)
            XCTAssertEqual(defined["isDefault"] as? Bool, true)
            let health = try unwrap((try await stack.admin.expect(.GET, "/abm/tokens")["items"] as? [[String: Any]])?.first { $0["id"] as? String == tokenID })
            XCTAssertEqual(health["defaultProfileID"] as? String, profileID)
            let atABM = try await standInJSON(standIn, "profiles?consumer_key=\(consumerKey)")
            let sent = try unwrap((atABM as? [String: Any])?[profileUUID] as? [String: Any])
            XCTAssertEqual(sent["url"] as? String, enrollURL, "Orchard fills url with its ADE endpoint")
            XCTAssertEqual(sent["configuration_web_url"] as? String, enrollURL)
            XCTAssertEqual(sent["is_mdm_removable"] as? Bool, false)
            let devices = try await stack.admin.expect(.GET, "/abm/devices?tokenId=\(tokenID)")
            let items = devices["items"] as? [[String: Any]] ?? []
            XCTAssertEqual(items.count, 2)
            for item in items {
                XCTAssertEqual(item["assignment"] as? String, "assigned", "\(item)")
                XCTAssertEqual(item["lastOutcome"] as? String, "SUCCESS")
                XCTAssertEqual(item["profileUUID"] as? String, profileUUID)
            }
        }

        try await step("4. The profile's setup items: a configuration profile and a declaration") {
            let declared = try await stack.admin.call(.PUT, "/declarations/com.acme.ade.\(tag)", json: [
                "type": "com.apple.configuration.passcode.settings", "payload": ["RequirePasscode": true],
            ])
            XCTAssertEqual(declared.status, 204, declared.text)
            let saved = try await stack.admin.expect(.PUT, "/ade/profiles/\(profileID)/setup", json: [
                // DeviceInformation as a setup item too, as administrators write it: the enrollment asks for it already.
                "commands": [["type": "InstallProfile", "profile": Data(Plist.xml(["PayloadType": .string("Configuration")])).base64EncodedString()],
                             ["type": "DeviceInformation"]],
                "declarations": ["com.acme.ade.\(tag)"],
            ])
            XCTAssertEqual(saved["commands"] as? [String], ["InstallProfile", "DeviceInformation"])
            let assigned = await eventually(timeout: 60) {
                let view = try? await stack.admin.expect(.GET, "/ade/devices?after=C02\(tag)&limit=10")
                let mine = (view?["items"] as? [[String: Any]] ?? []).filter { ($0["serialNumber"] as? String)?.contains(tag) == true }
                return mine.count == 2 && mine.allSatisfy { $0["state"] as? String == "assigned" }
            }
            XCTAssertTrue(assigned, "the gateway's copy shows both devices assigned (from abm-sync's events)")
        }

        var enrolled: [SimulatedDevice] = []
        try await step("5. In Setup Assistant the Mac POSTs its MachineInfo, the iPhone GETs with x-apple-aspen-deviceinfo: each gets the signed profile") {
            let macAnswer = try await mac.post(enrollURL)
            XCTAssertEqual(macAnswer.status, 200, macAnswer.text)
            XCTAssertEqual(macAnswer.headers["content-type"], "application/x-apple-aspen-config")
            let phoneAnswer = try await phone.get(enrollURL)
            XCTAssertEqual(phoneAnswer.status, 200, phoneAnswer.text)
            for (device, answer, platform) in [(mac, macAnswer, "macOS"), (phone, phoneAnswer, "iOS")] {
                let verified = try unwrap(try opensslVerifiedProfile(answer.body, ca: stack.profileCA), "openssl cms -verify accepts it")
                XCTAssertEqual(verified["PayloadRemovalDisallowed"]?.bool, true, "is_mdm_removable=false")
                let payloads = verified["PayloadContent"]?.array?.compactMap(\.dictionary) ?? []
                XCTAssertTrue(payloads.contains { $0["PayloadType"]?.string == "com.apple.security.root"
                    && $0["PayloadContent"]?.data == stack.profileCA.der }, "the ADE profile's anchor is in the profile")
                let (installed, _) = try SimulatedDevice.installing(answer.body, roots: [stack.profileCA], udid: device.udid,
                                                                    serial: device.serial, platform: platform, productName: device.product,
                                                                    osVersion: device.osVersion)
                installed.awaitingConfiguration = true
                enrolled.append(installed)
            }
        }

        try await step("6. Each enrolls (Authenticate, TokenUpdate saying AwaitingConfiguration), acknowledges its setup items, gets DeviceConfigured and is released") {
            for device in enrolled {
                let authenticateStatus = try await device.authenticate().status
                XCTAssertEqual(authenticateStatus, 200)
                let tokenUpdateStatus = try await device.tokenUpdate().status
                XCTAssertEqual(tokenUpdateStatus, 200)
                var seen: [String] = []
                var command = try await device.idle()
                while let current = command, current.requestType != "DeviceConfigured" {
                    seen.append(current.requestType)
                    let extra = current.requestType == "DeviceInformation" ? device.informationAnswers(supervised: true) : [:]
                    command = try await device.respond(to: current, status: "Acknowledged", extra: extra)
                }
                XCTAssertEqual(seen.sorted(), ["DeclarativeManagement", "DeviceInformation", "InstallProfile"],
                               "setup items before the release, DeviceInformation once")
                let configured = try unwrap(command, "DeviceConfigured once every setup item finished")
                let afterConfigured = try await device.respond(to: configured, status: "Acknowledged")
                XCTAssertNil(afterConfigured)
            }
            let released = await eventually(timeout: 30) {
                let view = try? await stack.admin.expect(.GET, "/ade/devices?after=C02\(tag)&limit=10")
                let mine = (view?["items"] as? [[String: Any]] ?? []).filter { ($0["serialNumber"] as? String)?.contains(tag) == true }
                return mine.count == 2 && mine.allSatisfy { $0["state"] as? String == "released" }
            }
            XCTAssertTrue(released, "both devices are released")
            for device in enrolled {
                let view = try await stack.admin.expect(.GET, "/devices/\(device.udid)")
                XCTAssertEqual(view["awaitingConfiguration"] as? Bool, false, "released: no longer awaiting configuration")
                XCTAssertEqual(view["adeState"] as? String, "released")
            }
        }

        try await step("7. The Mac's identity cannot speak for the iPhone (identities are bound to the UDID their MachineInfo proved)") {
            let (macDevice, phoneDevice) = (enrolled[0], enrolled[1])
            let impostor = try SimulatedDevice(udid: phoneDevice.udid, serial: phoneDevice.serial, identity: macDevice.identity,
                                               topic: phoneDevice.topic, checkInURL: phoneDevice.checkInURL, serverURL: phoneDevice.serverURL)
            let stolen = try await impostor.authenticate()
            XCTAssertEqual(stolen.status, 403, stolen.text)
            let stillThere = try await phoneDevice.idle()
            XCTAssertNil(stillThere, "the iPhone keeps working")
        }

        try await step("8. The activity log shows every step, from the token to the release") {
            let expected = ["abm-token.uploaded", "abm-sync.finished", "ade-profile.defined", "ade-profile.assigned",
                            "ade.enrollment-profile.served", "ade.enrolled", "ade.setting-up", "ade.setup-item.done",
                            "ade.release.requested", "ade.released"]
            var actions: Set<String> = []
            let complete = await eventually(timeout: 60) {
                let log = try? await stack.admin.expect(.GET, "/activity?limit=1000")
                let entries = log?["items"] as? [[String: Any]] ?? []
                actions = Set(entries.filter { entry in
                    let text = "\(entry["detail"] ?? "") \(entry["deviceID"] ?? "")"
                    return [tokenID, consumerKey, mac.udid, phone.udid, mac.serial, phone.serial].contains(where: text.contains)
                }.compactMap { $0["action"] as? String })
                return Set(expected).isSubset(of: actions)
            }
            XCTAssertTrue(complete, "activity entries for each step; missing: \(Set(expected).subtracting(actions).sorted())")
        }

        try await step("9. All of it took one ABM session: every call after the first adopted the session the answer before gave") {
            let calls = try await standIn.requests(consumerKey)
            let sessions = calls.filter { $0["path"] as? String == "/session" }.count
            XCTAssertGreaterThanOrEqual(calls.count, 5, "upload, sync, define, assign…: \(calls)")
            XCTAssertEqual(sessions, 1, "one GET /session for \(calls.count) calls: \(calls.map { "\($0["method"] ?? "") \($0["path"] ?? "")" })")
            XCTAssertFalse(calls.contains { $0["status"] as? Int == 401 }, "no call was refused for its session")
        }
    }
}

func standInJSON(_ standIn: ABMStandIn, _ path: String) async throws -> Any {
    let answer = try await http(.GET, "\(standIn.url)/_control/\(path)")
    return try JSONSerialization.jsonObject(with: Data(answer.body))
}
