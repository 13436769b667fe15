@testable import ABMSync
import Foundation
import OrchardMessaging
import XCTest

final class ProfileValidationTests: XCTestCase {
    /// Orchard's skip keys are exactly Apple's (other/skipkeys.yaml of Apple's device-management schemas).
    func testSkipKeysAreApplesList() throws {
        let yaml = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/apple-schemas/other/skipkeys.yaml")
        let text = try String(contentsOf: yaml, encoding: .utf8)
        let keys = Set(text.split(separator: "\n").filter { $0.hasPrefix("- key: ") }.map { String($0.dropFirst(7)).trimmingCharacters(in: .whitespaces) })
        XCTAssertEqual(keys.count, 45)
        XCTAssertEqual(ProfileValidation.skipKeys, keys)
    }

    func testFillsOrchardsEndpointAndKeepsABMsRequiredKeys() throws {
        let checked = try ProfileValidation.check(Data(#"{"profile_name":" Acme ","is_supervised":true,"devices":["S1","S2"]}"#.utf8),
                                                  enrollmentURL: "https://mdm.example.com/mdm/ade/enroll")
        let sent = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(checked.json)) as? [String: Any])
        XCTAssertEqual(sent["url"] as? String, "https://mdm.example.com/mdm/ade/enroll")
        XCTAssertEqual(sent["configuration_web_url"] as? String, "https://mdm.example.com/mdm/ade/enroll")
        XCTAssertEqual(sent["profile_name"] as? String, "Acme")
        XCTAssertEqual(sent["is_mdm_removable"] as? Bool, true, "ABM's schema requires it: sent with its default")
        XCTAssertEqual(sent["org_magic"] as? String, "")
        XCTAssertNil(sent["devices"], "Orchard assigns the listed devices itself, in batches it records")
        XCTAssertEqual(checked.devices, ["S1", "S2"])
        // A given url is kept, and configuration_web_url follows it.
        let given = try ProfileValidation.check(Data(#"{"profile_name":"p","url":"https://other.example.com/ade"}"#.utf8),
                                                enrollmentURL: "https://mdm.example.com/mdm/ade/enroll")
        let sentGiven = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(given.json)) as? [String: Any])
        XCTAssertEqual(sentGiven["configuration_web_url"] as? String, "https://other.example.com/ade")
    }

    func testRefusesWhatABMWouldRefuse() {
        let refused = [
            #"{"profile_name":"p","is_mdm_removable":false}"#, #"{"profile_name":"p","is_mdm_removable":false,"is_supervised":false}"#,
            #"{"profile_name":"p","skip_setup_items":["Siri","Siri"]}"#, #"{"profile_name":"p","skip_setup_items":"Siri"}"#,
            #"{"profile_name":"p","support_email_address":"nobody"}"#, #"{"profile_name":"p","url":"ftp://x/y"}"#,
            #"{"profile_name":"p","devices":[1,2]}"#, #"{"profile_name":""}"#, #"[]"#, #"not json"#,
            #"{"profile_name":"p","await_device_configured":"yes"}"#, #"{"profile_name":"p\u0000"}"#,
        ]
        for json in refused {
            XCTAssertThrowsError(try ProfileValidation.check(Data(json.utf8), enrollmentURL: "https://x.example.com"), json) { error in
                XCTAssertEqual((error as? RequestRefused)?.httpStatus, 400, json)
            }
        }
        XCTAssertNoThrow(try ProfileValidation.check(Data(#"{"profile_name":"p","is_mdm_removable":false,"is_supervised":true}"#.utf8),
                                                     enrollmentURL: "https://x.example.com"))
        XCTAssertThrowsError(try ProfileValidation.checkMinimumOS(["iOS": "18.x"]))
        XCTAssertThrowsError(try ProfileValidation.checkMinimumOS(["watchOS": "11"]))
        XCTAssertNoThrow(try ProfileValidation.checkMinimumOS(["iOS": "18.2", "macOS": "15"]))
    }
}
