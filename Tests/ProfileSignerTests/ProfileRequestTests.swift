import Foundation
import OrchardMessaging
import OrchardSchemas
import XCTest
@testable import ProfileSigner

/// What profile-signer refuses to build from, without the stack: each refusal a 400 naming the field.
final class ProfileRequestTests: XCTestCase {
    func request() -> BuildEnrollmentProfile {
        BuildEnrollmentProfile(subject: "00008030-001A2B3C4D5E6F70", platform: .iOS, topic: "com.apple.mgmt.External.1234",
                               serverURL: "https://mdm.example.com/mdm/server", checkInURL: "https://mdm.example.com/mdm/checkin",
                               organization: "Acme")
    }

    func testAGoodRequestPasses() throws {
        XCTAssertNoThrow(try ProfileBuilder.validate(request()))
        var byod = request()
        byod.enrollmentMode = "BYOD"
        byod.assignedManagedAppleID = "alice@byod.example.com"
        XCTAssertNoThrow(try ProfileBuilder.validate(byod))
    }

    func testEachBadFieldIsNamed() {
        var cases: [(BuildEnrollmentProfile, String)] = []
        var r = request(); r.subject = "not a udid!"; cases.append((r, "subject"))
        r = request(); r.topic = "com.example.other"; cases.append((r, "topic"))
        r = request(); r.organization = "Acme/Evil"; cases.append((r, "organization"))
        r = request(); r.serverURL = "ftp://mdm.example.com"; cases.append((r, "http(s)"))
        r = request(); r.enrollmentMode = "BYOD"; cases.append((r, "assignedManagedAppleID"))
        r = request(); r.enrollmentMode = "SOMETHING"; r.assignedManagedAppleID = "a@b.c"; cases.append((r, "enrollmentMode"))
        r = request(); r.assignedManagedAppleID = "a@b.c"; cases.append((r, "enrollmentMode"))
        r = request(); r.extraAnchors = [Data("not DER".utf8)]; cases.append((r, "extraAnchors"))
        for (bad, field) in cases {
            XCTAssertThrowsError(try ProfileBuilder.validate(bad)) { error in
                let refused = error as? RequestRefused
                XCTAssertEqual(refused?.httpStatus, 400)
                XCTAssertTrue(refused?.message.contains(field) == true, "\(field): \(refused?.message ?? "\(error)")")
            }
        }
    }
}
