import AppleProtocol
import Foundation
import OrchardCrypto
import OrchardTestSupport
import XCTest

/// Regression tests for the holes an outside probe found in the device path (hardening issue, items 1-4),
/// run against the real services.
final class HostileDeviceTests: XCTestCase {
    /// Item 1: a 52-byte binary plist whose root is a set crashed the gateway, unauthenticated.
    /// Now the body is authenticated before it is parsed, and binary plists never reach Foundation.
    func testSetPlistIsRefusedAndTheGatewayStaysUp() async throws {
        let stack = try await Fixture.shared.prepare()
        let setRoot = HostilePlists.setRoot
        for path in ["/mdm/checkin", "/mdm/server"] {
            let unsigned = try await http(.PUT, "\(stack.gateway)\(path)",
                                          headers: [("Content-Type", CheckinMessage.contentType)], body: setRoot)
            XCTAssertEqual(unsigned.status, 401, "\(path): authenticated before parsing: \(unsigned.text)")
        }
        // Signed by an enrolled device, it is parsed, and refused as malformed.
        let device = try await Fixture.shared.enrollWithExternalIdentity()
        let signed = try await device.put(device.checkInURL, body: setRoot, contentType: CheckinMessage.contentType,
                                          signer: device.identity)
        XCTAssertEqual(signed.status, 400, signed.text)
        XCTAssertTrue(signed.text.contains("sets are not accepted"), signed.text)
        let result = try await device.put(device.serverURL, body: setRoot, contentType: CommandResult.contentType,
                                          signer: device.identity)
        XCTAssertEqual(result.status, 400, result.text)

        // Item 2: a few hundred bytes standing for billions of values, from an enrolled device.
        var bomb = BinaryPlistBuilder()
        var level = bomb.add(ascii: "x")
        for _ in 0..<20 { level = bomb.add(marker: 0xAF, refs: Array(repeating: level, count: 15)) }
        let key = bomb.add(ascii: "UDID")
        let root = bomb.add(marker: 0xD1, refs: [key, level])
        let started = Date()
        let expanded = try await device.put(device.serverURL, body: bomb.document(top: root), contentType: CommandResult.contentType,
                                            signer: device.identity)
        XCTAssertEqual(expanded.status, 400, expanded.text)
        XCTAssertLessThan(Date().timeIntervalSince(started), 5)

        let health = try await http(.GET, "\(stack.gateway)/healthz")
        XCTAssertEqual(health.status, 200, "the gateway is still serving")
        let awaited = try await device.tokenUpdate().status
        XCTAssertEqual(awaited, 200)
    }

    /// XML is read by Orchard's own reader (no longer Foundation's). From an enrolled, correctly signed device:
    /// malformed or out-of-bounds XML is a 400 naming the fault on both endpoints, nothing about the device changes,
    /// and XML another library writes (no DOCTYPE, comments, a CDATA section, entities) reads as it should.
    func testHostileXMLFromAnEnrolledDeviceIsRefusedAndXMLFromOtherWritersReads() async throws {
        let stack = try await Fixture.shared.prepare()
        let device = try await Fixture.shared.enrollWithExternalIdentity()
        let head = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><plist version=\"1.0\"><dict><key>UDID</key><string>\(device.udid)</string>"
        let hostile: [(String, String)] = [
            (head + "<key>Status</key><string>Idle</string><key>X</key>" + String(repeating: "<array>", count: 40)
                + String(repeating: "</array>", count: 40) + "</dict></plist>", "nested too deeply"),
            ("<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><plist><dict><key>Status</key><string>Idle</string></dict></plist>", "is not UTF-8"),
            (head + "<key>Status</key><string>Idle</string><key>N</key><integer>18446744073709551616</integer></dict></plist>", "64 bits"),
            (head + "<key>Status</key><string><![CDATA[Idle</string></dict></plist>", "unterminated CDATA"),
            (head + "<key>Status</key><string>&idle;</string></dict></plist>", "unknown entity"),
            (head + "<key>Status</key><string>Idle</string></dict></plist><dict/>", "after the property list"),
        ]
        for (body, fault) in hostile {
            for (url, type) in [(device.checkInURL, CheckinMessage.contentType), (device.serverURL, CommandResult.contentType)] {
                let answer = try await device.put(url, body: Array(body.utf8), contentType: type, signer: device.identity)
                XCTAssertEqual(answer.status, 400, "\(url): \(body.prefix(120)): \(answer.text)")
                XCTAssertTrue(answer.text.contains(fault), "\(url): expected \(fault): \(answer.text)")
            }
        }
        // What another writer produces: no DOCTYPE, comments between elements, the topic in CDATA, an entity.
        var text = String(decoding: Plist.xml(device.tokenUpdateMessage), as: UTF8.self)
        text = text.replacingOccurrences(of: "<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n", with: "")
        text = text.replacingOccurrences(of: "<dict>", with: "<dict><!-- another writer -->")
        text = text.replacingOccurrences(of: "<string>\(device.topic)</string>", with: "<string><![CDATA[\(device.topic)]]></string>")
        text = text.replacingOccurrences(of: "<string>TokenUpdate</string>", with: "<string>Token&#x55;pdate</string>")
        XCTAssertFalse(text.contains("DOCTYPE"))
        XCTAssertTrue(text.contains("CDATA[\(device.topic)]]") && text.contains("&#x55;"), text)
        let written = try await device.put(device.checkInURL, body: Array(text.utf8), contentType: CheckinMessage.contentType,
                                           signer: device.identity)
        XCTAssertEqual(written.status, 200, written.text)
        // The device is as it was: its channel still answers, the gateway still serves.
        _ = try await device.idle()
        let health = try await http(.GET, "\(stack.gateway)/healthz")
        XCTAssertEqual(health.status, 200)
        let again = try await device.tokenUpdate().status
        XCTAssertEqual(again, 200)
    }

    /// Item 3: the identity from any enrollment link could Authenticate as an enrolled device's UDID and
    /// take it over (its commands, its bootstrap token). Now it cannot; the device keeps working.
    func testAnIdentityFromAnotherLinkCannotTakeOverAnEnrolledDevice() async throws {
        let stack = try await Fixture.shared.prepare()
        let victim = try await Fixture.shared.enrollThroughLink()
        let secret = try SecureRandom.bytes(32)
        let escrow = try await victim.checkin(victim.identifiers.merging(["MessageType": .string("SetBootstrapToken"),
                                                                          "BootstrapToken": .data(secret)]) { $1 })
        XCTAssertEqual(escrow.status, 200)
        _ = try await stack.admin.expect(.POST, "/devices/\(victim.udid)/commands", json: ["type": "DeviceLock"])

        let attacker = try await installFromNewLink(stack, udid: victim.udid)
        let takeover = try await attacker.authenticate()
        XCTAssertEqual(takeover.status, 403, takeover.text)
        XCTAssertTrue(takeover.text.contains("enrolled with another identity"), takeover.text)
        let stolen = try await attacker.checkin(attacker.identifiers.merging(["MessageType": .string("GetBootstrapToken")]) { $1 })
        XCTAssertEqual(stolen.status, 403, "the attacker's identity is not this enrollment's")
        let commands = try await attacker.put(attacker.serverURL, body: Plist.xml(attacker.identifiers.merging(["Status": .string("Idle")]) { $1 }),
                                              contentType: CommandResult.contentType, signer: attacker.identity)
        XCTAssertEqual(commands.status, 403)

        // The real device still has its enrollment, its queued command and its token.
        let lock = try await victim.idle()
        XCTAssertEqual(lock?.requestType, "DeviceLock")
        let mine = try await victim.checkin(victim.identifiers.merging(["MessageType": .string("GetBootstrapToken")]) { $1 })
        XCTAssertEqual(try Plist.parseDictionary(mine.body)["BootstrapToken"]?.data, secret)
        let view = try await stack.admin.expect(.GET, "/devices/\(victim.udid)")
        XCTAssertEqual(view["status"] as? String, "enrolled")
    }

    /// An identity serves the first enrollment it authenticated, even after that enrollment moved on to
    /// a new identity; a device that checked out re-enrolls with a new link and starts afresh.
    func testAnIdentityServesOneEnrollmentAndReEnrollmentStartsAfresh() async throws {
        let stack = try await Fixture.shared.prepare()
        let device = try await Fixture.shared.enrollThroughLink()
        let firstIdentity = device.identity
        let secret = try SecureRandom.bytes(32)
        _ = try await device.checkin(device.identifiers.merging(["MessageType": .string("SetBootstrapToken"),
                                                                 "BootstrapToken": .data(secret)]) { $1 })
        let checkout = try await device.checkin(device.identifiers.merging(["MessageType": .string("CheckOut"),
                                                                            "Topic": .string(device.topic)]) { $1 })
        XCTAssertEqual(checkout.status, 200)

        // The same device installs a profile from a new link: allowed, since it checked out.
        let again = try await installFromNewLink(stack, udid: device.udid)
        try await Fixture.shared.completeEnrollment(again, supervised: true)
        let token = try await again.checkin(again.identifiers.merging(["MessageType": .string("GetBootstrapToken")]) { $1 })
        XCTAssertNil(try Plist.parseDictionary(token.body)["BootstrapToken"], "the previous identity's escrow is not handed on")

        // The first identity cannot be used for another device, nor for its old enrollment.
        let elsewhere = try SimulatedDevice(udid: newUDID(), serial: "SERX", identity: firstIdentity, topic: device.topic,
                                            checkInURL: device.checkInURL, serverURL: device.serverURL)
        let moved = try await elsewhere.authenticate()
        XCTAssertEqual(moved.status, 403, moved.text)
        XCTAssertTrue(moved.text.contains("belongs to another enrollment"), moved.text)
        let stale = try await device.tokenUpdate()
        XCTAssertEqual(stale.status, 403, "the old identity is no longer this enrollment's")
    }

    /// Item 4: TokenUpdate checks Topic; an empty UDID is refused; a result for a command the device was
    /// never sent changes nothing.
    func testTopicEmptyUDIDAndResultsForCommandsNeverSent() async throws {
        let stack = try await Fixture.shared.prepare()
        let device = try await Fixture.shared.enrollWithExternalIdentity()
        var foreign = device.tokenUpdateMessage
        foreign["Topic"] = .string("com.apple.mgmt.External.someone-else")
        let wrongTopic = try await device.checkin(foreign)
        XCTAssertEqual(wrongTopic.status, 403, wrongTopic.text)

        var empty = device.authenticateMessage
        empty["UDID"] = .string("")
        let emptyUDID = try await device.checkin(empty)
        XCTAssertEqual(emptyUDID.status, 400, emptyUDID.text)
        var emptyResult = device.identifiers.merging(["Status": .string("Idle")]) { $1 }
        emptyResult["UDID"] = .string("")
        let emptyOnChannel = try await device.put(device.serverURL, body: Plist.xml(emptyResult), contentType: CommandResult.contentType,
                                                  signer: device.identity)
        XCTAssertEqual(emptyOnChannel.status, 400)

        // A command queued but not yet sent: acknowledging it does not finish it.
        let queued = try await stack.admin.expect(.POST, "/devices/\(device.udid)/commands", json: ["type": "DeviceInformation"])
        let uuid = try unwrap(queued["commandUUID"] as? String)
        let next = try await device.report(device.identifiers.merging(["Status": .string("Acknowledged"),
                                                                       "CommandUUID": .string(uuid)]) { $1 })
        XCTAssertEqual(next?.commandUUID, uuid, "still to be sent")
        let commands = try await stack.admin.expect(.GET, "/devices/\(device.udid)/commands")
        let row = (commands["items"] as? [[String: Any]])?.first { $0["commandUUID"] as? String == uuid }
        XCTAssertEqual(row?["status"] as? String, "sent")
        XCTAssertNil(row?["completedAt"] as? String)
    }

    /// A command result is recorded in the round trip that reads the enrollment, before the authorization is decided
    /// (`CommandQueue.recordStatement`). Another enrollment's identity acknowledging this device's command is refused,
    /// and the command stays as it was; the device's own answer then finishes it.
    func testAnotherIdentitysResultForThisDevicesCommandChangesNothing() async throws {
        let stack = try await Fixture.shared.prepare()
        let device = try await Fixture.shared.enrollWithExternalIdentity()
        let other = try await Fixture.shared.enrollWithExternalIdentity()
        _ = try await stack.admin.expect(.POST, "/devices/\(device.udid)/commands", json: ["type": "DeviceInformation"])
        _ = try await stack.admin.expect(.POST, "/devices/\(other.udid)/commands", json: ["type": "DeviceInformation"])
        let first = try await device.idle()
        let command = try unwrap(first, "the queued DeviceInformation")
        let uuid = command.commandUUID
        func stored() async throws -> [String: Any]? {
            let commands = try await stack.admin.expect(.GET, "/devices/\(device.udid)/commands")
            return (commands["items"] as? [[String: Any]])?.first { $0["commandUUID"] as? String == uuid }
        }
        let forged = device.identifiers.merging(["Status": .string("Acknowledged"), "CommandUUID": .string(uuid)]) { $1 }
            .merging(device.informationAnswers(supervised: true)) { $1 }
        for status in ["Acknowledged", "Error", "NotNow"] {
            var message = forged
            message["Status"] = .string(status)
            let refused = try await device.put(device.serverURL, body: Plist.xml(message), contentType: CommandResult.contentType,
                                               signer: other.identity)
            XCTAssertEqual(refused.status, 403, "\(status): \(refused.text)")
            let row = try await stored()
            XCTAssertEqual(row?["status"] as? String, "sent", "\(status) from another identity changed the command")
            XCTAssertNil(row?["completedAt"] as? String)
        }
        // The other device's own command channel is not disturbed either, and this device's answer counts.
        let othersFirst = try await other.idle()
        XCTAssertEqual(othersFirst?.requestType, "DeviceInformation")
        let answered = try await device.respond(to: command, status: "Acknowledged", extra: device.informationAnswers(supervised: true))
        XCTAssertNil(answered)
        let row = try await stored()
        XCTAssertEqual(row?["status"] as? String, "acknowledged")
        XCTAssertNotNil(row?["completedAt"] as? String)
        // Replayed: by the device itself (answered, nothing moves) and by the other identity (refused).
        let replayed = try await device.report(forged.merging(["Status": .string("Error")]) { $1 })
        XCTAssertNil(replayed)
        let swapped = try await device.put(device.serverURL, body: Plist.xml(forged), contentType: CommandResult.contentType,
                                           signer: other.identity)
        XCTAssertEqual(swapped.status, 403, swapped.text)
        let after = try await stored()
        XCTAssertEqual(after?["status"] as? String, "acknowledged", "a replayed result changed a finished command")
        XCTAssertEqual(after?["completedAt"] as? String, row?["completedAt"] as? String)
    }

    /// Hardening issue 18, item 4, as the attack was sent: an enrolled identity acknowledges its command with a 798-byte
    /// binary result of shared arrays that stood for 28.7 MB of XML. It is refused with 400 and nothing is stored; the
    /// command stays open for the real result; what the admin API returns stays small.
    func testASharedReferenceResultIsRefusedNotStoredAsMegabytes() async throws {
        let stack = try await Fixture.shared.prepare()
        let device = try await Fixture.shared.enrollWithExternalIdentity()
        _ = try await stack.admin.expect(.POST, "/devices/\(device.udid)/commands", json: ["type": "DeviceLock"])
        let command = try unwrap(try await device.idle(), "the queued command")
        let bomb = BinaryPlistBuilder.sharedReferenceResult(udid: device.udid, commandUUID: command.commandUUID)
        XCTAssertLessThan(bomb.count, 1024)
        for _ in 0..<3 {
            let refused = try await device.put(device.serverURL, body: bomb, contentType: CommandResult.contentType, signer: device.identity)
            XCTAssertEqual(refused.status, 400, refused.text)
            XCTAssertTrue(refused.text.contains("written out"), refused.text)
        }
        let listed = try await http(.GET, "\(stack.gateway)/admin/v1/devices/\(device.udid)/commands",
                                    headers: [("Authorization", "Bearer \(stack.admin.key)")])
        XCTAssertEqual(listed.status, 200)
        XCTAssertLessThan(listed.body.count, 64 * 1024, "no megabytes stored or returned")
        let row = try unwrap(((try JSONSerialization.jsonObject(with: Data(listed.body)) as? [String: Any])?["items"] as? [[String: Any]])?
            .first { $0["commandUUID"] as? String == command.commandUUID })
        XCTAssertEqual(row["status"] as? String, "sent", "the command waits for its real result")
        XCTAssertNil(row["result"] as? String)
        let next = try await device.respond(to: command, status: "Acknowledged")
        XCTAssertNil(next)
        let done = try await stack.admin.expect(.GET, "/devices/\(device.udid)/commands")
        let finished = try unwrap((done["items"] as? [[String: Any]])?.first { $0["commandUUID"] as? String == command.commandUUID })
        XCTAssertEqual(finished["status"] as? String, "acknowledged")
        XCTAssertTrue((finished["result"] as? String ?? "").contains(command.commandUUID), "the real result is stored as sent")
    }

    /// One identity presented for two devices at the same moment: one enrollment gets it, the other a 403, never a
    /// 5xx (the enrollment row is written with the COMMIT, so a race ends in a unique violation there, mapped to 403).
    func testOneIdentityAuthenticatingAsTwoDevicesAtOnceServesOne() async throws {
        let stack = try await Fixture.shared.prepare()
        for _ in 0..<8 {
            let first = try await installFromNewLink(stack, udid: newUDID())
            let second = try SimulatedDevice(udid: newUDID(), serial: "SERY", identity: first.identity, topic: first.topic,
                                             checkInURL: first.checkInURL, serverURL: first.serverURL)
            async let a = first.authenticate()
            async let b = second.authenticate()
            let statuses = try await [a.status, b.status].sorted()
            XCTAssertEqual(statuses, [200, 403], "one device gets the identity, the other is refused")
        }
    }

    private func installFromNewLink(_ stack: Fixture.Ready, udid: String) async throws -> SimulatedDevice {
        let link = try await stack.admin.expect(.POST, "/enrollment-links", json: ["name": "link for \(udid)", "maxUses": 1])
        let profile = try await http(.GET, try unwrap(link["url"] as? String))
        XCTAssertEqual(profile.status, 200)
        return try SimulatedDevice.installing(profile.body, roots: [stack.profileCA], udid: udid, serial: "SER\(udid.suffix(8))").0
    }
}
