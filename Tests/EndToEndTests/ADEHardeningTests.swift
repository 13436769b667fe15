import AppleProtocol
import Foundation
import OrchardCrypto
import OrchardMessaging
import OrchardSchemas
import OrchardStorage
import OrchardTestSupport
import XCTest

/// Hardening issue 18, written as the outside probe's attacks: the ADE sign-in could be skipped, a captured MachineInfo
/// replayed took over an enrolled device, a sign-in with an unknown account burnt a core per request, and
/// unauthenticated requests wrote one activity row each.
final class ADEHardeningTests: XCTestCase {
    /// A server token, one device synced and assigned a new default profile; returns when the gateway's copy of ABM's
    /// devices lets the device ask for its profile (the answer is no longer "not assigned").
    private func assignedDevice(_ stack: Fixture.Ready, prefix: String, profile: [String: Any], signIn: Bool = false)
        async throws -> (standIn: ABMStandIn, consumerKey: String, device: SimulatedADEDevice) {
        let standIn = try ABMStandIn()
        let tag = UUID().uuidString.prefix(6).uppercased()
        let consumerKey = "CK_\(prefix)_\(tag)"
        let tokenID = try await uploadedToken(stack, standIn: standIn, consumerKey: consumerKey)
        let device = try SimulatedADEDevice(udid: newUDID(), serial: "\(prefix.uppercased())\(tag)", product: "iPhone17,1",
                                            osVersion: "18.2", appleCA: stack.appleCA)
        try await standIn.control("devices", ["consumer_key": consumerKey, "devices": [["serial_number": device.serial, "model": "iPhone"]]])
        _ = try await stack.admin.expect(.POST, "/abm/tokens/\(tokenID)/sync")
        var body: [String: Any] = ["profile": profile.merging(["profile_name": "\(prefix) \(tag)"]) { $1 }, "default": true]
        if signIn { body["signIn"] = true }
        let defined = try await stack.admin.expect(.POST, "/abm/tokens/\(tokenID)/profiles", json: body)
        XCTAssertEqual(defined["requiresSignIn"] as? Bool, signIn)
        let known = await eventually(timeout: 60) {
            let view = try? await stack.admin.expect(.GET, "/ade/devices?after=\(device.serial.dropLast())&limit=5")
            return (view?["items"] as? [[String: Any]] ?? []).contains { $0["serialNumber"] as? String == device.serial && $0["state"] as? String == "assigned" }
        }
        XCTAssertTrue(known, "the gateway's copy shows the device assigned")
        return (standIn, consumerKey, device)
    }

    /// Installs a served profile and enrolls with it (Authenticate, TokenUpdate, the first DeviceInformation).
    private func enroll(_ answer: HTTPResult, _ device: SimulatedADEDevice, _ stack: Fixture.Ready) async throws -> SimulatedDevice {
        XCTAssertEqual(answer.status, 200, answer.text)
        let (installed, _) = try SimulatedDevice.installing(answer.body, roots: [stack.profileCA], udid: device.udid, serial: device.serial,
                                                            platform: "iOS", productName: device.product, osVersion: device.osVersion)
        try await Fixture.shared.completeEnrollment(installed, supervised: true)
        return installed
    }

    private func activity(_ stack: Fixture.Ready, device: String, action: String, containing text: String) async -> Bool {
        await eventually(timeout: 30) {
            let items = (try? await stack.admin.expect(.GET, "/activity?deviceID=\(device)&limit=200"))?["items"] as? [[String: Any]] ?? []
            return items.contains { $0["action"] as? String == action && ($0["detail"] as? String ?? "").contains(text) }
        }
    }

    // MARK: Item 1

    func testAProfileThatRequiresSignInIsServedOnlyAfterTheSignIn() async throws {
        let stack = try await Fixture.shared.prepare()
        let (_, _, device) = try await assignedDevice(stack, prefix: "SK", profile: ["is_supervised": true], signIn: true)
        let enrollURL = "\(stack.gateway)/mdm/ade/enroll"

        try await step("1. POST of the signed MachineInfo to the profile's url, no sign-in: 403, no profile") {
            let posted = try await device.post(enrollURL)
            XCTAssertEqual(posted.status, 403, posted.text)
            XCTAssertEqual(posted.headers["content-type"], "application/json")
            XCTAssertEqual(try posted.json()["code"] as? String, "orchard.ade.sign-in-required")
            XCTAssertNil(try? opensslVerifiedProfile(posted.body, ca: stack.profileCA))
        }
        try await step("2. GET of the url with x-apple-aspen-deviceinfo: the same") {
            let got = try await device.get(enrollURL)
            XCTAssertEqual(got.status, 403, got.text)
            XCTAssertEqual(try got.json()["code"] as? String, "orchard.ade.sign-in-required")
        }
        try await step("3. The sign-in page's POST with a good account: the signed profile") {
            let username = "kim.\(device.serial.lowercased())@acme.example"
            _ = try await stack.admin.expect(.PUT, "/ade/accounts/\(username)", json: ["password": "correct horse battery"])
            let deviceInfo = Data(try device.signedMachineInfo()).base64EncodedString()
            func encode(_ s: String) -> String { s.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "" }
            let signedIn = try await http(.POST, "\(stack.gateway)/mdm/ade/sign-in",
                                          headers: [("Content-Type", "application/x-www-form-urlencoded"), ("X-Forwarded-For", "192.0.2.90")],
                                          body: Array("deviceinfo=\(encode(deviceInfo))&username=\(encode(username))&password=\(encode("correct horse battery"))".utf8))
            XCTAssertEqual(signedIn.status, 200, signedIn.text)
            XCTAssertEqual(signedIn.headers["content-type"], "application/x-apple-aspen-config")
            XCTAssertNotNil(try opensslVerifiedProfile(signedIn.body, ca: stack.profileCA))
        }
        let refused = await activity(stack, device: device.udid, action: "ade.enrollment.refused", containing: "orchard.ade.sign-in-required")
        XCTAssertTrue(refused, "the refusal is in the activity log")
    }

    // MARK: Item 2

    func testAReplayedMachineInfoCannotTakeOverAnEnrolledDevice() async throws {
        let stack = try await Fixture.shared.prepare()
        let (standIn, consumerKey, device) = try await assignedDevice(stack, prefix: "RP", profile: ["is_supervised": true])
        let enrollURL = "\(stack.gateway)/mdm/ade/enroll"
        var real: SimulatedDevice!
        let captured = try device.signedMachineInfo()
        func replay() async throws -> HTTPResult {
            try await http(.POST, enrollURL, headers: [("Content-Type", "application/pkcs7-signature"), ("X-Forwarded-For", "203.0.113.66")],
                           body: captured)
        }

        try await step("1. The device enrolls through ADE; an administrator queues DeviceLock for it") {
            real = try await enroll(try await device.post(enrollURL), device, stack)
            _ = try await stack.admin.expect(.POST, "/devices/\(device.udid)/commands", json: ["type": "DeviceLock"])
        }
        try await step("2. Its captured MachineInfo sent again while ABM does not answer: 503 with Retry-After (Setup Assistant retries), never a silent pass") {
            try await standIn.control("throttle", ["consumer_key": consumerKey, "count": 4, "retry_after": 1])
            let unavailable = try await replay()
            XCTAssertEqual(unavailable.status, 503, unavailable.text)
            XCTAssertNotNil(unavailable.headers["retry-after"])
            try await standIn.control("throttle", ["consumer_key": consumerKey, "count": 0, "retry_after": 1])
        }
        try await step("3. Sent again (body, or the header a proxy logged) with ABM answering: refused, no identity") {
            let posted = try await replay()
            XCTAssertEqual(posted.status, 403, posted.text)
            XCTAssertEqual(try posted.json()["code"] as? String, "orchard.ade.reenrollment-refused")
            XCTAssertTrue(posted.text.contains("no new profile push"), posted.text)
            let logged = try await http(.GET, enrollURL, headers: [("x-apple-aspen-deviceinfo", Data(captured).base64EncodedString())])
            XCTAssertEqual(logged.status, 403, logged.text)
            let entry = await activity(stack, device: device.udid, action: "ade.reenrollment.refused", containing: "re-enrollment refused: no new profile push")
            XCTAssertTrue(entry, "an activity entry says why")
            let events = try await collect(topic: DeviceEvent.topic, settings: try testKafkaSettings("replay-\(device.serial)")) { seen in
                seen.contains { ($0.key == device.udid) && (try? MessageCodec.decode(DeviceEvent.self, from: $0))?.details["state"] == "re-enrollment refused" }
            }
            XCTAssertTrue(events.contains { (try? MessageCodec.decode(DeviceEvent.self, from: $0))?.details["state"] == "re-enrollment refused" },
                          "a device event says so")
        }
        try await step("4. The real device keeps its enrollment and its command") {
            let lock = try await real.idle()
            XCTAssertEqual(lock?.requestType, "DeviceLock")
            _ = try await real.respond(to: try unwrap(lock), status: "Acknowledged")
        }
        try await step("5. An administrator allows one re-enrollment: one replay is served, the next is refused again") {
            let allowed = try await stack.admin.expect(.POST, "/ade/devices/\(device.serial)/allow-reenrollment")
            XCTAssertEqual(allowed["serialNumber"] as? String, device.serial)
            let unknown = try await stack.admin.call(.POST, "/ade/devices/NOSUCH\(device.serial)/allow-reenrollment")
            XCTAssertEqual(unknown.status, 404, unknown.text)
            let once = try await replay()
            XCTAssertEqual(once.status, 200, once.text)
            let twice = try await replay()
            XCTAssertEqual(twice.status, 403, twice.text)
            // The identity the allowance paid for is not used here: the real device stays enrolled with its own.
            let still = try await real.idle()
            XCTAssertNil(still)
        }
        try await step("6. The device is wiped and runs Setup Assistant: Apple pushes its profile, ABM shows it, the same MachineInfo re-enrolls it") {
            try await standIn.control("push", ["consumer_key": consumerKey, "serial_number": device.serial])
            // The gateway keeps ABM's last answer 10 s (a replay flood is not a flood of calls to ABM): Setup Assistant retries.
            var answer = try await device.post(enrollURL)
            let served = await eventually(timeout: 60) {
                if answer.status == 200 { return true }
                answer = (try? await device.post(enrollURL)) ?? answer
                return answer.status == 200
            }
            XCTAssertTrue(served, "served once ABM's answer shows the push: \(answer.status) \(answer.text)")
            let wiped = try await enroll(answer, device, stack)
            let entry = await activity(stack, device: device.udid, action: "ade.reenrolled", containing: "re-enrolled with a new identity")
            XCTAssertTrue(entry)
            let view = try await stack.admin.expect(.GET, "/devices/\(device.udid)")
            XCTAssertEqual(view["status"] as? String, "enrolled")
            let nothing = try await wiped.idle()
            XCTAssertNil(nothing)
        }
        try await step("7. The old identity gets what Apple documents for an enrollment the server no longer has") {
            let old = try await real.put(real.serverURL, body: Plist.xml(real.identifiers.merging(["Status": .string("Idle")]) { $1 }),
                                         contentType: CommandResult.contentType, signer: real.identity)
            XCTAssertEqual(old.status, 403, old.text)
            XCTAssertEqual(old.headers["content-type"], "application/json")
            XCTAssertEqual(try old.json()["code"] as? String, "com.apple.unrecognized.device")
            let again = try await real.authenticate()
            XCTAssertEqual(again.status, 403, again.text)
            XCTAssertEqual(try again.json()["code"] as? String, "com.apple.unrecognized.device")
        }
    }

    /// The race the gate leaves: a replay served while the device is still enrolling (nothing enrolled to protect yet) gets
    /// an identity; once the device's own identity is bound, that earlier one can never take the enrollment over.
    func testAnIdentityIssuedBeforeTheDeviceEnrolledCannotTakeItOverLater() async throws {
        let stack = try await Fixture.shared.prepare()
        let (_, _, device) = try await assignedDevice(stack, prefix: "RC", profile: ["is_supervised": true])
        let enrollURL = "\(stack.gateway)/mdm/ade/enroll"
        let mine = try await device.post(enrollURL)
        let stolen = try await device.post(enrollURL)
        XCTAssertEqual(stolen.status, 200, "not enrolled yet: a retry is served")
        let real = try await enroll(mine, device, stack)
        let (attacker, _) = try SimulatedDevice.installing(stolen.body, roots: [stack.profileCA], udid: device.udid, serial: device.serial,
                                                           platform: "iOS", productName: device.product, osVersion: device.osVersion)
        let takeover = try await attacker.authenticate()
        XCTAssertEqual(takeover.status, 403, takeover.text)
        let nothing = try await real.idle()
        XCTAssertNil(nothing, "the device keeps working")
        let view = try await stack.admin.expect(.GET, "/devices/\(device.udid)")
        XCTAssertEqual(view["status"] as? String, "enrolled")
    }

    // MARK: Item 3

    func testFailedSignInsAreLimitedPerAddressAndPerAccountUnknownOnesIncluded() async throws {
        let stack = try await Fixture.shared.prepare()
        let (_, _, device) = try await assignedDevice(stack, prefix: "SL", profile: ["is_supervised": true], signIn: true)
        let deviceInfo = Data(try device.signedMachineInfo()).base64EncodedString()
        let tag = device.serial.lowercased()
        func submit(_ username: String, _ password: String, from address: String) async throws -> HTTPResult {
            func encode(_ s: String) -> String { s.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "" }
            return try await http(.POST, "\(stack.gateway)/mdm/ade/sign-in",
                                  headers: [("Content-Type", "application/x-www-form-urlencoded"), ("X-Forwarded-For", address)],
                                  body: Array("deviceinfo=\(encode(deviceInfo))&username=\(encode(username))&password=\(encode(password))".utf8))
        }
        try await step("1. Unknown accounts from one address: 20 failures, then 429 with Retry-After before any password is hashed") {
            let address = "198.51.100.77"
            for i in 0..<20 {
                let answer = try await submit("ghost\(i).\(tag)@acme.example", "guess guess", from: address)
                XCTAssertEqual(answer.status, 401, answer.text)
            }
            let locked = try await submit("ghost99.\(tag)@acme.example", "guess guess", from: address)
            XCTAssertEqual(locked.status, 429, locked.text)
            XCTAssertNotNil(locked.headers["retry-after"])
            let other = try await submit("ghost99.\(tag)@acme.example", "guess guess", from: "198.51.100.78")
            XCTAssertEqual(other.status, 401, "another address is not locked")
        }
        try await step("2. One unknown account from many addresses: locked after 5, as a real account is") {
            for i in 0..<5 { _ = try await submit("phantom.\(tag)@acme.example", "guess", from: "192.0.2.\(100 + i)") }
            let locked = try await submit("phantom.\(tag)@acme.example", "guess", from: "192.0.2.120")
            XCTAssertEqual(locked.status, 429, locked.text)
        }
    }

    // MARK: Item 6

    func testUnauthenticatedRequestsWriteAtMostTheBudgetOfActivityRows() async throws {
        let stack = try await Fixture.shared.prepare()
        let database = try Database(conninfo: try TestEnvironment.require("ORCHARD_DATABASE_URL"), schema: "checkin_gateway", maxConnections: 1)
        let tag = UUID().uuidString.prefix(8).lowercased()
        let started = Date()
        for i in 0..<45 {
            let garbage = try await http(.POST, "\(stack.gateway)/mdm/ade/enroll", headers: [("X-Forwarded-For", "203.0.113.201")],
                                         body: Array("not a signed MachineInfo \(i)".utf8))
            XCTAssertTrue([400, 403].contains(garbage.status), garbage.text)
            let bare = try await http(.GET, "\(stack.gateway)/mdm/ade/enroll", headers: [("X-Forwarded-For", "203.0.113.201")])
            XCTAssertEqual(bare.status, 400, bare.text)
            let account = try await http(.POST, "\(stack.gateway)/mdm/account/enroll/flood-\(tag)-\(i).example",
                                         headers: [("X-Forwarded-For", "203.0.113.202")], body: Array("<plist>\(tag)</plist>".utf8))
            XCTAssertTrue([400, 403, 404].contains(account.status), account.text)
        }
        let ade = try await database.query("""
            SELECT count(*)::int AS n FROM activity_log WHERE action = 'ade.enrollment.refused' AND device_id IS NULL AND occurred_at >= $1
            """, [.timestamp(started)]).first?.int("n") ?? -1
        XCTAssertLessThanOrEqual(ade, 30, "90 unauthenticated ADE requests from one address: at most 30 rows a minute")
        XCTAssertGreaterThan(ade, 0, "but they are recorded")
        let account = try await database.query("""
            SELECT count(*)::int AS n FROM activity_log WHERE action = 'account.enrollment.refused' AND detail LIKE $1
            """, [.text("%flood-\(tag)-%")]).first?.int("n") ?? -1
        XCTAssertLessThanOrEqual(account, 30)
        XCTAssertGreaterThan(account, 0)
        await database.shutdown()
    }
}
