import AppleProtocol
import Foundation
import OrchardCrypto
import OrchardTestSupport
import XCTest

/// Hostile or broken requests get the right status and a message, and change nothing stored.
final class RefusalTests: XCTestCase {
    func testForgedMissingAndForeignSignaturesAreRefusedAndChangeNothing() async throws {
        let stack = try await Fixture.shared.prepare()
        let victim = try await Fixture.shared.enrollWithExternalIdentity()
        let other = try await Fixture.shared.enrollWithExternalIdentity()
        let before = try await stack.admin.expect(.GET, "/devices/\(victim.udid)")

        var evil = victim.tokenUpdateMessage
        evil["PushMagic"] = .string("attacker-magic")
        evil["Token"] = .data([0xBA, 0xD0])

        // No signature at all.
        let unsigned = try await victim.put(victim.checkInURL, body: Plist.xml(evil), contentType: CheckinMessage.contentType, signer: nil)
        XCTAssertEqual(unsigned.status, 401, unsigned.text)
        XCTAssertTrue(unsigned.text.contains("Mdm-Signature"))

        // Signed by a key from a CA Orchard does not trust.
        let strangerKey = try PrivateKey.generateP256()
        let stranger = try SigningIdentity(certificate: try Certificate.issue(
            subject: "/CN=\(victim.udid)", key: strangerKey, issuer: nil, usage: .clientIdentity,
            validity: Date().addingTimeInterval(-60)...Date().addingTimeInterval(600)), key: strangerKey)
        let awaited10 = try await victim.checkin(evil, signWith: stranger).status
        XCTAssertEqual(awaited10, 401)

        // A signature that does not cover this body.
        let otherBody = Plist.xml(victim.authenticateMessage)
        let mismatched = try await http(.PUT, victim.checkInURL, headers: [
            ("Content-Type", CheckinMessage.contentType),
            ("Mdm-Signature", Data(try CMS.sign(otherBody, identity: victim.identity, detached: true)).base64EncodedString()),
        ], body: Plist.xml(evil))
        XCTAssertEqual(mismatched.status, 401)

        // Signed by another enrolled device's identity.
        let awaited11 = try await victim.checkin(evil, signWith: other.identity).status
        XCTAssertEqual(awaited11, 403)
        var hijack = victim.authenticateMessage
        hijack["SerialNumber"] = .string("HIJACKED")
        let awaited12 = try await victim.checkin(hijack, signWith: other.identity).status
        XCTAssertEqual(awaited12, 403,
                       "an identity bound to one enrollment cannot re-Authenticate as another")
        let commandTheft = try await other.put(victim.serverURL, body: Plist.xml(["UDID": .string(victim.udid), "Status": .string("Idle")]),
                                               contentType: CommandResult.contentType, signer: other.identity)
        XCTAssertEqual(commandTheft.status, 403, "another device cannot fetch this device's commands")

        let after = try await stack.admin.expect(.GET, "/devices/\(victim.udid)")
        XCTAssertEqual(after["serialNumber"] as? String, before["serialNumber"] as? String)
        XCTAssertEqual(after["status"] as? String, "enrolled")
        // The victim still works, with its own identity.
        let awaited13 = try await victim.tokenUpdate().status
        XCTAssertEqual(awaited13, 200)
    }

    func testMalformedOversizedAndUnknownRequests() async throws {
        let stack = try await Fixture.shared.prepare()
        let device = try await Fixture.shared.enrollWithExternalIdentity()
        let garbage = try await device.put(device.checkInURL, body: Array("<plist><dict><key>".utf8),
                                           contentType: CheckinMessage.contentType, signer: device.identity)
        XCTAssertEqual(garbage.status, 400)
        XCTAssertTrue(garbage.text.contains("malformed check-in"), garbage.text)
        let unknownType = try await device.checkin(device.identifiers.merging(["MessageType": .string("Reboot")]) { $1 })
        XCTAssertEqual(unknownType.status, 400)
        let wrongType = try await http(.PUT, device.checkInURL, headers: [("Content-Type", "text/plain")], body: Array("x".utf8))
        XCTAssertEqual(wrongType.status, 415)
        let huge = try await http(.PUT, device.checkInURL, headers: [("Content-Type", CheckinMessage.contentType)],
                                  body: [UInt8](repeating: 0x41, count: (1 << 20) + 1))
        XCTAssertEqual(huge.status, 413)
        let badResult = try await device.put(device.serverURL, body: Plist.xml(["UDID": .string(device.udid), "Status": .string("Maybe")]),
                                             contentType: CommandResult.contentType, signer: device.identity)
        XCTAssertEqual(badResult.status, 400)
        let unknownDevice = try SimulatedDevice(udid: newUDID(), serial: "X", identity: device.identity, topic: device.topic,
                                                checkInURL: device.checkInURL, serverURL: device.serverURL)
        let awaited14 = try await unknownDevice.tokenUpdate().status
        XCTAssertEqual(awaited14, 401, "TokenUpdate before Authenticate")

        let awaited15 = try await http(.GET, "\(stack.gateway)/enroll/\(String(repeating: "A", count: 43))").status
        XCTAssertEqual(awaited15, 404)
        let awaited16 = try await http(.GET, "\(stack.gateway)/enroll/short").status
        XCTAssertEqual(awaited16, 404)
        let awaited17 = try await http(.GET, "\(stack.gateway)/enroll/%27%3B%20DROP%20TABLE").status
        XCTAssertEqual(awaited17, 404)
    }

    func testAdminAPIRequiresAValidKeyWithTheRightScope() async throws {
        let stack = try await Fixture.shared.prepare()
        let awaited18 = try await http(.GET, "\(stack.gateway)/admin/v1/devices").status
        XCTAssertEqual(awaited18, 401)
        let awaited19 = try await AdminClient(baseURL: stack.gateway, key: "orchard_wrong").call(.GET, "/devices").status
        XCTAssertEqual(awaited19, 401)
        let created = try await stack.admin.expect(.POST, "/api-keys", json: ["name": "reader-\(UUID().uuidString)", "scopes": ["read"]])
        let reader = AdminClient(baseURL: stack.gateway, key: try XCTUnwrap(created["key"] as? String))
        let awaited20 = try await reader.call(.GET, "/devices").status
        XCTAssertEqual(awaited20, 200)
        let write = try await reader.call(.POST, "/enrollment-links", json: ["name": "nope"])
        XCTAssertEqual(write.status, 403)
        _ = try await stack.admin.expect(.DELETE, "/api-keys/\(try XCTUnwrap(created["id"] as? String))")
        // At once, though the key was just used (it stayed usable for up to 10 s behind a cache before).
        let revoked = try await reader.call(.GET, "/devices")
        XCTAssertEqual(revoked.status, 401, "a revoked key stops working at once")

        let bad = try await stack.admin.call(.POST, "/enrollment-links", json: ["nme": "typo"])
        XCTAssertEqual(bad.status, 400)
        let badCommand = try await stack.admin.call(.POST, "/devices/\(newUDID())/commands", json: ["type": "SelfDestruct"])
        XCTAssertEqual(badCommand.status, 400)
        let noDevice = try await stack.admin.call(.POST, "/devices/\(newUDID())/commands", json: ["type": "DeviceLock"])
        XCTAssertEqual(noDevice.status, 404)
        let notPush = try await stack.admin.call(.PUT, "/push-certificate", json: ["certificate": "junk", "privateKey": "junk"])
        XCTAssertEqual(notPush.status, 400)
    }
}

/// APNs answers: a dead token is marked invalid; throttling and server errors are retried.
final class PushTests: XCTestCase {
    func testUnregisteredTokenIsMarkedInvalidAndThrottlingIsRetried() async throws {
        let stack = try await Fixture.shared.prepare()
        let gone = try await Fixture.shared.enrollWithExternalIdentity()
        let throttled = try await Fixture.shared.enrollWithExternalIdentity()
        stack.apns.plan(token: gone.pushToken.hexString, [(410, "Unregistered")])
        stack.apns.plan(token: throttled.pushToken.hexString, [(429, "TooManyRequests"), (503, "ServiceUnavailable")])
        let before = stack.apns.pushes(to: throttled.pushToken.hexString).count

        _ = try await stack.admin.expect(.POST, "/commands", json: ["enrollmentIDs": [gone.udid, throttled.udid],
                                                                    "command": ["type": "DeviceInformation"]])
        let invalid = await eventually { (try? await stack.admin.expect(.GET, "/devices/\(gone.udid)"))?["pushTokenValid"] as? Bool == false }
        XCTAssertTrue(invalid, "410 Unregistered marks the token invalid")
        let retried = await eventually { stack.apns.pushes(to: throttled.pushToken.hexString).count >= before + 3 }
        XCTAssertTrue(retried, "429 then 503 are retried until APNs accepts")
        let awaited21 = try await stack.admin.expect(.GET, "/devices/\(throttled.udid)")["pushTokenValid"] as? Bool
        XCTAssertEqual(awaited21, true)

        // A new TokenUpdate makes the token valid again.
        let awaited22 = try await gone.tokenUpdate().status
        XCTAssertEqual(awaited22, 200)
        let awaited23 = try await stack.admin.expect(.GET, "/devices/\(gone.udid)")["pushTokenValid"] as? Bool
        XCTAssertEqual(awaited23, true)
    }

    func testPushesForOneDeviceAreCoalesced() async throws {
        let stack = try await Fixture.shared.prepare()
        let device = try await Fixture.shared.enrollWithExternalIdentity()
        // The gateway's own pushes (the enrollment's) are done: nothing outstanding.
        func settled() async -> Bool {
            let metrics = (try? await http(.GET, "\(stack.gateway)/metrics").text) ?? ""
            let line = metrics.split(separator: "\n").first { $0.hasPrefix("orchard_apns_outstanding_pushes ") }
            return line.flatMap { Double($0.split(separator: " ").last ?? "") } == 0
        }
        let quiet = await eventually(timeout: 60) { await settled() }
        XCTAssertTrue(quiet, "the enrollment's pushes were sent")
        let before = stack.apns.pushes(to: device.pushToken.hexString).count
        // Twenty commands queued at once reach the device through few pushes, not twenty.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<20 {
                group.addTask { _ = try await stack.admin.expect(.POST, "/devices/\(device.udid)/commands", json: ["type": "DeviceInformation"]) }
            }
            try await group.waitForAll()
        }
        // Every push asked for has been sent (the gateway has none outstanding), then count them.
        let sent = await eventually(timeout: 60) { await settled() && stack.apns.pushes(to: device.pushToken.hexString).count > before }
        XCTAssertTrue(sent, "the pushes were sent")
        let pushes = stack.apns.pushes(to: device.pushToken.hexString).count - before
        XCTAssertGreaterThanOrEqual(pushes, 1)
        XCTAssertLessThan(pushes, 20, "pushes were not coalesced")
    }
}
