import AppleProtocol
import Foundation
import XCTest
import Yams

/// The watchOS rules are exactly what Apple's schemas say (`supportedOS.watchOS`), read here from the schema files.
final class WatchOSRulesTests: XCTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/apple-schemas")

    private func yaml(_ url: URL) throws -> [String: Any] {
        try XCTUnwrap(try Yams.load(yaml: String(contentsOf: url, encoding: .utf8)) as? [String: Any])
    }

    private func watch(_ supported: Any?) -> [String: Any]? { (supported as? [String: Any])?["watchOS"] as? [String: Any] }

    func testTheTablesAreApplesSchemas() throws {
        var payloads: [String: Bool] = [:], unavailable: [String: Set<String>] = [:], supervised: [String: Set<String>] = [:]
        let profiles = Self.root.appendingPathComponent("mdm/profiles")
        for name in try FileManager.default.contentsOfDirectory(atPath: profiles.path) where name.hasSuffix(".yaml") {
            let url = profiles.appendingPathComponent(name)
            // Yams cannot follow a schema that refers to itself (an alias inside its own anchor); such a schema must say
            // in its header, before any key, that watchOS does not have the payload.
            guard let schema = (try? Yams.load(yaml: String(contentsOf: url, encoding: .utf8))) as? [String: Any] else {
                let text = try String(contentsOf: url, encoding: .utf8)
                let header = String(text[..<(text.range(of: "payloadkeys:")?.lowerBound ?? text.endIndex)])
                XCTAssertTrue(header.contains("watchOS:\n      introduced: n/a"), "\(name): unreadable, and not n/a on watchOS")
                continue
            }
            let payload = schema["payload"] as? [String: Any] ?? [:]
            guard let type = payload["payloadtype"] as? String, !["TopLevel", "CommonPayloadKeys"].contains(type),
                  let os = watch(payload["supportedOS"]), os["introduced"] as? String != "n/a" else { continue }
            payloads[type] = os["supervised"] as? Bool ?? false
            for key in schema["payloadkeys"] as? [[String: Any]] ?? [] {
                guard let name = key["key"] as? String, let keyOS = watch(key["supportedOS"]) else { continue }
                if keyOS["introduced"] as? String == "n/a" { unavailable[type, default: []].insert(name) }
                if keyOS["supervised"] as? Bool == true { supervised[type, default: []].insert(name) }
            }
        }
        XCTAssertGreaterThan(payloads.count, 10)
        XCTAssertEqual(WatchOSRules.payloads, payloads)
        XCTAssertEqual(WatchOSRules.unavailableKeys, unavailable)
        XCTAssertEqual(WatchOSRules.supervisedKeys, supervised)

        var declarations: [String: Bool] = [:], declarationKeys: [String: Set<String>] = [:]
        let root = Self.root.appendingPathComponent("declarative/declarations")
        for case let url as URL in FileManager.default.enumerator(at: root, includingPropertiesForKeys: nil)! where url.pathExtension == "yaml" {
            let schema = try yaml(url)
            let payload = schema["payload"] as? [String: Any] ?? [:]
            guard let type = payload["declarationtype"] as? String, type != "any", let os = watch(payload["supportedOS"]),
                  os["introduced"] as? String != "n/a" else { continue }
            // A declaration's schema says which enrollments may have it; one only supervised (and local) ones may needs supervision.
            let enrollments = os["allowed-enrollments"] as? [String] ?? []
            declarations[type] = !enrollments.isEmpty && !enrollments.contains("device") && !enrollments.contains("user")
            for key in schema["payloadkeys"] as? [[String: Any]] ?? [] {
                guard let name = key["key"] as? String, let keyOS = watch(key["supportedOS"]), keyOS["introduced"] as? String == "n/a" else { continue }
                declarationKeys[type, default: []].insert(name)
            }
        }
        XCTAssertGreaterThan(declarations.count, 10, "every declaration schema is in the fixtures")
        XCTAssertEqual(WatchOSRules.declarations, declarations)
        XCTAssertEqual(WatchOSRules.declarationUnavailableKeys, declarationKeys)
    }

    func testProblemsNameTheRule() {
        func profile(_ payloads: [[String: PlistValue]]) -> [String: PlistValue] {
            ["PayloadType": .string("Configuration"), "PayloadContent": .array(payloads.map(PlistValue.dictionary))]
        }
        let wifi = profile([["PayloadType": .string("com.apple.wifi.managed"), "SSID_STR": .string("Office")]])
        XCTAssertEqual(WatchOSRules.problems(profile: wifi, supervised: false), [])
        let webClip = profile([["PayloadType": .string("com.apple.webClip.managed")]])
        XCTAssertEqual(WatchOSRules.problems(profile: webClip, supervised: true),
                       ["com.apple.webClip.managed is not available on watchOS (Apple's schema: supportedOS.watchOS n/a)"])
        let restriction = profile([["PayloadType": .string("com.apple.applicationaccess"), "allowAppInstallation": .bool(false),
                                    "allowScreenShot": .bool(false)]])
        XCTAssertEqual(WatchOSRules.problems(profile: restriction, supervised: true), [])
        XCTAssertEqual(WatchOSRules.problems(profile: restriction, supervised: false),
                       ["com.apple.applicationaccess.allowAppInstallation needs a supervised watch"])
        XCTAssertNil(WatchOSRules.declarationProblem(type: "com.apple.configuration.passcode.settings", supervised: true))
        XCTAssertEqual(WatchOSRules.declarationProblem(type: "com.apple.configuration.passcode.settings", supervised: false),
                       "com.apple.configuration.passcode.settings needs a supervised watch (Apple's schema: allowed-enrollments supervised)")
        XCTAssertEqual(WatchOSRules.declarationProblem(type: "com.apple.configuration.app.managed", supervised: true),
                       "com.apple.configuration.app.managed is not available on watchOS (Apple's schema: supportedOS.watchOS n/a)")
        XCTAssertEqual(WatchOSRules.declarationProblems(type: "com.apple.configuration.passcode.settings",
                                                        payloadKeys: ["RequirePasscode", "CustomRegex"], supervised: true),
                       ["com.apple.configuration.passcode.settings.CustomRegex is not available on watchOS (Apple's schema)"])
        XCTAssertNil(WatchOSRules.declarationProblem(type: "com.apple.activation.simple", supervised: false))
    }
}
