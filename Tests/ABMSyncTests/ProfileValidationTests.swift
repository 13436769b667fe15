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
        XCTAssertEqual(keys.count, 52)
        for added in ["UnlockWithWatch", "Multitasking", "OSShowcase", "AdditionalPrivacySettings", "SafetyAndHandling",
                      "WebContentFiltering", "Tips"] {
            XCTAssertTrue(keys.contains(added), added)
        }
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

    /// A seed-style profile as an administrator writes it, copied in part from what ABM's GET /profile answers:
    /// defined exactly as written, UnlockWithWatch (macOS 15) included; profile_uuid ignored with a warning; org_magic kept.
    func testTheSeedsProfileDefinesAsWritten() throws {
        let seed = #"""
        {
          "profile_name": "Acme corporate devices",
          "profile_uuid": "C1F123098EB5074580041E69883004C3",
          "url": "https://mdm.acme.example/mdm/ade/enroll",
          "allow_pairing": true,
          "is_supervised": true,
          "is_multi_user": false,
          "is_mandatory": true,
          "await_device_configured": true,
          "is_mdm_removable": false,
          "auto_advance_setup": false,
          "support_phone_number": "+1 555 0100",
          "support_email_address": "it@acme.example",
          "org_magic": "913FABBB-0032-4E13-9966-D6BBAC900331",
          "department": "IT",
          "language": "en",
          "region": "US",
          "skip_setup_items": ["Location", "Restore", "Android", "AppleID", "TOS", "Siri", "Diagnostics", "Biometric",
                               "Payment", "Zoom", "FileVault", "ScreenTime", "Privacy", "UnlockWithWatch", "Tips", "Multitasking"],
          "devices": ["C02ABC123DEF", "F17XYZ987654"]
        }
        """#
        let checked = try ProfileValidation.check(Data(seed.utf8), enrollmentURL: "https://fallback.example.com/mdm/ade/enroll")
        let sent = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(checked.json)) as? [String: Any])
        XCTAssertEqual(sent["org_magic"] as? String, "913FABBB-0032-4E13-9966-D6BBAC900331")
        XCTAssertNil(sent["profile_uuid"], "ABM fills it: never sent")
        XCTAssertEqual((sent["skip_setup_items"] as? [String])?.last, "Multitasking")
        XCTAssertEqual((sent["skip_setup_items"] as? [String])?.count, 16)
        XCTAssertEqual(sent["url"] as? String, "https://mdm.acme.example/mdm/ade/enroll")
        XCTAssertEqual(checked.devices, ["C02ABC123DEF", "F17XYZ987654"])
        XCTAssertEqual(checked.warnings, ["profile_uuid is filled by ABM when it defines the profile: ignored"])
    }

    /// Apple adds skip keys every year and ABM takes them first: an unknown one is sent as given, with a warning;
    /// what cannot be a skip key is refused.
    func testAnUnknownSkipKeyIsTakenWithAWarningAndAMalformedOneRefused() throws {
        let checked = try ProfileValidation.check(Data(#"{"profile_name":"p","skip_setup_items":["Siri","NextYearsPane2027"]}"#.utf8),
                                                  enrollmentURL: "https://x.example.com")
        let sent = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(checked.json)) as? [String: Any])
        XCTAssertEqual(sent["skip_setup_items"] as? [String], ["Siri", "NextYearsPane2027"])
        XCTAssertEqual(checked.warnings.count, 1)
        XCTAssertTrue(checked.warnings[0].contains("NextYearsPane2027"), "\(checked.warnings)")
        for malformed in [#"["Siri", 7]"#, #"["Siri", ""]"#, #"["Next Pane"]"#, #"["Tips","Tips"]"#, #"["9Lives"]"#, #"["Pané"]"#, #"[null]"#] {
            XCTAssertThrowsError(try ProfileValidation.check(Data(#"{"profile_name":"p","skip_setup_items":\#(malformed)}"#.utf8),
                                                             enrollmentURL: "https://x.example.com"), malformed) { error in
                XCTAssertEqual((error as? RequestRefused)?.httpStatus, 400, malformed)
            }
        }
        XCTAssertThrowsError(try ProfileValidation.check(Data(#"{"profile_name":"p","profile_uuid":7,"is_supervized":true}"#.utf8),
                                                         enrollmentURL: "https://x.example.com"), "a misspelt key is still refused")
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
