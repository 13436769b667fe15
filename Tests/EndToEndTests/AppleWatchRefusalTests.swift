import AppleProtocol
import Foundation
import OrchardCrypto
import OrchardStorage
import OrchardTestSupport
import XCTest

/// Every way watch pairing can be abused is refused, logged, and enrolls nothing.
final class AppleWatchRefusalTests: XCTestCase {
    struct Pairing {
        let phone: SimulatedDevice
        let watch: SimulatedWatch
        let url: String
    }

    /// A supervised iPhone with watch enrollment on, and a new watch.
    func pairing(supervised: Bool = true, enable: Bool = true) async throws -> Pairing {
        let stack = try await Fixture.shared.prepare()
        let phone = try await Fixture.shared.enrollThroughLink(supervised: supervised)
        if enable {
            // Keep watch enrollment on for the phones other tests turned on, too.
            let current = try await stack.admin.expect(.GET, "/watch-enrollment")
            let on = (current["phones"] as? [[String: Any]] ?? []).filter { $0["on"] as? Bool == true }.compactMap { $0["enrollmentID"] as? String }
            _ = try await stack.admin.expect(.PUT, "/watch-enrollment", json: ["mode": "selected", "enrollmentIDs": on + [phone.udid]])
            while let command = try await phone.idle() { _ = try await phone.respond(to: command, status: "Acknowledged") }
        }
        let watch = try SimulatedWatch(udid: "00008301-\(UUID().uuidString.prefix(8))R", serial: "RW\(UUID().uuidString.prefix(6))",
                                       appleCA: stack.appleCA)
        return Pairing(phone: phone, watch: watch, url: "\(stack.gateway)/mdm/watch/enroll")
    }

    func securityToken(_ p: Pairing) async throws -> String {
        let first = try await p.watch.requestProfile(p.url)
        XCTAssertEqual(first.status, 403)
        return try unwrap(try plistValue(json: first.body)["details"]?["security-token"]?.string)
    }

    func getToken(_ phone: SimulatedDevice, security: String, phoneUDID: String? = nil, watchUDID: String) async throws -> HTTPResult {
        try await phone.getToken(serviceType: "com.apple.watch.pairing",
                                 parameters: ["SecurityToken": security, "PhoneUDID": phoneUDID ?? phone.udid, "WatchUDID": watchUDID])
    }

    func assertNothingEnrolled(_ watch: SimulatedWatch, refusal action: String, file: StaticString = #filePath, line: UInt = #line) async throws {
        let stack = try await Fixture.shared.prepare()
        let device = try await stack.admin.call(.GET, "/devices/\(watch.udid)")
        XCTAssertEqual(device.status, 404, "the watch must not be enrolled", file: file, line: line)
        let logged = await eventually {
            let items = (try? await stack.admin.expect(.GET, "/activity?deviceID=\(watch.udid)&limit=200"))?["items"] as? [[String: Any]] ?? []
            return items.contains { $0["action"] as? String == action && $0["outcome"] as? String == "refused" }
        }
        XCTAssertTrue(logged, "no refused \(action) in the activity log", file: file, line: line)
    }

    func testReplayedPairingTokenAndTokenFromAnotherWatch() async throws {
        let p = try await pairing()
        let token = try await getToken(p.phone, security: try await securityToken(p), watchUDID: p.watch.udid)
        let pairingToken = try unwrap(try Plist.parseDictionary(token.body)["TokenData"]?.data)

        // Another watch presents the pairing token: refused.
        let thief = try SimulatedWatch(udid: "00008301-\(UUID().uuidString.prefix(8))T", serial: "THIEF", appleCA: try await Fixture.shared.prepare().appleCA)
        let stolen = try await thief.requestProfile(p.url, pairingToken: pairingToken)
        XCTAssertEqual(stolen.status, 403)
        try await assertNothingEnrolled(thief, refusal: "pairing-token.rejected")

        // The right watch uses it once; a replay is refused.
        let awaited1 = try await p.watch.requestProfile(p.url, pairingToken: pairingToken).status
        XCTAssertEqual(awaited1, 200)
        let replay = try await p.watch.requestProfile(p.url, pairingToken: pairingToken)
        XCTAssertEqual(replay.status, 403)
        XCTAssertTrue(replay.text.contains("already used"), replay.text)

        // A forged token (MAC broken) is refused.
        var forged = pairingToken
        forged[forged.count - 2] = forged[forged.count - 2] == 65 ? 66 : 65
        let awaited2 = try await p.watch.requestProfile(p.url, pairingToken: forged).status
        XCTAssertEqual(awaited2, 403)
    }

    func testUnknownExpiredAndDoublyUsedSecurityTokens() async throws {
        let p = try await pairing()
        let unknown = try await getToken(p.phone, security: UUID().uuidString, watchUDID: p.watch.udid)
        XCTAssertEqual(unknown.status, 403)
        XCTAssertTrue(unknown.text.contains("unknown security token"), unknown.text)

        // Expired: the token's lifetime passes (moved into the past in token-service's table).
        let security = try await securityToken(p)
        let db = try Database(conninfo: try TestEnvironment.require("ORCHARD_DATABASE_URL"), schema: "token_service", maxConnections: 1)
        try await db.query("UPDATE security_tokens SET expires_at = now() - interval '1 second' WHERE token_hash = $1",
                           [.bytes(Digest.sha256(Array(security.utf8)))])
        await db.shutdown()
        let expired = try await getToken(p.phone, security: security, watchUDID: p.watch.udid)
        XCTAssertEqual(expired.status, 403)
        XCTAssertTrue(expired.text.contains("expired"), expired.text)

        // One security token, two iPhones: the second is refused.
        let other = try await pairing()
        let fresh = try await securityToken(p)
        let awaited3 = try await getToken(p.phone, security: fresh, watchUDID: p.watch.udid).status
        XCTAssertEqual(awaited3, 200)
        // The same iPhone asking again (its answer was lost: the gateway died mid-request) is answered again.
        let retried = try await getToken(p.phone, security: fresh, watchUDID: p.watch.udid)
        XCTAssertEqual(retried.status, 200, retried.text)
        let second = try await getToken(other.phone, security: fresh, watchUDID: p.watch.udid)
        XCTAssertEqual(second.status, 403)
        XCTAssertTrue(second.text.contains("another iPhone"), second.text)

        // A security token issued to one watch cannot pair another.
        let wrongWatch = try await getToken(p.phone, security: try await securityToken(other), watchUDID: p.watch.udid)
        XCTAssertEqual(wrongWatch.status, 403)
        try await assertNothingEnrolled(p.watch, refusal: "pairing-token.refused")
    }

    func testIneligiblePhonesAndForeignPhoneUDID() async throws {
        let unsupervised = try await pairing(supervised: false)
        let fromUnsupervised = try await getToken(unsupervised.phone, security: try await securityToken(unsupervised),
                                                  watchUDID: unsupervised.watch.udid)
        XCTAssertEqual(fromUnsupervised.status, 403)
        XCTAssertTrue(fromUnsupervised.text.contains("not supervised"), fromUnsupervised.text)
        try await assertNothingEnrolled(unsupervised.watch, refusal: "pairing-token.refused")

        let notOn = try await pairing(enable: false)
        let fromNotOn = try await getToken(notOn.phone, security: try await securityToken(notOn), watchUDID: notOn.watch.udid)
        XCTAssertEqual(fromNotOn.status, 403)
        XCTAssertTrue(fromNotOn.text.contains("not turned on"), fromNotOn.text)

        let p = try await pairing()
        let impostor = try await getToken(p.phone, security: try await securityToken(p), phoneUDID: notOn.phone.udid,
                                          watchUDID: p.watch.udid)
        XCTAssertEqual(impostor.status, 403, "PhoneUDID must be the device that signed the GetToken")
        try await assertNothingEnrolled(p.watch, refusal: "pairing-token.refused")

        let settings = try await Fixture.shared.prepare().admin.expect(.GET, "/watch-enrollment")
        let report = (settings["phones"] as? [[String: Any]] ?? []).first { $0["enrollmentID"] as? String == unsupervised.phone.udid }
        XCTAssertEqual(report?["notEligibleBecause"] as? String, "not supervised")
    }

    func testMachineInfoWithBadSignatureOrUntrustedChain() async throws {
        let stack = try await Fixture.shared.prepare()
        let p = try await pairing()
        // Signed by an identity that does not chain to Apple's device CA.
        let untrusted = try await p.watch.requestProfile(p.url, signer: try stack.testCA.issueLeaf("not-apple"))
        XCTAssertEqual(untrusted.status, 403)
        // Tampered after signing.
        var signed = try p.watch.signedMachineInfo()
        let marker = Array("Watch7,3".utf8)
        let index = try XCTUnwrap(signed.firstRange(of: marker)).lowerBound
        signed[index] ^= 0x01
        let tampered = try await http(.POST, p.url, body: signed)
        XCTAssertEqual(tampered.status, 403)
        let awaited4 = try await http(.POST, p.url, body: Array("garbage".utf8)).status
        XCTAssertEqual(awaited4, 403)
        let awaited5 = try await http(.GET, p.url).status
        XCTAssertEqual(awaited5, 400, "GET without x-apple-aspen-deviceinfo")
        let logged = await eventually {
            let items = (try? await stack.admin.expect(.GET, "/activity?action=watch.machine-info.rejected&limit=50"))?["items"] as? [[String: Any]] ?? []
            return items.count >= 3
        }
        XCTAssertTrue(logged)
        let awaited6 = try await stack.admin.call(.GET, "/devices/\(p.watch.udid)").status
        XCTAssertEqual(awaited6, 404)

        // The header form works like the body.
        let header = try await http(.GET, p.url, headers: [("x-apple-aspen-deviceinfo", Data(try p.watch.signedMachineInfo()).base64EncodedString())])
        XCTAssertEqual(header.status, 403)
        XCTAssertNotNil(try plistValue(json: header.body)["details"]?["security-token"]?.string)
    }
}

extension SigningIdentity {
    /// A leaf identity issued by this CA identity.
    func issueLeaf(_ name: String) throws -> SigningIdentity {
        let key = try PrivateKey.generateP256()
        let cert = try Certificate.issue(subject: "/CN=\(name)", key: key, issuer: (certificate, self.key), usage: .clientIdentity,
                                         validity: Date().addingTimeInterval(-60)...Date().addingTimeInterval(3600))
        return try SigningIdentity(certificate: cert, key: key)
    }
}
