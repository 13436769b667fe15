import OrchardCrypto
import XCTest

/// The hashes, MACs and JWS signatures Orchard does with OpenSSL since swift-crypto left the build: published vectors,
/// and signatures checked through keys rebuilt from a JWK's fields (as OIDC providers publish them).
final class JWSTests: XCTestCase {
    func testDigestsMatchPublishedVectors() {
        XCTAssertEqual(Digest.sha256(Array("abc".utf8)).hexString, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        // RFC 2202 test case 1 (HMAC-SHA1), RFC 4231 test case 1 (HMAC-SHA256).
        let key = [UInt8](repeating: 0x0b, count: 20)
        XCTAssertEqual(Digest.hmacSHA1(key: key, data: Array("Hi There".utf8)).hexString, "b617318655057264e28bc0b6fb378c8ef146be00")
        XCTAssertEqual(Digest.hmacSHA256(key: key, data: Array("Hi There".utf8)).hexString,
                       "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7")
    }

    func testES256RoundTripsThroughAJWKsCoordinates() throws {
        let key = try PrivateKey.generateP256()
        XCTAssertTrue(key.isP256)
        XCTAssertFalse(try PrivateKey.generateRSA().isP256)
        let input = Array("header.claims".utf8)
        let signature = try key.jwsSignature(input, ecdsa: true)
        XCTAssertEqual(signature.count, 64, "r||s, 32 bytes each")
        let spki = try key.publicKeyDER()
        XCTAssertEqual(spki.count, 91)
        let jwk = try PublicKey(p256X: Array(spki[27..<59]), y: Array(spki[59..<91]))
        XCTAssertTrue(jwk.isValidJWSSignature(signature, for: input, ecdsa: true))
        XCTAssertFalse(jwk.isValidJWSSignature(signature, for: Array("header.claimz".utf8), ecdsa: true))
        var flipped = signature
        flipped[40] ^= 1
        XCTAssertFalse(jwk.isValidJWSSignature(flipped, for: input, ecdsa: true))
        XCTAssertFalse(jwk.isValidJWSSignature(Array(signature.prefix(63)), for: input, ecdsa: true), "not 64 bytes")
        XCTAssertFalse(jwk.isValidJWSSignature([], for: input, ecdsa: true))
        XCTAssertFalse(try PublicKey(spki: try PrivateKey.generateP256().publicKeyDER()).isValidJWSSignature(signature, for: input, ecdsa: true),
                       "another key")
        XCTAssertThrowsError(try PublicKey(p256X: [UInt8](repeating: 1, count: 32), y: [UInt8](repeating: 2, count: 32)), "not on the curve")
    }

    func testRS256RoundTripsThroughAJWKsModulusAndExponent() throws {
        let key = try PrivateKey.generateRSA()
        XCTAssertTrue(key.isRSA)
        let input = Array("header.claims".utf8)
        let signature = try key.jwsSignature(input, ecdsa: false)
        XCTAssertEqual(signature.count, 256)
        let spki = try key.publicKeyDER()
        XCTAssertEqual(spki.count, 294)
        let n = Array(spki[33..<289]), e = Array(spki[291..<294])
        XCTAssertEqual(e, [0x01, 0x00, 0x01])
        let jwk = try PublicKey(rsaModulus: n, exponent: e)
        XCTAssertTrue(jwk.isValidJWSSignature(signature, for: input, ecdsa: false))
        // A JWK's n may carry a leading zero byte; the same key.
        XCTAssertTrue(try PublicKey(rsaModulus: [0] + n, exponent: e).isValidJWSSignature(signature, for: input, ecdsa: false))
        XCTAssertFalse(jwk.isValidJWSSignature(signature, for: Array("header.claimz".utf8), ecdsa: false))
        XCTAssertFalse(jwk.isValidJWSSignature(Array(signature.dropLast()), for: input, ecdsa: false))
        XCTAssertFalse(jwk.isValidJWSSignature(signature, for: input, ecdsa: true), "an RSA signature read as ECDSA")
        XCTAssertThrowsError(try PublicKey(rsaModulus: [0x01, 0x02], exponent: e), "too short")
    }
}
