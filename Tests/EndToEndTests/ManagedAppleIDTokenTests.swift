import AppleProtocol
import Foundation
import OrchardCrypto
import OrchardStorage
import OrchardTestSupport
import XCTest

/// GetToken `com.apple.maid` (REFERENCE §2, §4.7): an enrolled device asks for the Managed Apple Account access-management
/// token; the answer's TokenData is a JWT with `iss` = the ABM server's `server_uuid`, `iat`, `jti` and `service_type`,
/// whose RS256 signature `openssl dgst -verify` accepts with the ABM token's certificate.
final class ManagedAppleIDTokenTests: XCTestCase {
    func testAnEnrolledDeviceGetsAJWTSignedWithTheABMServerTokensKey() async throws {
        let stack = try await Fixture.shared.prepare()
        let standIn = try ABMStandIn()
        let tokenID = try await uploadedToken(stack, standIn: standIn, consumerKey: "CK_maid_\(UUID().uuidString.prefix(6))")
        let listed = try await stack.admin.expect(.GET, "/abm/tokens")["items"] as? [[String: Any]] ?? []
        let certificatePEM = try unwrap(listed.first { $0["id"] as? String == tokenID }?["certificatePEM"] as? String)
        let database = try Database(conninfo: try TestEnvironment.require("ORCHARD_DATABASE_URL"), schema: "abm_sync", maxConnections: 1)
        let device = try await Fixture.shared.enrollThroughLink()
        var jwt = ""

        try await step("1. GetToken com.apple.maid answers TokenData: a JWT with Apple's claims") {
            let answer = try await device.getToken(serviceType: "com.apple.maid", parameters: [:])
            XCTAssertEqual(answer.status, 200, answer.text)
            let data = try unwrap(try Plist.parseDictionary(answer.body)["TokenData"]?.data)
            jwt = String(decoding: data, as: UTF8.self)
            let parts = jwt.split(separator: ".").map(String.init)
            XCTAssertEqual(parts.count, 3)
            let header = try JSONSerialization.jsonObject(with: try unwrap(decode(parts[0]))) as? [String: Any]
            XCTAssertEqual(header?["alg"] as? String, "RS256")
            let claims = try unwrap(try JSONSerialization.jsonObject(with: try unwrap(decode(parts[1]))) as? [String: Any])
            // abm-sync asked ABM's GET /account for the server's uuid (the token had not been checked yet).
            let serverUUID = try unwrap(try await database.query("SELECT server_uuid FROM abm_tokens WHERE id = $1::uuid", [.text(tokenID)])
                .first?.string("server_uuid"), "the server's uuid from ABM's GET /account")
            XCTAssertEqual(claims["iss"] as? String, serverUUID)
            XCTAssertEqual(claims["service_type"] as? String, "com.apple.maid")
            XCTAssertNotNil(UUID(uuidString: claims["jti"] as? String ?? ""), "jti is a random UUID")
            let iat = try unwrap((claims["iat"] as? NSNumber)?.doubleValue)
            XCTAssertLessThan(abs(iat - Date().timeIntervalSince1970), 120)
            let again = try await device.getToken(serviceType: "com.apple.maid", parameters: [:])
            let second = String(decoding: try unwrap(try Plist.parseDictionary(again.body)["TokenData"]?.data), as: UTF8.self)
            XCTAssertNotEqual(second, jwt, "each token has its own jti")
        }

        try await step("2. openssl verifies the RS256 signature with the ABM token's certificate") {
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("orchard-maid-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: dir) }
            let parts = jwt.split(separator: ".").map(String.init)
            try Data(certificatePEM.utf8).write(to: dir.appendingPathComponent("cert.pem"))
            try Data("\(parts[0]).\(parts[1])".utf8).write(to: dir.appendingPathComponent("input"))
            try unwrap(decode(parts[2])).write(to: dir.appendingPathComponent("signature"))
            func openssl(_ arguments: [String]) throws -> Int32 {
                let p = Process()
                p.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
                p.arguments = arguments
                p.currentDirectoryURL = dir
                p.standardOutput = FileHandle.nullDevice
                p.standardError = FileHandle.nullDevice
                try p.run()
                p.waitUntilExit()
                return p.terminationStatus
            }
            XCTAssertEqual(try openssl(["x509", "-in", "cert.pem", "-pubkey", "-noout", "-out", "public.pem"]), 0)
            XCTAssertEqual(try openssl(["dgst", "-sha256", "-verify", "public.pem", "-signature", "signature", "input"]), 0,
                           "the signature verifies with the ABM token's public key")
        }

        try await step("3. The activity log records the token; an unenrolled device gets none") {
            let logged = try await eventually(timeout: 60) {
                let page = try await stack.admin.expect(.GET, "/activity?limit=50&action=maid-token.issued&deviceID=\(device.udid)")
                return !((page["items"] as? [[String: Any]]) ?? []).isEmpty
            }
            XCTAssertTrue(logged)
            let other = try await Fixture.shared.enrollThroughLink()
            _ = try await stack.admin.expect(.POST, "/devices/\(other.udid)/commands", json: ["type": "RemoveProfile", "identifier": other.profileIdentifier ?? ""])
            var command = try await other.idle()
            while let c = command { command = try await other.respond(to: c, status: "Acknowledged") }
            let refused = try await other.getToken(serviceType: "com.apple.maid", parameters: [:])
            XCTAssertTrue([401, 403].contains(refused.status), "an unenrolled device: \(refused.status) \(refused.text)")
        }
    }

    private func decode(_ text: String) -> Data? {
        var s = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while s.count % 4 != 0 { s += "=" }
        return Data(base64Encoded: s)
    }
}
