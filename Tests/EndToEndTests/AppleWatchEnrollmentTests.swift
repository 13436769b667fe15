import AppleProtocol
import Foundation
import OrchardCrypto
import OrchardSchemas
import OrchardTestSupport
import XCTest

/// Apple Watch enrollment through a supervised iPhone (WWDC23 10039), against the running services:
/// admin → iPhone (declarations) → watch 403 + security token → iPhone GetToken → pairing token →
/// watch profile → watch Authenticate/TokenUpdate → commands to the watch.
final class AppleWatchEnrollmentTests: XCTestCase {
    func testWatchEnrollsThroughSupervisedIPhone() async throws {
        let stack = try await Fixture.shared.prepare()

        // A supervised iPhone on iOS 18, enrolled with Orchard's profile (which advertises com.apple.mdm.token).
        let phone = try await Fixture.shared.enrollThroughLink(supervised: true)

        let anchors = try await step("1. The admin turns watch enrollment on for this iPhone; the iPhone is told to synchronise declarations") {
            let anchors = String(decoding: try stack.testCA.certificate.pemRepresentation(), as: UTF8.self)
            let settings = try await stack.admin.expect(.PUT, "/watch-enrollment", json: [
                "mode": "selected", "enrollmentIDs": [phone.udid], "anchorCertificatesPEM": anchors])
            let phones = try XCTUnwrap(settings["phones"] as? [[String: Any]])
            XCTAssertEqual(phones.first { $0["enrollmentID"] as? String == phone.udid }?["on"] as? Bool, true)
            let sync = try unwrap(try await phone.idle())
            XCTAssertEqual(sync.requestType, "DeclarativeManagement")
            _ = try await phone.respond(to: sync, status: "Acknowledged")
            return anchors
        }

        let enrollmentProfileURL = try await step("2. The iPhone fetches the watch-enrollment configuration, its anchors asset and the activation") {
            let items = try plistValue(json: try await phone.declarativeManagement("declaration-items").body)
            let configurations = items["Declarations"]?["Configurations"]?.array?.compactMap { $0["Identifier"]?.string } ?? []
            XCTAssertTrue(configurations.contains("orchard.watch-enrollment"))
            let configuration = try await phone.declarativeManagement("declaration/configuration/orchard.watch-enrollment")
            XCTAssertEqual(configuration.status, 200)
            let declaration = try XCTUnwrap(try plistValue(json: configuration.body).dictionary)
            XCTAssertEqual(declaration["Type"]?.string, "com.apple.configuration.watch.enrollment")
            let payload = try XCTUnwrap(declaration["Payload"]?.dictionary)
            XCTAssertEqual(AppleSchema.problems(payload, try AppleSchema.load("declarative/declarations/configurations/watch.enrollment.yaml").payloadKeys,
                                                platform: "iOS"), [])
            let enrollmentProfileURL = try XCTUnwrap(payload["EnrollmentProfileURL"]?.string)
            XCTAssertEqual(enrollmentProfileURL, "\(stack.gateway)/mdm/watch/enroll")
            XCTAssertEqual(payload["AnchorCertificateAssetReferences"], .array([.string("orchard.watch-enrollment.anchors")]))
            let asset = try plistValue(json: try await phone.declarativeManagement("declaration/asset/orchard.watch-enrollment.anchors").body)
            XCTAssertEqual(AppleSchema.problems(try XCTUnwrap(asset["Payload"]?.dictionary),
                                                try AppleSchema.load("declarative/declarations/assets/credential.certificate.yaml").payloadKeys), [])
            let anchorURL = try XCTUnwrap(asset["Payload"]?["Reference"]?["DataURL"]?.string)
            let awaited1 = try await http(.GET, anchorURL).text
            XCTAssertEqual(awaited1, anchors)
            let activation = try plistValue(json: try await phone.declarativeManagement("declaration/activation/orchard.watch-enrollment.activation").body)
            XCTAssertEqual(AppleSchema.problems(try XCTUnwrap(activation["Payload"]?.dictionary),
                                                try AppleSchema.load("declarative/declarations/activations/simple.yaml").payloadKeys), [])
            return enrollmentProfileURL
        }

        let (watch, securityToken) = try await step("3. The watch asks for its profile without a pairing token: 403 with a security token") {
            let watch = try SimulatedWatch(udid: "00008301-\(UUID().uuidString.prefix(8))W", serial: "H4HW\(UUID().uuidString.prefix(6))",
                                           appleCA: stack.appleCA)
            let first = try await watch.requestProfile(enrollmentProfileURL)
            XCTAssertEqual(first.status, 403)
            XCTAssertEqual(first.headers["content-type"], "application/json")
            let missing = try XCTUnwrap(try plistValue(json: first.body).dictionary)
            XCTAssertEqual(AppleSchema.problems(missing, try AppleSchema.load("mdm/errors/watch.pairing.token.missing.yaml").payloadKeys), [])
            XCTAssertEqual(missing["code"]?.string, "com.apple.watch.pairing.token.missing")
            let securityToken = try XCTUnwrap(missing["details"]?["security-token"]?.string)
            XCTAssertNotNil(UUID(uuidString: securityToken))
            return (watch, securityToken)
        }

        let pairingToken = try await step("4. The iPhone exchanges it with GetToken for a pairing token") {
            let getToken: [String: PlistValue] = phone.identifiers.merging([
                "MessageType": .string("GetToken"), "TokenServiceType": .string("com.apple.watch.pairing"),
                "TokenParameters": .dictionary(["SecurityToken": .string(securityToken), "PhoneUDID": .string(phone.udid),
                                                "WatchUDID": .string(watch.udid)])]) { $1 }
            XCTAssertEqual(AppleSchema.problems(getToken, try AppleSchema.load("mdm/checkin/gettoken.yaml").payloadKeys, platform: "iOS"), [])
            let tokenResponse = try await phone.checkin(getToken)
            XCTAssertEqual(tokenResponse.status, 200, tokenResponse.text)
            let tokenPlist = try Plist.parseDictionary(tokenResponse.body)
            XCTAssertEqual(AppleSchema.problems(tokenPlist, try AppleSchema.load("mdm/checkin/gettoken.yaml").responseKeys), [])
            let pairingToken = try XCTUnwrap(tokenPlist["TokenData"]?.data)
            return pairingToken
        }

        let enrolled = try await step("5. The watch asks again with PAIRING_TOKEN and gets its signed enrollment profile") {
            let second = try await watch.requestProfile(enrollmentProfileURL, pairingToken: pairingToken)
            XCTAssertEqual(second.status, 200, second.text)
            XCTAssertEqual(second.headers["content-type"], "application/x-apple-aspen-config")
            XCTAssertNotNil(try opensslVerifiedProfile(second.body, ca: stack.profileCA), "openssl cms -verify rejected the watch profile")
            let (enrolled, profile) = try SimulatedDevice.installing(second.body, roots: [stack.profileCA], udid: watch.udid,
                                                                     serial: watch.serial, platform: "watchOS")
            XCTAssertEqual(try AppleSchema.profileProblems(profile, platform: "watchOS"), [])
            XCTAssertEqual(profile["TargetDeviceType"], .integer(2))
            return enrolled
        }

        try await step("6. The watch enrolls: Authenticate and TokenUpdate (watchOS keys only), then DeviceInformation") {
            XCTAssertEqual(AppleSchema.problems(enrolled.authenticateMessage, try AppleSchema.load("mdm/checkin/authenticate.yaml").payloadKeys,
                                                platform: "watchOS"), [])
            try await Fixture.shared.completeEnrollment(enrolled, supervised: true)
            let watchView = try await stack.admin.expect(.GET, "/devices/\(watch.udid)")
            XCTAssertEqual(watchView["status"] as? String, "enrolled")
            XCTAssertEqual(watchView["supervised"] as? Bool, true)
            XCTAssertEqual(watchView["pairedWith"] as? [String], [phone.udid])
            let awaited2 = try await stack.admin.expect(.GET, "/devices/\(phone.udid)")["pairedWith"] as? [String]
            XCTAssertEqual(awaited2, [watch.udid])
        }

        try await step("6b. Payloads to the watch as Apple's schemas allow on watchOS: Wi-Fi, a passcode policy, a restriction; the rest refused") {
            func profile(_ payloads: [[String: PlistValue]]) -> String {
                let content = payloads.enumerated().map { i, p in
                    PlistValue.dictionary(p.merging(["PayloadVersion": .integer(1), "PayloadIdentifier": .string("com.example.watch.\(i)"),
                                                     "PayloadUUID": .string(UUID().uuidString)]) { a, _ in a })
                }
                return Data(Plist.xml(["PayloadType": .string("Configuration"), "PayloadVersion": .integer(1), "PayloadIdentifier": .string("com.example.watch"),
                                       "PayloadUUID": .string(UUID().uuidString), "PayloadContent": .array(content)])).base64EncodedString()
            }
            let allowed = profile([
                ["PayloadType": .string("com.apple.wifi.managed"), "SSID_STR": .string("Office"), "EncryptionType": .string("WPA2"), "Password": .string("office-wifi")],
                ["PayloadType": .string("com.apple.mobiledevice.passwordpolicy"), "forcePIN": .bool(true), "minLength": .integer(6)],
                ["PayloadType": .string("com.apple.applicationaccess"), "allowScreenShot": .bool(false), "allowAppInstallation": .bool(false)],
            ])
            _ = try await stack.admin.expect(.POST, "/devices/\(watch.udid)/commands", json: ["type": "InstallProfile", "profile": allowed])
            let installed = try unwrap(try await enrolled.idle())
            XCTAssertEqual(installed.requestType, "InstallProfile")
            let afterInstall = try await enrolled.respond(to: installed, status: "Acknowledged")
            XCTAssertNil(afterInstall)
            let before = (try await stack.admin.expect(.GET, "/devices/\(watch.udid)/commands")["items"] as? [[String: Any]] ?? []).count
            for (payload, rule) in [(["PayloadType": PlistValue.string("com.apple.webClip.managed"), "URL": .string("https://example.com")],
                                     "com.apple.webClip.managed is not available on watchOS"),
                                    (["PayloadType": .string("com.apple.mobiledevice.passwordpolicy"), "requireAlphanumeric": .bool(true)],
                                     "com.apple.mobiledevice.passwordpolicy.requireAlphanumeric is not available on watchOS")] {
                let refused = try await stack.admin.call(.POST, "/devices/\(watch.udid)/commands", json: ["type": "InstallProfile", "profile": profile([payload])])
                XCTAssertEqual(refused.status, 400, refused.text)
                XCTAssertTrue(refused.text.contains(rule), refused.text)
            }
            // The watch reports it is not supervised: a restriction Apple's schema marks supervised is refused.
            _ = try await stack.admin.expect(.POST, "/devices/\(watch.udid)/commands", json: ["type": "DeviceInformation"])
            let info = try unwrap(try await enrolled.idle())
            let afterInfo = try await enrolled.respond(to: info, status: "Acknowledged", extra: enrolled.informationAnswers(supervised: false))
            XCTAssertNil(afterInfo)
            let supervisedOnly = try await stack.admin.call(.POST, "/devices/\(watch.udid)/commands", json: [
                "type": "InstallProfile", "profile": profile([["PayloadType": .string("com.apple.applicationaccess"), "allowAppInstallation": .bool(false)]])])
            XCTAssertEqual(supervisedOnly.status, 400, supervisedOnly.text)
            XCTAssertTrue(supervisedOnly.text.contains("allowAppInstallation needs a supervised watch"), supervisedOnly.text)
            // A declaration Apple's schema does not offer on watchOS, and one it offers to supervised watches only.
            let tag = UUID().uuidString.prefix(6).lowercased()
            let app = try await stack.admin.call(.PUT, "/declarations/com.example.watch.app.\(tag)", json: [
                "type": "com.apple.configuration.app.managed", "payload": ["AppStoreID": "361309726", "InstallBehavior": ["License": ["Assignment": "Device"]]]])
            XCTAssertEqual(app.status, 204, app.text)
            let appAssigned = try await stack.admin.call(.PUT, "/devices/\(watch.udid)/declarations", json: ["identifiers": ["com.example.watch.app.\(tag)"]])
            XCTAssertEqual(appAssigned.status, 400, appAssigned.text)
            XCTAssertTrue(appAssigned.text.contains("not available on watchOS"), appAssigned.text)
            let declared = try await stack.admin.call(.PUT, "/declarations/com.example.watch.passcode.\(tag)", json: [
                "type": "com.apple.configuration.passcode.settings", "payload": ["RequirePasscode": true, "MinimumLength": 6]])
            XCTAssertEqual(declared.status, 204, declared.text)
            let assigned = try await stack.admin.call(.PUT, "/devices/\(watch.udid)/declarations", json: ["identifiers": ["com.example.watch.passcode.\(tag)"]])
            XCTAssertEqual(assigned.status, 400, assigned.text)
            XCTAssertTrue(assigned.text.contains("needs a supervised watch"), assigned.text)
            let after = (try await stack.admin.expect(.GET, "/devices/\(watch.udid)/commands")["items"] as? [[String: Any]] ?? []).count
            XCTAssertEqual(after, before + 1, "only the DeviceInformation was queued")
            // What the watch has installed: its ProfileList answer, shown by the admin API.
            _ = try await stack.admin.expect(.POST, "/devices/\(watch.udid)/commands", json: ["type": "ProfileList"])
            let list = try unwrap(try await enrolled.idle())
            XCTAssertEqual(list.requestType, "ProfileList")
            XCTAssertEqual(try AppleSchema.commandProblems(list, schema: "profile.list", platform: "watchOS"), [])
            let answered = try await enrolled.respond(to: list, status: "Acknowledged", extra: ["ProfileList": .array([
                .dictionary(["PayloadIdentifier": .string("com.example.watch"), "PayloadUUID": .string(UUID().uuidString), "PayloadVersion": .integer(1),
                             "PayloadDisplayName": .string("Office Wi-Fi"), "IsManaged": .bool(true),
                             "PayloadContent": .array([.dictionary(["PayloadType": .string("com.apple.wifi.managed")]),
                                                       .dictionary(["PayloadType": .string("com.apple.mobiledevice.passwordpolicy")])])]),
            ])])
            XCTAssertNil(answered)
            let installedView = try await stack.admin.expect(.GET, "/devices/\(watch.udid)/profiles")
            let items = installedView["items"] as? [[String: Any]] ?? []
            XCTAssertEqual(items.first?["identifier"] as? String, "com.example.watch")
            XCTAssertEqual(items.first?["payloadTypes"] as? [String], ["com.apple.wifi.managed", "com.apple.mobiledevice.passwordpolicy"])
            XCTAssertNotNil(installedView["reportedAt"] as? String)
            // Supervised again, as the watch is.
            _ = try await stack.admin.expect(.POST, "/devices/\(watch.udid)/commands", json: ["type": "DeviceInformation"])
            let again = try unwrap(try await enrolled.idle())
            let afterAgain = try await enrolled.respond(to: again, status: "Acknowledged", extra: enrolled.informationAnswers(supervised: true))
            XCTAssertNil(afterAgain)
            // The supervised watch takes the passcode declaration (with the activation that names it), as Apple's schema
            // allows on watchOS 10; a key watchOS lacks is refused, naming it.
            _ = try await stack.admin.expect(.PUT, "/declarations/com.example.watch.activation.\(tag)", json: [
                "type": "com.apple.activation.simple", "payload": ["StandardConfigurations": ["com.example.watch.passcode.\(tag)"]]])
            _ = try await stack.admin.expect(.PUT, "/devices/\(watch.udid)/declarations", json: [
                "identifiers": ["com.example.watch.passcode.\(tag)", "com.example.watch.activation.\(tag)"]])
            let sync = try unwrap(try await enrolled.idle())
            XCTAssertEqual(sync.requestType, "DeclarativeManagement")
            XCTAssertEqual(try AppleSchema.commandProblems(sync, schema: "declarativemanagement", platform: "watchOS"), [])
            let afterSync = try await enrolled.respond(to: sync, status: "Acknowledged")
            XCTAssertNil(afterSync)
            let passcode = try unwrap(try plistValue(json: try await enrolled.declarativeManagement(
                "declaration/configuration/com.example.watch.passcode.\(tag)").body).dictionary)
            XCTAssertEqual(passcode["Type"]?.string, "com.apple.configuration.passcode.settings")
            XCTAssertEqual(AppleSchema.problems(try unwrap(passcode["Payload"]?.dictionary),
                                                try AppleSchema.load("declarative/declarations/configurations/passcode.settings.yaml").payloadKeys,
                                                platform: "watchOS"), [])
            let regex = try await stack.admin.call(.PUT, "/declarations/com.example.watch.passcode.\(tag)", json: [
                "type": "com.apple.configuration.passcode.settings", "payload": ["RequirePasscode": true, "CustomRegex": ["Regex": "^[0-9]+$"]]])
            XCTAssertEqual(regex.status, 400, regex.text)
            XCTAssertTrue(regex.text.contains("CustomRegex is not available on watchOS"), regex.text)
            let kept = try unwrap(try plistValue(json: try await enrolled.declarativeManagement(
                "declaration/configuration/com.example.watch.passcode.\(tag)").body)["Payload"]?.dictionary)
            XCTAssertNil(kept["CustomRegex"], "nothing was changed")
        }

        try await step("7. The admin locks the watch, clears its passcode, erases it and unenrolls it") {
            for (type, schema) in [("DeviceLock", "device.lock"), ("ClearPasscode", "passcode.clear"), ("EraseDevice", "device.erase"),
                                   ("Unenroll", "profile.remove")] {
                _ = try await stack.admin.expect(.POST, "/devices/\(watch.udid)/commands", json: ["type": type])
                let command = try unwrap(try await enrolled.idle(), type)
                XCTAssertEqual(try AppleSchema.commandProblems(command, schema: schema, platform: "watchOS"), [], type)
                if type == "ClearPasscode" { XCTAssertEqual(command.parameters["UnlockToken"]?.data, enrolled.unlockToken) }
                let rest = try await enrolled.respond(to: command, status: "Acknowledged")
                XCTAssertNil(rest)
            }
            let awaited3 = try await stack.admin.expect(.GET, "/devices/\(watch.udid)")["status"] as? String
            XCTAssertEqual(awaited3, "unenrolled")
        }

        try await step("8. Every step is in the activity log") {
            let steps = ["security-token.issued", "pairing-token.issued", "pairing-token.redeemed", "profile.signed",
                         "watch.enrollment-profile.served", "watch.authenticated", "watch.enrolled", "command.acknowledged", "device.unenrolled"]
            var seen: Set<String> = []
            let complete = await eventually {
                let items = (try? await stack.admin.expect(.GET, "/activity?deviceID=\(watch.udid)&limit=500"))?["items"] as? [[String: Any]] ?? []
                seen = Set(items.compactMap { $0["action"] as? String })
                return seen.isSuperset(of: steps)
            }
            XCTAssertTrue(complete, "missing: \(Set(steps).subtracting(seen))")

            // The iPhone's log shows the watch's steps it took part in (as the related device), and a search
            // by part of an identifier finds nothing.
            let phoneItems = try await stack.admin.expect(.GET, "/activity?deviceID=\(phone.udid)&limit=500")["items"] as? [[String: Any]] ?? []
            let aboutWatch = phoneItems.filter { $0["deviceID"] as? String == watch.udid }
            XCTAssertTrue(aboutWatch.contains { $0["action"] as? String == "watch.enrollment-profile.served" }, "\(aboutWatch)")
            XCTAssertTrue(aboutWatch.allSatisfy { ($0["relatedDeviceIDs"] as? [String] ?? []).contains(phone.udid) })
            let partial = try await stack.admin.expect(.GET, "/activity?deviceID=\(watch.udid.dropLast(3))&limit=10")["items"] as? [[String: Any]]
            XCTAssertEqual(partial?.count, 0)
        }
    }
}
