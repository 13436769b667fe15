@testable import ABMSync
import Foundation
import OrchardCrypto
import XCTest

/// Apple's Apps and Books Metadata API: the developer token Orchard signs, and what it reads from Apple's answer.
final class AppMetadataTests: XCTestCase {
    func testTheDeveloperTokenIsAnES256JWTWithAppleClaims() throws {
        let key = try PrivateKey.generateP256()
        let token = try AppMetadata.developerToken(.init(key: key, keyID: "ABCDEFGHIJ", teamID: "TEAM123456"), now: Date(timeIntervalSince1970: 1_800_000_000))
        let parts = token.split(separator: ".").map(String.init)
        XCTAssertEqual(parts.count, 3)
        let header = try JSONSerialization.jsonObject(with: Data(try XCTUnwrap(fromBase64URL(parts[0])))) as? [String: Any]
        let claims = try JSONSerialization.jsonObject(with: Data(try XCTUnwrap(fromBase64URL(parts[1])))) as? [String: Any]
        XCTAssertEqual(header?["alg"] as? String, "ES256")
        XCTAssertEqual(header?["kid"] as? String, "ABCDEFGHIJ")
        XCTAssertEqual(claims?["iss"] as? String, "TEAM123456")
        XCTAssertEqual(claims?["iat"] as? Int, 1_800_000_000)
        XCTAssertEqual(claims?["exp"] as? Int, 1_800_003_600)
        let publicKey = try PublicKey(spki: try key.publicKeyDER())
        XCTAssertTrue(publicKey.isValidJWSSignature(try XCTUnwrap(fromBase64URL(parts[2])), for: Array((parts[0] + "." + parts[1]).utf8), ecdsa: true))
    }

    func testAppleAnswerIsReadForTheAskedAppsOnly() throws {
        // Shaped as Apple's "Get Metadata for Multiple Catalog Apps" example (trimmed).
        let json: [String: Any] = ["data": [
            ["id": "363556704", "type": "apps", "attributes": [
                "deviceFamilies": ["watch", "iphone", "ipad", "ipod"], "watchBundleId": "com.watch.bundle", "isB2BCustomApp": false, "name": "app2",
                "platformAttributes": ["ios": ["bundleId": "com.bundle.id", "minimumOSVersion": "12.0"]]]],
            ["id": "623592465", "type": "apps", "attributes": [
                "deviceFamilies": ["iphone", "ipad", "ipod"], "name": "app name 1", "platformAttributes": ["ios": ["bundleId": "com.bundle.id"]]]],
            ["id": "999", "type": "apps", "attributes": ["deviceFamilies": ["watch"], "watchBundleId": "not asked"]],
            ["id": "111", "type": "apps", "attributes": ["deviceFamilies": ["watch"], "watchBundleId": "has spaces in it", "name": "bad\u{0}"]],
        ]]
        let reply = AppMetadata.parse(json, asked: ["363556704", "623592465", "111", "555"])
        XCTAssertEqual(reply.missing, ["555"])
        XCTAssertEqual(reply.apps.map(\.adamID), ["363556704", "623592465", "111"])
        XCTAssertEqual(reply.apps[0].watchBundleID, "com.watch.bundle")
        XCTAssertEqual(reply.apps[0].bundleID, "com.bundle.id")
        XCTAssertEqual(reply.apps[0].deviceFamilies, ["watch", "iphone", "ipad", "ipod"])
        XCTAssertNil(reply.apps[1].watchBundleID)
        XCTAssertNil(reply.apps[2].watchBundleID, "a malformed bundle id is left out")
        XCTAssertNil(reply.apps[2].name, "a name with control characters is left out")
    }
}
