import AppleProtocol
import Foundation
import OrchardCrypto
import OrchardTestSupport
import XCTest

/// Activation Lock (REFERENCE §4.3, Apple's "Creating and using bypass codes"): a supervised ADE device reports its bypass
/// code; an administrator escrows it with ABM (`POST /device/activationlock`); a device that reported none gets a code
/// Orchard generates and keeps; per-serial outcomes. The escrow keys are checked against Python's hashlib, an
/// implementation independent of Orchard's.
final class ADEActivationLockTests: XCTestCase {
    /// (the code as a device shows it, its escrow key) for `hex`, by Python.
    static func python(_ hex: String?, code: String? = nil) throws -> (code: String, key: String) {
        let script = """
            import hashlib, sys
            A = "0123456789ACDEFGHJKLMNPQRTUVWXYZ"
            if sys.argv[1] != "-":
                raw = bytes.fromhex(sys.argv[1])
                n = int.from_bytes(raw, "big") << 2
                chars = [A[(n >> (5 * (25 - i))) & 31] for i in range(26)]
                code = "".join(("-" if i in (5, 10, 14, 18, 22) else "") + c for i, c in enumerate(chars))
            else:
                code = sys.argv[2]
                n = 0
                for c in code.replace("-", ""):
                    n = (n << 5) | A.index(c)
                raw = (n >> 2).to_bytes(16, "big")
            print(code, hashlib.pbkdf2_hmac("sha256", raw, b"\\0\\0\\0\\0", 50000).hex())
            """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = ["-c", script, hex ?? "-", code ?? ""]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let out = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).split(separator: " ")
        process.waitUntilExit()
        return (String(out[0]), String(out[1]).trimmingCharacters(in: .whitespacesAndNewlines))
    }

    func testBypassCodesAreEscrowedWithABMPerSerial() async throws {
        let stack = try await Fixture.shared.prepare()
        let standIn = try ABMStandIn()
        let tag = UUID().uuidString.prefix(6).uppercased()
        let consumerKey = "CK_al_\(tag)"
        let tokenID = try await uploadedToken(stack, standIn: standIn, consumerKey: consumerKey)
        let reports = try SimulatedADEDevice(udid: newUDID(), serial: "AL\(tag)", product: "iPhone17,1", osVersion: "26.0", appleCA: stack.appleCA)
        let silent = try SimulatedADEDevice(udid: newUDID(), serial: "AM\(tag)", product: "iPhone17,1", osVersion: "26.0", appleCA: stack.appleCA)
        try await standIn.control("devices", ["consumer_key": consumerKey, "devices": [
            ["serial_number": reports.serial, "model": "iPhone"], ["serial_number": silent.serial, "model": "iPhone"]]])
        _ = try await stack.admin.expect(.POST, "/abm/tokens/\(tokenID)/sync")
        _ = try await stack.admin.expect(.POST, "/abm/tokens/\(tokenID)/profiles", json: [
            "profile": ["profile_name": "AL \(tag)", "is_supervised": true], "default": true])
        var enrolled: [SimulatedDevice] = []
        for ade in [reports, silent] {
            var answer = try await ade.post("\(stack.gateway)/mdm/ade/enroll")
            _ = await eventually(timeout: 60) {
                if answer.status == 200 { return true }
                answer = (try? await ade.post("\(stack.gateway)/mdm/ade/enroll")) ?? answer
                return answer.status == 200
            }
            XCTAssertEqual(answer.status, 200, answer.text)
            let device = try SimulatedDevice.installing(answer.body, roots: [stack.profileCA], udid: ade.udid, serial: ade.serial, platform: "iOS",
                                                        productName: ade.product, osVersion: ade.osVersion).0
            try await Fixture.shared.completeEnrollment(device, supervised: true)
            enrolled.append(device)
        }
        let raw = try SecureRandom.bytes(16).map { String(format: "%02x", $0) }.joined()
        let expected = try Self.python(raw)

        try await step("1. The device answers ActivationLockBypassCode; Orchard keeps the code, sealed") {
            _ = try await stack.admin.expect(.POST, "/devices/\(reports.udid)/commands", json: ["type": "ActivationLockBypassCode"])
            let command = try unwrap(try await enrolled[0].idle())
            XCTAssertEqual(command.requestType, "ActivationLockBypassCode")
            _ = try await enrolled[0].respond(to: command, status: "Acknowledged", extra: ["ActivationLockBypassCode": .string(expected.code)])
            let codes = try await stack.admin.expect(.GET, "/devices/\(reports.udid)/activation-lock-bypass")
            XCTAssertEqual(codes["deviceCode"] as? String, expected.code)
        }

        try await step("2. Escrowed with ABM: the device's code's key; an Orchard code for the silent one; per-serial outcomes") {
            let answer = try await stack.admin.expect(.POST, "/abm/tokens/\(tokenID)/devices/activation-lock", json: [
                "serials": [reports.serial, silent.serial, "NOPE\(tag)"], "lostMessage": "Property of Acme"])
            let outcomes = try JSONSerialization.jsonObject(with: Data((answer["devices"] as? String ?? "{}").utf8)) as? [String: String] ?? [:]
            XCTAssertEqual(outcomes, [reports.serial: "SUCCESS", silent.serial: "SUCCESS", "NOPE\(tag)": "NOT_ENROLLED"])
            let locks = try unwrap(try await standInJSON(standIn, "locks?consumer_key=\(consumerKey)") as? [String: [String: Any]])
            XCTAssertEqual(locks[reports.serial]?["escrow_key"] as? String, expected.key, "the escrow key of the device's code (hashlib agrees)")
            XCTAssertEqual(locks[reports.serial]?["lost_message"] as? String, "Property of Acme")
            let codes = try await stack.admin.expect(.GET, "/devices/\(silent.udid)/activation-lock-bypass")
            let serverCode = try unwrap(codes["serverCode"] as? String)
            XCTAssertEqual(serverCode.count, 31)
            XCTAssertEqual(locks[silent.serial]?["escrow_key"] as? String, try Self.python(nil, code: serverCode).key,
                           "the silent device's escrow key is the code Orchard shows")
            let again = try await stack.admin.expect(.POST, "/abm/tokens/\(tokenID)/devices/activation-lock", json: ["serials": [reports.serial]])
            XCTAssertTrue((again["devices"] as? String ?? "").contains("DEVICE_ALREADY_LOCKED"), "\(again)")
            let log = try await stack.admin.expect(.GET, "/activity?deviceID=\(silent.udid)&limit=50")["items"] as? [[String: Any]] ?? []
            XCTAssertTrue(log.contains { $0["action"] as? String == "activation-lock.codes-read" }, "reading the codes is recorded")
        }

        try await step("3. A malformed code from the device is not kept; an unsupervised device is not escrowed") {
            _ = try await stack.admin.expect(.POST, "/devices/\(reports.udid)/commands", json: ["type": "ActivationLockBypassCode"])
            let command = try unwrap(try await enrolled[0].idle())
            _ = try await enrolled[0].respond(to: command, status: "Acknowledged", extra: ["ActivationLockBypassCode": .string("NOT-A-CODE")])
            let kept = try await stack.admin.expect(.GET, "/devices/\(reports.udid)/activation-lock-bypass")
            XCTAssertEqual(kept["deviceCode"] as? String, expected.code, "the stored code is kept")
            _ = try await stack.admin.expect(.POST, "/devices/\(silent.udid)/commands", json: ["type": "DeviceInformation"])
            let info = try unwrap(try await enrolled[1].idle())
            _ = try await enrolled[1].respond(to: info, status: "Acknowledged", extra: enrolled[1].informationAnswers(supervised: false))
            let answer = try await stack.admin.expect(.POST, "/abm/tokens/\(tokenID)/devices/activation-lock", json: ["serials": [silent.serial]])
            XCTAssertTrue((answer["devices"] as? String ?? "").contains("NOT_SUPERVISED"), "\(answer)")
        }
    }
}
