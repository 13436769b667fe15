import Foundation
import OrchardCrypto
import OrchardMessaging
import XCTest
@testable import TokenService

/// A pairing token's rules, without the stack: it carries its claims under token-service's MAC; any change, another
/// key, or garbage is refused as the same 403.
final class PairingTokenTests: XCTestCase {
    let key = (0..<32).map { UInt8($0) }
    let claims = PairingTokens.Claims(jti: "J1", sec: "hash-of-security-token", phone: "PHONE-UDID", watch: "WATCH-UDID", org: "org",
                                      iat: 1_800_000_000, exp: 1_800_000_300)

    func testAMintedTokenReadsBack() throws {
        let token = try PairingTokens.encode(claims, key: key)
        XCTAssertTrue(token.hasPrefix("v1."))
        let read = try PairingTokens.decode(token, key: key)
        XCTAssertEqual(read.phone, "PHONE-UDID")
        XCTAssertEqual(read.watch, "WATCH-UDID")
        XCTAssertEqual(read.jti, "J1")
    }

    func testAnythingElseIsRefusedAlike() throws {
        let token = try PairingTokens.encode(claims, key: key)
        var parts = token.split(separator: ".").map(String.init)
        let other = PairingTokens.Claims(jti: "J1", sec: "hash-of-security-token", phone: "ATTACKER", watch: "WATCH-UDID", org: "org",
                                         iat: 1_800_000_000, exp: 1_800_000_300)
        let otherBody = try PairingTokens.encode(other, key: key).split(separator: ".")[1]
        parts[1] = String(otherBody)
        let swapped = parts.joined(separator: ".")
        for bad in [swapped, try PairingTokens.encode(claims, key: [UInt8](repeating: 7, count: 32)), "v2." + token.dropFirst(3),
                    token + "A", "garbage", String(repeating: "v1.", count: 2000), ""] {
            XCTAssertThrowsError(try PairingTokens.decode(String(bad), key: key)) { error in
                XCTAssertEqual((error as? RequestRefused)?.code, "pairing-token.invalid", "\(bad.prefix(40))")
                XCTAssertEqual((error as? RequestRefused)?.httpStatus, 403)
            }
        }
    }
}
