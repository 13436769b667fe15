import AppleProtocol
import Foundation
import OrchardCrypto
import OrchardTestSupport
import XCTest

/// What ADE refuses, and what it does when ABM answers less than SUCCESS: profiles ABM would refuse are
/// refused first (nothing reaches ABM), per-serial FAILED/THROTTLED wait their retry_after_seconds, a device
/// ABM shows `removed` is assigned again, and the enrollment endpoint refuses unsigned, forged and unassigned
/// devices with a JSON reason and asks an outdated one to update.
final class ADERefusalTests: XCTestCase {
    func testProfilesABMWouldRefuseAreRefusedBeforeReachingIt() async throws {
        let stack = try await Fixture.shared.prepare()
        let standIn = try ABMStandIn()
        let consumerKey = "CK_adeval_\(UUID().uuidString.prefix(8))"
        let tokenID = try await uploadedToken(stack, standIn: standIn, consumerKey: consumerKey)
        let cases: [(String, [String: Any], [String: String]?, String)] = [
            ("not removable without supervision", ["profile_name": "p", "is_mdm_removable": false], nil, "FLAGS_INVALID"),
            ("Shared iPad without supervision", ["profile_name": "p", "is_multi_user": true], nil, "FLAGS_INVALID"),
            ("not a skip key", ["profile_name": "p", "skip_setup_items": ["Siri", "No Such Pane"]], nil, "No Such Pane"),
            ("a skip key twice", ["profile_name": "p", "skip_setup_items": ["Siri", "Siri"]], nil, "twice"),
            ("unknown key", ["profile_name": "p", "is_removable": true], nil, "unknown profile key"),
            ("no name", ["url": "https://mdm.example.com/ade"], nil, "profile_name"),
            ("URL not absolute", ["profile_name": "p", "url": "mdm/ade"], nil, "url"),
            ("flag as a number", ["profile_name": "p", "is_supervised": 1], nil, "is_supervised"),
            ("anchor not a certificate", ["profile_name": "p", "anchor_certs": ["bm90IGEgY2VydA=="]], nil, "anchor_certs[0]"),
            ("minimum OS not a version", ["profile_name": "p"], ["iOS": "eighteen"], "minimumOS"),
        ]
        for (name, profile, minimum, reason) in cases {
            var body: [String: Any] = ["profile": profile]
            if let minimum { body["minimumOS"] = minimum }
            let answer = try await stack.admin.call(.POST, "/abm/tokens/\(tokenID)/profiles", json: body)
            XCTAssertEqual(answer.status, 400, "\(name): \(answer.text)")
            XCTAssertTrue(answer.text.contains(reason), "\(name): \(answer.text)")
        }
        let calls = try await standIn.requests(consumerKey)
        XCTAssertFalse(calls.contains { $0["path"] as? String == "/profile" }, "nothing reached ABM")
        let profiles = try await stack.admin.expect(.GET, "/abm/profiles")
        XCTAssertFalse((profiles["items"] as? [[String: Any]] ?? []).contains { $0["tokenID"] as? String == tokenID }, "nothing stored")

        // A skip key Apple added after Orchard's list (ABM takes it first): defined, with a warning in the answer and the log.
        let defined = try await stack.admin.expect(.POST, "/abm/tokens/\(tokenID)/profiles", json: [
            "profile": ["profile_name": "next year", "skip_setup_items": ["UnlockWithWatch", "NextYearsPane"], "profile_uuid": "ABC"]])
        let warnings = defined["warnings"] as? [String] ?? []
        XCTAssertEqual(warnings.count, 2, "\(defined)")
        XCTAssertTrue(warnings.contains { $0.contains("NextYearsPane") } && warnings.contains { $0.contains("profile_uuid") }, "\(warnings)")
        XCTAssertNotEqual(defined["profileUUID"] as? String, "ABC", "ABM's own profile_uuid")
        let logged = await eventually(timeout: 30) {
            let log = try? await stack.admin.expect(.GET, "/activity?action=ade-profile.defined&limit=200")
            return (log?["items"] as? [[String: Any]] ?? []).contains {
                ($0["detail"] as? String ?? "").contains(tokenID) && ($0["detail"] as? String ?? "").contains("NextYearsPane")
            }
        }
        XCTAssertTrue(logged, "the activity entry carries the warning")
    }

    func testAssignmentOutcomesCooldownsAndReassignmentOfRemovedDevices() async throws {
        let stack = try await Fixture.shared.prepare()
        let standIn = try ABMStandIn()
        let consumerKey = "CK_adeas_\(UUID().uuidString.prefix(8))"
        let tag = UUID().uuidString.prefix(6).uppercased()
        let serials = (0..<4).map { "AS\(tag)\($0)" }
        let tokenID = try await uploadedToken(stack, standIn: standIn, consumerKey: consumerKey)
        try await standIn.control("devices", ["consumer_key": consumerKey, "devices": serials.map { ["serial_number": $0, "model": "iPad"] }])
        _ = try await stack.admin.expect(.POST, "/abm/tokens/\(tokenID)/sync")
        func devices() async throws -> [String: [String: Any]] {
            let list = try await stack.admin.expect(.GET, "/abm/devices?tokenId=\(tokenID)")
            return Dictionary(uniqueKeysWithValues: (list["items"] as? [[String: Any]] ?? []).map { ($0["serialNumber"] as? String ?? "", $0) })
        }
        func assignCalls() async throws -> Int {
            try await standIn.requests(consumerKey).filter { $0["path"] as? String == "/profile/devices" }.count
        }

        try await step("1. ABM answers SUCCESS, FAILED, THROTTLED and NOT_ACCESSIBLE inside a 200, with retry_after_seconds") {
            try await standIn.control("assign", ["consumer_key": consumerKey, "retry_after_seconds": 600,
                                                 "outcomes": [serials[1]: "FAILED", serials[2]: "THROTTLED", serials[3]: "NOT_ACCESSIBLE"]])
            _ = try await stack.admin.expect(.POST, "/abm/tokens/\(tokenID)/profiles", json: [
                "profile": ["profile_name": "Assign \(tag)"], "default": true])
            let state = try await devices()
            XCTAssertEqual(state[serials[0]]?["assignment"] as? String, "assigned")
            XCTAssertEqual(state[serials[1]]?["assignment"] as? String, "failed")
            XCTAssertEqual(state[serials[2]]?["assignment"] as? String, "throttled")
            XCTAssertEqual(state[serials[3]]?["assignment"] as? String, "not-accessible")
            let retry = try unwrap(state[serials[1]]?["retryAfter"] as? String)
            let when = try unwrap(ISO8601DateFormatter().date(from: retry))
            XCTAssertEqual(when.timeIntervalSinceNow, 600, accuracy: 120, "ABM's retry_after_seconds, not a fixed cooldown")
        }

        try await step("2. The next sync does not retry them before their time") {
            try await standIn.control("assign", ["consumer_key": consumerKey, "outcomes": [:]])
            let before = try await assignCalls()
            let synced = try await stack.admin.expect(.POST, "/abm/tokens/\(tokenID)/sync")
            XCTAssertEqual(synced["assigned"] as? Int, 0)
            let after = try await assignCalls()
            XCTAssertEqual(after, before, "no assignment call for cooled-down serials")
        }

        try await step("3. ABM shows the assigned device `removed` (re-assigned to this server): the next sync assigns it again") {
            try await standIn.control("devices", ["consumer_key": consumerKey, "op_type": "modified",
                                                  "devices": [["serial_number": serials[0], "profile_status": "removed"]]])
            let synced = try await stack.admin.expect(.POST, "/abm/tokens/\(tokenID)/sync")
            XCTAssertEqual(synced["assigned"] as? Int, 1)
            let state = try await devices()
            XCTAssertEqual(state[serials[0]]?["profileStatus"] as? String, "assigned")
        }

        try await step("4. ABM throttles the whole call (429 + Retry-After), then answers: the assignment waits and is not lost") {
            try await standIn.control("devices", ["consumer_key": consumerKey, "devices": [["serial_number": "AS\(tag)9", "model": "iPad"]]])
            try await standIn.control("throttle", ["consumer_key": consumerKey, "count": 2, "retry_after": 1])
            let synced = try await stack.admin.expect(.POST, "/abm/tokens/\(tokenID)/sync")
            XCTAssertNil(synced["assignmentError"], "\(synced)")
            XCTAssertEqual(synced["assigned"] as? Int, 1, "the new device got the default profile after the throttling")
            let calls = try await standIn.requests(consumerKey)
            XCTAssertGreaterThanOrEqual(calls.filter { $0["status"] as? Int == 429 }.count, 2)
        }

        try await step("5. An administrator's explicit assignment ends a cooldown; an unknown serial is not sent") {
            let profiles = try await stack.admin.expect(.GET, "/abm/profiles")
            let profile = try unwrap((profiles["items"] as? [[String: Any]])?.first { $0["tokenID"] as? String == tokenID })
            let reply = try await stack.admin.expect(.POST, "/abm/profiles/\(try unwrap(profile["id"] as? String))/assign",
                                                     json: ["serials": [serials[1], "NOPE\(tag)"]])
            let outcomes = reply["outcomes"] as? [String: String] ?? [:]
            XCTAssertEqual(outcomes[serials[1]], "SUCCESS")
            XCTAssertEqual(outcomes["NOPE\(tag)"], "NOT_IN_MIRROR")
        }
    }

    /// An administrator removes a device's profile at ABM (DELETE /profile/devices): per-serial outcomes, the mirror and the
    /// gateway's copy show `removed`, the token's default is not assigned to it again by the next sync, the device in
    /// Setup Assistant gets no profile; an explicit assignment brings it back.
    func testAnAdministratorRemovesADevicesProfileAndTheDefaultStaysOff() async throws {
        let stack = try await Fixture.shared.prepare()
        let standIn = try ABMStandIn()
        let consumerKey = "CK_aderm_\(UUID().uuidString.prefix(8))"
        let tag = UUID().uuidString.prefix(6).uppercased()
        let (kept, removed) = ("RM\(tag)1", "RM\(tag)2")
        let tokenID = try await uploadedToken(stack, standIn: standIn, consumerKey: consumerKey)
        try await standIn.control("devices", ["consumer_key": consumerKey, "devices": [
            ["serial_number": kept, "model": "iPhone"], ["serial_number": removed, "model": "iPhone"]]])
        _ = try await stack.admin.expect(.POST, "/abm/tokens/\(tokenID)/sync")
        let profile = try await stack.admin.expect(.POST, "/abm/tokens/\(tokenID)/profiles", json: [
            "profile": ["profile_name": "Removal \(tag)", "is_supervised": true], "default": true])
        func mirror() async throws -> [String: [String: Any]] {
            let list = try await stack.admin.expect(.GET, "/abm/devices?tokenId=\(tokenID)")
            return Dictionary(uniqueKeysWithValues: (list["items"] as? [[String: Any]] ?? []).map { ($0["serialNumber"] as? String ?? "", $0) })
        }
        let before = try await mirror()
        XCTAssertEqual(before[removed]?["assignment"] as? String, "assigned")

        let answer = try await stack.admin.expect(.POST, "/abm/tokens/\(tokenID)/devices/remove-profile", json: ["serials": [removed, "NOPE\(tag)"]])
        let outcomes = try JSONSerialization.jsonObject(with: Data((answer["devices"] as? String ?? "{}").utf8)) as? [String: String]
        XCTAssertEqual(outcomes, [removed: "SUCCESS", "NOPE\(tag)": "NOT_ACCESSIBLE"])
        let calls = try await standIn.requests(consumerKey)
        XCTAssertTrue(calls.contains { $0["method"] as? String == "DELETE" && $0["path"] as? String == "/profile/devices" }, "\(calls)")
        var state = try await mirror()
        XCTAssertEqual(state[removed]?["profileStatus"] as? String, "removed")
        XCTAssertEqual(state[removed]?["assignment"] as? String, "unassigned")
        XCTAssertEqual(state[kept]?["assignment"] as? String, "assigned", "the other device keeps its profile")

        // The next sync sees the removal on ABM's feed and does not assign the default again.
        let synced = try await stack.admin.expect(.POST, "/abm/tokens/\(tokenID)/sync")
        XCTAssertEqual(synced["assigned"] as? Int, 0, "\(synced)")
        state = try await mirror()
        XCTAssertEqual(state[removed]?["profileStatus"] as? String, "removed")

        // In Setup Assistant it gets no profile (the gateway's copy learnt of the removal from the event).
        let url = "\(stack.gateway)/mdm/ade/enroll"
        let device = try SimulatedADEDevice(udid: newUDID(), serial: removed, product: "iPhone17,1", osVersion: "18.2", appleCA: stack.appleCA)
        var refused: HTTPResult?
        let noProfile = await eventually(timeout: 30) {
            refused = try? await device.post(url)
            return refused?.status == 403 && (try? refused?.json())?["code"] as? String == "orchard.ade.profile-not-assigned"
        }
        XCTAssertTrue(noProfile, "\(refused?.status ?? 0) \(refused?.text ?? "")")
        let logged = await eventually(timeout: 30) {
            let log = try? await stack.admin.expect(.GET, "/activity?action=ade-profile.removed&limit=100")
            return (log?["items"] as? [[String: Any]] ?? []).contains { ($0["detail"] as? String ?? "").contains(removed) }
        }
        XCTAssertTrue(logged, "the removal is in the activity log with its outcomes")

        // An administrator assigns it explicitly: back with a profile, and it enrolls.
        let reply = try await stack.admin.expect(.POST, "/abm/profiles/\(try unwrap(profile["id"] as? String))/assign", json: ["serials": [removed]])
        XCTAssertEqual((reply["outcomes"] as? [String: String])?[removed], "SUCCESS")
        let served = await eventually(timeout: 30) { (try? await device.post(url))?.status == 200 }
        XCTAssertTrue(served, "assigned again, the device gets its profile")
    }

    func testEnrollmentRefusesUnsignedForgedUnassignedAndOutdatedDevices() async throws {
        let stack = try await Fixture.shared.prepare()
        let standIn = try ABMStandIn()
        let consumerKey = "CK_aderef_\(UUID().uuidString.prefix(8))"
        let tag = UUID().uuidString.prefix(6).uppercased()
        let url = "\(stack.gateway)/mdm/ade/enroll"
        let tokenID = try await uploadedToken(stack, standIn: standIn, consumerKey: consumerKey)
        let assigned = "RA\(tag)1", unassigned = "RA\(tag)2"
        try await standIn.control("devices", ["consumer_key": consumerKey, "devices": [
            ["serial_number": assigned, "model": "iPhone"], ["serial_number": unassigned, "model": "iPhone"]]])
        _ = try await stack.admin.expect(.POST, "/abm/tokens/\(tokenID)/sync")
        _ = try await stack.admin.expect(.POST, "/abm/tokens/\(tokenID)/profiles", json: [
            "profile": ["profile_name": "Refusals \(tag)", "devices": [assigned]], "minimumOS": ["iOS": "18.2"]])
        func device(_ serial: String, os: String = "18.2", canUpdate: Bool = true) throws -> SimulatedADEDevice {
            try SimulatedADEDevice(udid: newUDID(), serial: serial, product: "iPhone17,1", osVersion: os, canRequestSoftwareUpdate: canUpdate,
                                   appleCA: stack.appleCA)
        }
        let ready = await eventually(timeout: 60) {
            let view = try? await stack.admin.expect(.GET, "/ade/devices?after=RA\(tag)&limit=10")
            return (view?["items"] as? [[String: Any]] ?? []).contains { $0["serialNumber"] as? String == assigned && $0["state"] as? String == "assigned" }
        }
        XCTAssertTrue(ready, "the gateway's copy shows the assigned device")

        func code(_ answer: HTTPResult) -> String? { (try? answer.json())?["code"] as? String }
        let unknown = try await device("XX\(tag)").post(url)
        XCTAssertEqual(unknown.status, 403)
        XCTAssertEqual(code(unknown), "orchard.ade.device-unknown", unknown.text)
        let notAssigned = try await device(unassigned).post(url)
        XCTAssertEqual(notAssigned.status, 403)
        XCTAssertEqual(code(notAssigned), "orchard.ade.profile-not-assigned", notAssigned.text)
        // Signed by a certificate that does not chain to Apple's device CA.
        let forged = try await device(assigned).post(url, signer: stack.testCA)
        XCTAssertEqual(forged.status, 403, forged.text)
        let garbage = try await http(.POST, url, headers: [("Content-Type", "application/pkcs7-signature")], body: Array("hello".utf8))
        XCTAssertEqual(garbage.status, 403, garbage.text)
        let unsigned = try await http(.POST, url, headers: [("Content-Type", "application/pkcs7-signature")],
                                      body: try device(assigned).machineInfo.plist)
        XCTAssertEqual(unsigned.status, 403, unsigned.text)
        let empty = try await http(.GET, url)
        XCTAssertEqual(empty.status, 400, empty.text)

        // Below the profile's minimum OS: told to update when it says it can, enrolled otherwise.
        let outdated = try await device(assigned, os: "18.1").post(url)
        XCTAssertEqual(outdated.status, 403, outdated.text)
        let document = try outdated.json()
        XCTAssertEqual(document["code"] as? String, "com.apple.softwareupdate.required")
        XCTAssertEqual((document["details"] as? [String: Any])?["OSVersion"] as? String, "18.2")
        XCTAssertEqual(outdated.headers["content-type"], "application/json")
        let cannotUpdate = try await device(assigned, os: "18.1", canUpdate: false).post(url)
        XCTAssertEqual(cannotUpdate.status, 200, cannotUpdate.text)
        let current = try await device(assigned).get(url)
        XCTAssertEqual(current.status, 200, current.text)
        let log = try await stack.admin.expect(.GET, "/activity?action=ade.enrollment.refused&limit=100")
        XCTAssertTrue((log["items"] as? [[String: Any]] ?? []).contains { ($0["detail"] as? String)?.contains(unassigned) == true },
                      "refusals are in the activity log")
    }

    func testASetupItemAnsweredNotNowDoesNotHoldTheDeviceBeyondTheDeadline() async throws {
        let stack = try await Fixture.shared.prepare()
        let standIn = try ABMStandIn()
        let consumerKey = "CK_adenn_\(UUID().uuidString.prefix(8))"
        let tag = UUID().uuidString.prefix(6).uppercased()
        let tokenID = try await uploadedToken(stack, standIn: standIn, consumerKey: consumerKey)
        let ade = try SimulatedADEDevice(udid: newUDID(), serial: "NN\(tag)", product: "iPad16,3", osVersion: "18.2", appleCA: stack.appleCA)
        try await standIn.control("devices", ["consumer_key": consumerKey, "devices": [["serial_number": ade.serial, "model": "iPad"]]])
        _ = try await stack.admin.expect(.POST, "/abm/tokens/\(tokenID)/sync")
        let profile = try await stack.admin.expect(.POST, "/abm/tokens/\(tokenID)/profiles", json: [
            "profile": ["profile_name": "NotNow \(tag)", "await_device_configured": true, "is_supervised": true], "default": true])
        _ = try await stack.admin.expect(.PUT, "/ade/profiles/\(try unwrap(profile["id"] as? String))/setup", json: [
            "commands": [["type": "DeviceLock", "message": "setup"]]])
        var answer = try await ade.post("\(stack.gateway)/mdm/ade/enroll")
        _ = await eventually(timeout: 60) {
            if answer.status == 200 { return true }
            answer = (try? await ade.post("\(stack.gateway)/mdm/ade/enroll")) ?? answer
            return answer.status == 200
        }
        XCTAssertEqual(answer.status, 200, answer.text)
        let (device, _) = try SimulatedDevice.installing(answer.body, roots: [stack.profileCA], udid: ade.udid, serial: ade.serial)
        device.awaitingConfiguration = true
        let authenticateStatus = try await device.authenticate().status
                XCTAssertEqual(authenticateStatus, 200)
        let tokenUpdateStatus = try await device.tokenUpdate().status
                XCTAssertEqual(tokenUpdateStatus, 200)
        // The device acknowledges DeviceInformation but answers NotNow to the setup item, for as long as it is asked.
        var configured: MDMCommand?
        let started = Date()
        _ = await eventually(timeout: 120) {
            guard var command = try? await device.idle() else { return false }
            for _ in 0..<10 {
                if command.requestType == "DeviceConfigured" { configured = command; return true }
                let status = command.requestType == "DeviceLock" ? "NotNow" : "Acknowledged"
                guard let next = try? await device.respond(to: command, status: status,
                                                           extra: command.requestType == "DeviceInformation" ? device.informationAnswers(supervised: true) : [:])
                else { return false }
                command = next
            }
            return false
        }
        let release = try unwrap(configured, "DeviceConfigured after the deadline")
        XCTAssertGreaterThan(Date().timeIntervalSince(started), 25, "not before the 30 s deadline")
        let afterRelease = try await device.respond(to: release, status: "Acknowledged")
        XCTAssertNil(afterRelease)
        let log = try await stack.admin.expect(.GET, "/activity?deviceID=\(ade.udid)&limit=100")
        let entries = log["items"] as? [[String: Any]] ?? []
        XCTAssertTrue(entries.contains { $0["action"] as? String == "ade.release.requested" && ($0["detail"] as? String)?.contains("deadline") == true })
        XCTAssertTrue(entries.contains { $0["action"] as? String == "ade.released" })
    }
}
