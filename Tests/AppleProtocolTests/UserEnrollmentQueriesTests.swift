import AppleProtocol
import Foundation
import XCTest
import Yams

/// The DeviceInformation queries refused for a User Enrollment are exactly those Apple's schema marks
/// `userenrollment: mode: forbidden`, per OS (mdm/commands/information.device.yaml).
final class UserEnrollmentQueriesTests: XCTestCase {
    func testTheForbiddenQueriesAreApplesPerOS() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/apple-schemas/mdm/commands/information.device.yaml")
        let schema = try XCTUnwrap(try Yams.load(yaml: String(contentsOf: url, encoding: .utf8)) as? [String: Any])
        let keys = try XCTUnwrap(schema["payloadkeys"] as? [[String: Any]])
        let queries = try XCTUnwrap(((keys.first { $0["key"] as? String == "Queries" }?["subkeys"] as? [[String: Any]])?.first?["subkeys"])
            as? [[String: Any]])
        var forbidden: [String: Set<String>] = [:]
        for query in queries {
            for (os, rules) in query["supportedOS"] as? [String: Any] ?? [:] {
                if ((rules as? [String: Any])?["userenrollment"] as? [String: Any])?["mode"] as? String == "forbidden" {
                    forbidden[os, default: []].insert(try XCTUnwrap(query["key"] as? String))
                }
            }
        }
        XCTAssertEqual(forbidden.keys.sorted(), ["iOS", "macOS", "visionOS"])
        XCTAssertEqual(UserEnrollmentQueries.forbidden, forbidden)
    }

    func testRefusedQueriesFollowTheDevicesOS() {
        XCTAssertEqual(UserEnrollmentQueries.os(productName: "iPhone17,2"), "iOS")
        XCTAssertEqual(UserEnrollmentQueries.os(productName: "Mac14,2"), "macOS")
        XCTAssertNil(UserEnrollmentQueries.os(productName: nil))
        // IMEI is forbidden on iOS; a Mac has none to forbid; an unknown OS gets every OS's rule.
        XCTAssertEqual(UserEnrollmentQueries.refused(["OSVersion", "IMEI", "UDID"], os: "iOS"), ["IMEI", "UDID"])
        XCTAssertEqual(UserEnrollmentQueries.refused(["OSVersion", "IMEI", "EthernetMAC"], os: "macOS"), ["EthernetMAC"])
        XCTAssertEqual(UserEnrollmentQueries.refused(["IMEI", "EthernetMAC", "OSVersion"], os: nil), ["IMEI", "EthernetMAC"])
        XCTAssertEqual(MDMCommand.userEnrollmentQueries, MDMCommand.standardQueries.filter { !["UDID", "SerialNumber", "IMEI"].contains($0) })
    }
}
