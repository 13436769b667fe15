import AppleProtocol
import Foundation
import OrchardCrypto
import OrchardTestSupport
import XCTest

/// The `configuration_web_url` variant of ADE enrollment: Setup Assistant's web view opens Orchard's sign-in page
/// with the signed MachineInfo in `x-apple-aspen-deviceinfo`; a local account signs in; the answer is the profile.
final class ADESignInTests: XCTestCase {
    func testTheDeviceShowsTheSignInPageAndGetsItsProfileAfterASignIn() async throws {
        let stack = try await Fixture.shared.prepare()
        let standIn = try ABMStandIn()
        let consumerKey = "CK_adesign_\(UUID().uuidString.prefix(8))"
        let tag = UUID().uuidString.prefix(6).lowercased()
        let signInURL = "\(stack.gateway)/mdm/ade/sign-in"
        let tokenID = try await uploadedToken(stack, standIn: standIn, consumerKey: consumerKey)
        let device = try SimulatedADEDevice(udid: newUDID(), serial: "SI\(tag.uppercased())", product: "iPhone17,1", osVersion: "18.2",
                                            appleCA: stack.appleCA)
        for (name, disabled) in [("jane.\(tag)@acme.example", false), ("bob.\(tag)@acme.example", true), ("eve.\(tag)@acme.example", false)] {
            _ = try await stack.admin.expect(.PUT, "/ade/accounts/\(name)", json: ["password": "correct horse battery", "disabled": disabled])
        }
        let weak = try await stack.admin.call(.PUT, "/ade/accounts/weak.\(tag)", json: ["password": "short"])
        XCTAssertEqual(weak.status, 400, weak.text)

        try await standIn.control("devices", ["consumer_key": consumerKey, "devices": [["serial_number": device.serial, "model": "iPhone"]]])
        _ = try await stack.admin.expect(.POST, "/abm/tokens/\(tokenID)/sync")
        let defined = try await stack.admin.expect(.POST, "/abm/tokens/\(tokenID)/profiles", json: [
            "profile": ["profile_name": "Sign-in \(tag)", "is_supervised": true], "default": true, "signIn": true])
        let sent = try unwrap(((try await standInJSON(standIn, "profiles?consumer_key=\(consumerKey)")) as? [String: Any])?[
            try unwrap(defined["profileUUID"] as? String)] as? [String: Any])
        XCTAssertEqual(sent["configuration_web_url"] as? String, signInURL)
        XCTAssertEqual(sent["url"] as? String, "\(stack.gateway)/mdm/ade/enroll")

        var page = try await device.get(signInURL)
        _ = await eventually(timeout: 60) {
            if page.status == 200 { return true }
            page = (try? await device.get(signInURL)) ?? page
            return page.status == 200
        }
        XCTAssertEqual(page.status, 200, page.text)
        XCTAssertTrue(page.headers["content-type"]?.hasPrefix("text/html") == true)
        for needle in [#"<label for="username">"#, #"<label for="password">"#, #"type="password""#, #"name="deviceinfo""#, "lang=\"en\""] {
            XCTAssertTrue(page.text.contains(needle), "page lacks \(needle)")
        }
        let noInfo = try await http(.GET, signInURL)
        XCTAssertEqual(noInfo.status, 400)

        let deviceInfo = Data(try device.signedMachineInfo()).base64EncodedString()
        func submit(_ username: String, _ password: String, deviceInfo: String = deviceInfo) async throws -> HTTPResult {
            func encode(_ s: String) -> String { s.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "" }
            return try await http(.POST, signInURL, headers: [("Content-Type", "application/x-www-form-urlencoded")],
                                  body: Array("deviceinfo=\(encode(deviceInfo))&username=\(encode(username))&password=\(encode(password))".utf8))
        }
        let wrong = try await submit("jane.\(tag)@acme.example", "wrong password!!")
        XCTAssertEqual(wrong.status, 401)
        XCTAssertTrue(wrong.text.contains(#"role="alert""#), wrong.text)
        let unknown = try await submit("nobody.\(tag)@acme.example", "correct horse battery")
        XCTAssertEqual(unknown.status, 401)
        XCTAssertEqual(unknown.text.replacingOccurrences(of: "nobody", with: "jane"), wrong.text, "an unknown account reads as a wrong password")
        let disabled = try await submit("bob.\(tag)@acme.example", "correct horse battery")
        XCTAssertEqual(disabled.status, 401, "a disabled account cannot sign in")
        var tampered = Array(try device.signedMachineInfo())
        tampered[tampered.count / 2] ^= 0x01
        let forged = try await submit("jane.\(tag)@acme.example", "correct horse battery", deviceInfo: Data(tampered).base64EncodedString())
        XCTAssertTrue([400, 403].contains(forged.status), "a changed MachineInfo is refused: \(forged.status)")
        for _ in 0..<5 { _ = try await submit("eve.\(tag)@acme.example", "guess guess guess") }
        let locked = try await submit("eve.\(tag)@acme.example", "correct horse battery")
        XCTAssertEqual(locked.status, 429, "five failures lock the account (429, as the account-driven sign-in answers)")

        let signedIn = try await submit("Jane.\(tag)@acme.example", "correct horse battery")
        XCTAssertEqual(signedIn.status, 200, signedIn.text)
        XCTAssertEqual(signedIn.headers["content-type"], "application/x-apple-aspen-config")
        XCTAssertNotNil(try opensslVerifiedProfile(signedIn.body, ca: stack.profileCA), "openssl cms -verify accepts the profile")
        let log = try await stack.admin.expect(.GET, "/activity?deviceID=\(device.udid)&limit=100")
        let entries = log["items"] as? [[String: Any]] ?? []
        XCTAssertTrue(entries.contains { $0["action"] as? String == "ade.enrollment-profile.served" && $0["actor"] as? String == "user:jane.\(tag)@acme.example" })
        XCTAssertTrue(entries.contains { $0["action"] as? String == "ade.sign-in.failed" })
        XCTAssertFalse(entries.contains { ($0["detail"] as? String ?? "").contains("correct horse") }, "no password in the log")
    }
}
