import AppleProtocol
import Foundation
import OrchardCrypto
import OrchardSchemas
import OrchardMessaging
import OrchardTestSupport
import XCTest

/// A device enrolls through an enrollment link and is managed, against the running services:
/// profile download → install → Authenticate → TokenUpdate → push → commands → declarations.
final class DeviceEnrollmentFlowTests: XCTestCase {
    func testDeviceEnrollsThroughLinkChecksInAndTakesCommands() async throws {
        let stack = try await Fixture.shared.prepare()
        let udid = newUDID()

        let url = try await step("1. The admin creates a single-use enrollment link") {
            let link = try await stack.admin.expect(.POST, "/enrollment-links", json: ["name": "Alice's iPhone", "maxUses": 1])
            let url = try XCTUnwrap(link["url"] as? String)
            XCTAssertTrue(url.hasPrefix("\(stack.gateway)/enroll/"))
            return url
        }

        let download = try await step("2. The device downloads its signed profile; openssl accepts the signature against profile-signer's CA") {
            let download = try await http(.GET, url)
            XCTAssertEqual(download.status, 200, download.text)
            XCTAssertEqual(download.headers["content-type"], "application/x-apple-aspen-config")
            let verifiedByOpenSSL = try opensslVerifiedProfile(download.body, ca: stack.profileCA)
            XCTAssertEqual(verifiedByOpenSSL?["PayloadType"]?.string, "Configuration", "openssl cms -verify rejected the profile")
            return download
        }

        let device = try await step("3. It installs the profile: the MDM payload matches Apple's schema and carries the push topic") {
            let (device, profile) = try SimulatedDevice.installing(download.body, roots: [stack.profileCA], udid: udid, serial: "F2LXTEST01")
            XCTAssertEqual(try AppleSchema.profileProblems(profile, platform: "iOS"), [])
            XCTAssertEqual(device.topic, stack.topic)
            XCTAssertEqual(device.checkInURL, "\(stack.gateway)/mdm/checkin")
            XCTAssertEqual(device.serverURL, "\(stack.gateway)/mdm/server")
            return device
        }

        try await step("4. Authenticate (it spends the link's use), then TokenUpdate: the device is enrolled, and pushed for the DeviceInformation queued for it") {
            XCTAssertEqual(AppleSchema.problems(device.authenticateMessage, try AppleSchema.load("mdm/checkin/authenticate.yaml").payloadKeys, platform: "iOS"), [])
            XCTAssertEqual(AppleSchema.problems(device.tokenUpdateMessage, try AppleSchema.load("mdm/checkin/tokenupdate.yaml").payloadKeys, platform: "iOS"), [])
            let awaited1 = try await device.authenticate().status
            XCTAssertEqual(awaited1, 200)
            let again = try await http(.GET, url)
            XCTAssertEqual(again.status, 410, "the single-use link is spent by the device that authenticated with its profile")
            let view = try await stack.admin.expect(.GET, "/devices/\(udid)")
            XCTAssertEqual(view["status"] as? String, "pending", "not enrolled before TokenUpdate")
            let awaited2 = try await device.tokenUpdate().status
            XCTAssertEqual(awaited2, 200)
            let pushed = await eventually { !stack.apns.pushes(to: device.pushToken.hexString).isEmpty }
            XCTAssertTrue(pushed, "the gateway pushed the device after its first TokenUpdate")
            let push = try XCTUnwrap(stack.apns.pushes(to: device.pushToken.hexString).first)
            XCTAssertEqual(push.topic, stack.topic)
            XCTAssertEqual(push.magic, device.pushMagic)
        }

        try await step("5. The device answers the push: DeviceInformation, then an empty queue") {
            let information = try unwrap(try await device.idle())
            XCTAssertEqual(information.requestType, "DeviceInformation")
            XCTAssertEqual(try AppleSchema.commandProblems(information, schema: "information.device", platform: "iOS"), [])
            let empty = try await device.respond(to: information, status: "Acknowledged", extra: device.informationAnswers(supervised: true))
            XCTAssertNil(empty)
            let view = try await stack.admin.expect(.GET, "/devices/\(udid)")
            XCTAssertEqual(view["status"] as? String, "enrolled")
            XCTAssertEqual(view["supervised"] as? Bool, true)
            XCTAssertEqual(view["osVersion"] as? String, "18.1")
            XCTAssertEqual(view["serialNumber"] as? String, "F2LXTEST01")
            XCTAssertEqual(view["hasUnlockToken"] as? Bool, true)
        }

        let lockUUID = try await step("6. The admin locks the device: NotNow keeps it queued until the next Idle, then Error is final") {
            let lock = try await stack.admin.expect(.POST, "/devices/\(udid)/commands", json: ["type": "DeviceLock", "message": "Call IT"])
            let lockUUID = try XCTUnwrap(lock["commandUUID"] as? String)
            var command = try unwrap(try await device.idle())
            XCTAssertEqual(command.commandUUID, lockUUID)
            let awaited3 = try await device.respond(to: command, status: "NotNow")
            XCTAssertNil(awaited3, "NotNow is not resent in the same session")
            command = try unwrap(try await device.idle(), "resent at the next Idle")
            XCTAssertEqual(command.commandUUID, lockUUID)
            _ = try await device.respond(to: command, status: "Error", extra: ["ErrorChain": .array([.dictionary([
                "ErrorCode": .integer(12029), "ErrorDomain": .string("MCMDMErrorDomain"),
                "USEnglishDescription": .string("The device is busy"), "LocalizedDescription": .string("The device is busy")])])])
            // A result sent twice changes nothing.
            _ = try await device.respond(to: command, status: "Acknowledged")
            return lockUUID
        }

        try await step("7. Erase and ClearPasscode (with the stored UnlockToken) are acknowledged; the admin sees each command's result") {
            _ = try await stack.admin.expect(.POST, "/devices/\(udid)/commands", json: ["type": "EraseDevice"])
            _ = try await stack.admin.expect(.POST, "/devices/\(udid)/commands", json: ["type": "ClearPasscode"])
            var command = try unwrap(try await device.idle())
            XCTAssertEqual(command.requestType, "EraseDevice")
            command = try unwrap(try await device.respond(to: command, status: "Acknowledged"))
            XCTAssertEqual(command.requestType, "ClearPasscode")
            XCTAssertEqual(command.parameters["UnlockToken"]?.data, device.unlockToken)
            let awaited4 = try await device.respond(to: command, status: "Acknowledged")
            XCTAssertNil(awaited4)

            let commands = try unwrap(try await stack.admin.expect(.GET, "/devices/\(udid)/commands")["items"] as? [[String: Any]])
            let byType = Dictionary(commands.map { ($0["requestType"] as? String ?? "", $0["status"] as? String ?? "") }) { a, _ in a }
            XCTAssertEqual(byType["DeviceLock"], "error")
            XCTAssertEqual(byType["EraseDevice"], "acknowledged")
            XCTAssertEqual(byType["ClearPasscode"], "acknowledged")
            XCTAssertEqual(byType["DeviceInformation"], "acknowledged")
            let lockResult = try XCTUnwrap(commands.first { $0["commandUUID"] as? String == lockUUID }?["result"] as? String)
            XCTAssertTrue(lockResult.contains("12029"), "the device's ErrorChain is kept with the result")
        }

        try await step("8. Declarations: a configuration and its activation, assigned to the device") {
            _ = try await stack.admin.expect(.PUT, "/declarations/test.config.\(udid)", json: [
                "type": "com.apple.configuration.management.test", "payload": ["Echo": "hello \(udid)"]])
            _ = try await stack.admin.expect(.PUT, "/declarations/test.activation.\(udid)", json: [
                "type": "com.apple.activation.simple", "payload": ["StandardConfigurations": ["test.config.\(udid)"]]])
            _ = try await stack.admin.expect(.PUT, "/devices/\(udid)/declarations",
                                             json: ["identifiers": ["test.config.\(udid)", "test.activation.\(udid)"]])
            let command = try unwrap(try await device.idle())
            XCTAssertEqual(command.requestType, "DeclarativeManagement")
            XCTAssertEqual(try AppleSchema.commandProblems(command, schema: "declarativemanagement", platform: "iOS"), [])
            let sentTokens = try XCTUnwrap(command.parameters["Data"]?.data)
            _ = try await device.respond(to: command, status: "Acknowledged")

            let tokens = try await device.declarativeManagement("tokens")
            XCTAssertEqual(tokens.status, 200)
            XCTAssertEqual(try plistValue(json: tokens.body)["SyncTokens"]?["DeclarationsToken"],
                           try plistValue(json: sentTokens)["SyncTokens"]?["DeclarationsToken"])
            let items = try await device.declarativeManagement("declaration-items")
            let itemsValue = try XCTUnwrap(try plistValue(json: items.body).dictionary)
            XCTAssertEqual(AppleSchema.problems(itemsValue, try AppleSchema.load("declarative/protocol/declarationitemsresponse.yaml").payloadKeys), [])
            XCTAssertEqual(itemsValue["Declarations"]?["Configurations"]?.array?.count, 1)
            let config = try await device.declarativeManagement("declaration/configuration/test.config.\(udid)")
            XCTAssertEqual(config.status, 200)
            XCTAssertEqual(try plistValue(json: config.body)["Payload"]?["Echo"]?.string, "hello \(udid)")
            let awaited5 = try await device.declarativeManagement("declaration/configuration/someone-else").status
            XCTAssertEqual(awaited5, 404)
            let report = #"{"StatusItems":{"management":{"declarations":{"configurations":[{"identifier":"test.config.\#(udid)","active":true,"valid":"valid","server-token":"x"}]}}},"Errors":[]}"#
            let awaited6 = try await device.declarativeManagement("status", data: Array(report.utf8)).status
            XCTAssertEqual(awaited6, 204)
            let assigned = try await stack.admin.expect(.GET, "/devices/\(udid)/declarations")
            XCTAssertTrue((assigned["lastStatusReport"] as? String)?.contains("test.config.\(udid)") == true)
        }

        try await step("9. The activity log tells the story, and Kafka carried the device's events") {
            let logged = await eventually {
                let items = (try? await stack.admin.expect(.GET, "/activity?deviceID=\(udid)&limit=200"))?["items"] as? [[String: Any]] ?? []
                let actions = Set(items.compactMap { $0["action"] as? String })
                return actions.isSuperset(of: ["device.authenticated", "device.enrolled", "command.queued", "command.acknowledged",
                                               "command.failed", "declarations.assigned", "declaration-status.reported"])
            }
            XCTAssertTrue(logged, "activity log misses steps")
            let events = try await collect(topic: DeviceEvent.topic, settings: try testKafkaSettings("e2e-events")) { seen in
                Set(seen.filter { $0.key == udid }.compactMap { try? MessageCodec.decode(DeviceEvent.self, from: $0).kind })
                    .isSuperset(of: [.authenticated, .enrolled, .informationUpdated, .commandCompleted, .declarationStatusReported])
            }
            let kinds = events.filter { $0.key == udid }.compactMap { try? MessageCodec.decode(DeviceEvent.self, from: $0).kind }
            XCTAssertEqual(kinds.first, .authenticated, "one device's events stay in order")
            XCTAssertTrue(Set(kinds).isSuperset(of: [.enrolled, .informationUpdated, .commandCompleted, .declarationStatusReported]), "\(kinds)")
        }
    }

    func testUnenrollAndCheckOut() async throws {
        let stack = try await Fixture.shared.prepare()
        let device = try await Fixture.shared.enrollThroughLink()
        _ = try await stack.admin.expect(.POST, "/devices/\(device.udid)/commands", json: ["type": "Unenroll"])
        let remove = try unwrap(try await device.idle())
        XCTAssertEqual(remove.requestType, "RemoveProfile")
        // Apple's RemoveProfile names the profile's top-level PayloadIdentifier (profile.remove.yaml); the MDM
        // payload's identifier is not a profile a device can remove.
        XCTAssertEqual(remove.parameters["Identifier"]?.string, try unwrap(device.profileIdentifier))
        XCTAssertNotEqual(remove.parameters["Identifier"]?.string, device.mdmPayloadIdentifier)
        _ = try await device.respond(to: remove, status: "Acknowledged")
        let awaited7 = try await stack.admin.expect(.GET, "/devices/\(device.udid)")["status"] as? String
        XCTAssertEqual(awaited7, "unenrolled")
        let checkout = try await device.checkin(device.identifiers.merging(["MessageType": .string("CheckOut"), "Topic": .string(device.topic)]) { $1 })
        XCTAssertEqual(checkout.status, 200)
        let awaited8 = try await stack.admin.expect(.GET, "/devices/\(device.udid)")["status"] as? String
        XCTAssertEqual(awaited8, "checked-out")
        let awaited9 = try await device.tokenUpdate().status
        XCTAssertEqual(awaited9, 401, "a checked-out enrollment must Authenticate again")
    }

    func testBootstrapTokenEscrowAndOtherCheckins() async throws {
        let device = try await Fixture.shared.enrollWithExternalIdentity()
        let empty = try await device.checkin(device.identifiers.merging(["MessageType": .string("GetBootstrapToken")]) { $1 })
        XCTAssertEqual(empty.status, 200)
        XCTAssertNil(try Plist.parseDictionary(empty.body)["BootstrapToken"])
        let token = try SecureRandom.bytes(48)
        let set = try await device.checkin(device.identifiers.merging(["MessageType": .string("SetBootstrapToken"),
                                                                       "BootstrapToken": .data(token)]) { $1 })
        XCTAssertEqual(set.status, 200)
        let escrowed = try await device.checkin(device.identifiers.merging(["MessageType": .string("GetBootstrapToken")]) { $1 })
        XCTAssertEqual(try Plist.parseDictionary(escrowed.body)["BootstrapToken"]?.data, token)
        let schema = try AppleSchema.load("mdm/checkin/getbootstraptoken.yaml")
        XCTAssertEqual(AppleSchema.problems(try Plist.parseDictionary(escrowed.body), schema.responseKeys), [])

        let unknown = try await device.getToken(serviceType: "com.example.nonsense", parameters: [:])
        XCTAssertEqual(unknown.status, 400, "an unknown TokenServiceType is a 400, not a 500")
        let user = try await device.checkin(device.identifiers.merging(["MessageType": .string("UserAuthenticate"),
                                                                        "UserID": .string("501")]) { $1 })
        XCTAssertEqual(user.status, 410)
    }
}
