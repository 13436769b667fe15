import Foundation
import OrchardSchemas
import XCTest
@testable import CheckinGateway

/// Issue 22, apps: what an assignment takes from Apple's app metadata and what it refuses, and which iPhones can get an
/// app through Apple's managed-app declaration.
final class AppAssignmentRulesTests: XCTestCase {
    func request(_ fields: [String: Any]) throws -> AppAssignmentRequest {
        let body = fields.merging(["target": ["watch": "W1"]]) { a, _ in a }
        return try JSONDecoder().decode(AppAssignmentRequest.self, from: JSONSerialization.data(withJSONObject: body))
    }

    let paired = LookUpAppMetadata.App(adamID: "42", name: "Rounds", bundleID: "com.example.rounds", watchBundleID: "com.example.rounds.watchapp",
                                       deviceFamilies: ["iphone", "ipad", "watch"], isCustomApp: true)

    func testMetadataFillsWhatTheAdminLeftOut() throws {
        let app = try request(["adamId": "42", "contentToken": "t"]).app(metadata: paired)
        XCTAssertEqual(app.bundleID, "com.example.rounds")
        XCTAssertEqual(app.watchBundleID, "com.example.rounds.watchapp")
        XCTAssertEqual(app.watchDeployment, "paired")
        XCTAssertEqual(app.detailsFrom, "apple")
        XCTAssertEqual(app.name, "Rounds")
        let dependent = try request(["adamId": "42", "watchDeployment": "dependent"]).app(metadata: paired)
        XCTAssertEqual(dependent.watchDeployment, "dependent", "the admin's deployment stands where Apple's metadata cannot tell")
        let watchOnly = LookUpAppMetadata.App(adamID: "43", name: nil, bundleID: nil, watchBundleID: "com.example.timer.watchapp",
                                              deviceFamilies: ["watch"], isCustomApp: false)
        let standalone = try request(["adamId": "43"]).app(metadata: watchOnly)
        XCTAssertEqual(standalone.watchDeployment, "standalone")
        XCTAssertEqual(standalone.bundleID, "com.example.timer.watchapp", "a watch-only app is named by its watch bundle id")
    }

    func testWhatContradictsAppleIsRefused() throws {
        XCTAssertThrowsError(try request(["adamId": "42", "watchBundleId": "com.example.other.watchapp"]).app(metadata: paired)) { error in
            XCTAssertTrue("\(error)".contains("is not app 42's watch app: Apple's metadata says com.example.rounds.watchapp"), "\(error)")
        }
        XCTAssertThrowsError(try request(["adamId": "42", "bundleId": "com.example.other"]).app(metadata: paired))
        let phoneOnly = LookUpAppMetadata.App(adamID: "44", name: nil, bundleID: "com.example.desk", watchBundleID: nil,
                                              deviceFamilies: ["iphone", "ipad"], isCustomApp: false)
        XCTAssertThrowsError(try request(["adamId": "44"]).app(metadata: phoneOnly))
        let watchOnly = LookUpAppMetadata.App(adamID: "43", name: nil, bundleID: nil, watchBundleID: "com.example.timer.watchapp",
                                              deviceFamilies: ["watch"], isCustomApp: false)
        XCTAssertThrowsError(try request(["adamId": "43", "watchDeployment": "paired"]).app(metadata: watchOnly))
        XCTAssertThrowsError(try request(["adamId": "43", "iphoneInstall": "declaration"]).app(metadata: watchOnly))
        // Without metadata every field is the admin's, and required.
        XCTAssertThrowsError(try request(["adamId": "42", "watchDeployment": "paired", "bundleId": "com.example.rounds"]).app())
        XCTAssertNoThrow(try request(["adamId": "42", "watchDeployment": "paired", "bundleId": "com.example.rounds",
                                      "watchBundleId": "com.example.rounds.watchapp"]).app())
        XCTAssertThrowsError(try request(["adamId": "42", "iphoneInstall": "sideways"]).checkForm())
    }

    func testTheManagedAppDeclarationNeedsIOS17_2() throws {
        XCTAssertTrue(AppAssignments.osVersion("17.2", atLeast: "17.2"))
        XCTAssertTrue(AppAssignments.osVersion("18.1", atLeast: "17.2"))
        XCTAssertTrue(AppAssignments.osVersion("17.10", atLeast: "17.2"))
        XCTAssertFalse(AppAssignments.osVersion("17.1.2", atLeast: "17.2"))
        XCTAssertFalse(AppAssignments.osVersion("16.7", atLeast: "17.2"))
        let app = try request(["adamId": "42", "iphoneInstall": "declaration"]).app(metadata: paired)
        func devices(_ os: String?) -> [String: AppInstallStore.Device] {
            ["P1": .init(id: "P1", pairedWith: nil, active: true, isWatch: false, osVersion: os),
             "W1": .init(id: "W1", pairedWith: "P1", active: true, isWatch: true, osVersion: "11.0")]
        }
        XCTAssertEqual(try AppAssignments.installs(for: ["W1"], app: app, devices: devices("18.1")).map(\.role), ["iphone", "watch"])
        XCTAssertThrowsError(try AppAssignments.installs(for: ["W1"], app: app, devices: devices("17.1")))
        XCTAssertThrowsError(try AppAssignments.installs(for: ["W1"], app: app, devices: devices(nil)))
        var command = app
        command.iphoneInstall = "command"
        XCTAssertNoThrow(try AppAssignments.installs(for: ["W1"], app: command, devices: devices("16.0")))
    }
}
