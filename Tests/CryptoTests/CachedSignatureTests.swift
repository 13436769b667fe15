import Foundation
import OrchardCrypto
import XCTest

/// `CMS.verifySignature` (the Mdm-Signature path, which reuses parsed signer certificates) must accept
/// and refuse exactly what the full `CMS.verify` does.
final class CachedSignatureTests: XCTestCase {
    let body = Array("<plist version=\"1.0\"><dict><key>MessageType</key><string>TokenUpdate</string></dict></plist>".utf8)

    func testAgreesWithFullVerificationAndReusesTheParsedCertificate() throws {
        let pki = try TestPKI()
        let cache = CertificateCache()
        for rsa in [false, true] {
            let identity = try pki.identity("device-\(rsa)", rsa: rsa)  // its chain (the intermediate) travels too
            let first = try CMS.verifySignature(try CMS.sign(body, identity: identity, detached: true), detachedContent: body, cache: cache)
            let second = try CMS.verifySignature(try CMS.sign(body, identity: identity, detached: true), detachedContent: body, cache: cache)
            XCTAssertEqual(first.sha256Fingerprint, identity.certificate.sha256Fingerprint)
            XCTAssertTrue(first === second, "the second request should reuse the parsed certificate")
        }
        XCTAssertEqual(cache.count, 3, "two leaves and the intermediate they both carry")
    }

    func testRefusesWhatFullVerificationRefuses() throws {
        let pki = try TestPKI()
        let cache = CertificateCache()
        let device = try pki.identity("device")
        let other = try pki.identity("other")
        let signature = try CMS.sign(body, identity: device, detached: true)
        _ = try CMS.verifySignature(signature, detachedContent: body, cache: cache)  // warm the cache

        XCTAssertThrowsError(try CMS.verifySignature(signature, detachedContent: body + [0x20], cache: cache), "other body")
        // A signature by another key that names the cached certificate: swap in other's signature value.
        let forged = try CMS.sign(body + [0x21], identity: device, detached: true)
        XCTAssertThrowsError(try CMS.verifySignature(forged, detachedContent: body, cache: cache), "signature over other bytes")
        // Any flipped byte in the signature must fail, whether it lands in a certificate or the signer info.
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<200 {
            var tampered = signature
            tampered[Int.random(in: 0..<tampered.count, using: &rng)] ^= UInt8.random(in: 1...255, using: &rng)
            let fast = try? CMS.verifySignature(tampered, detachedContent: body, cache: cache).sha256Fingerprint
            let full = try? CMS.verify(tampered, detachedContent: body, roots: []).signer.sha256Fingerprint
            // A flip inside a carried certificate's CA signature still verifies (by design: trust in the
            // certificate is the chain check's job, later); both paths must then name the same signer.
            // The cached path may refuse more (a carried certificate whose fields do not parse), never less.
            if let fast { XCTAssertEqual(fast, full, "the cached path accepted what the full check refuses") }
        }
        // Another device's valid signature returns that device, never the cached one.
        let theirs = try CMS.verifySignature(try CMS.sign(body, identity: other, detached: true), detachedContent: body, cache: cache)
        XCTAssertEqual(theirs.sha256Fingerprint, other.certificate.sha256Fingerprint)
    }

    func testCacheStaysWithinItsCapacity() throws {
        let pki = try TestPKI()
        let cache = CertificateCache(capacity: 10)
        for i in 0..<25 {
            let identity = try pki.identity("device-\(i)")
            let signer = try CMS.verifySignature(try CMS.sign(body, identity: identity, detached: true), detachedContent: body, cache: cache)
            XCTAssertEqual(signer.sha256Fingerprint, identity.certificate.sha256Fingerprint)
            XCTAssertLessThanOrEqual(cache.count, 10)
        }
    }

    func testGarbageAndNonDERInputAreErrors() throws {
        let cache = CertificateCache()
        for input: [UInt8] in [[], [0x30], [0x30, 0x80, 0x00, 0x00], [0x30, 0x82, 0xFF, 0xFF, 0x00], Array(repeating: 0x41, count: 4096)] {
            XCTAssertThrowsError(try CMS.verifySignature(input, detachedContent: body, cache: cache))
        }
        XCTAssertEqual(cache.count, 0)
    }

    /// An Mdm-Signature is detached: a SignedData that carries content of its own is refused when
    /// verified against the body, by both paths (OpenSSL 3.0's CMS_verify also leaked memory on
    /// inputs like these; Deploy/fuzz.sh cms replays them under LeakSanitizer).
    func testASignatureCarryingItsOwnContentIsRefusedAgainstADetachedBody() throws {
        let key = try PrivateKey.generateP256()
        let identity = try SigningIdentity(certificate: try Certificate.issue(
            subject: "/CN=attached", key: key, issuer: nil, usage: .clientIdentity,
            validity: Date().addingTimeInterval(-60)...Date().addingTimeInterval(600)), key: key)
        let body = Array("<plist><dict/></plist>".utf8)
        let attached = try CMS.sign(body, identity: identity, detached: false)
        XCTAssertThrowsError(try CMS.verifySignature(attached, detachedContent: body, cache: CertificateCache()))
        XCTAssertThrowsError(try CMS.verify(attached, detachedContent: body, roots: []))
        // The same signature, detached, verifies; the attached one verifies on its own.
        XCTAssertNoThrow(try CMS.verifySignature(try CMS.sign(body, identity: identity, detached: true), detachedContent: body,
                                                 cache: CertificateCache()))
        XCTAssertEqual(try CMS.verify(attached, roots: []).content, body)
    }

    /// The split of a SignedData into its certificates and the rest (Swift since the C shim lost its DER walk): every
    /// truncation of a real signature is refused without a crash, and agrees with the full verification.
    func testEveryTruncationIsRefusedLikeTheFullVerification() throws {
        let pki = try TestPKI()
        let cache = CertificateCache()
        let signature = try CMS.sign(body, identity: try pki.identity("device"), detached: true)
        XCTAssertNoThrow(try CMS.verifySignature(signature, detachedContent: body, cache: cache))
        for length in stride(from: 0, to: signature.count, by: 7) {
            let cut = Array(signature.prefix(length))
            XCTAssertThrowsError(try CMS.verifySignature(cut, detachedContent: body, cache: cache), "prefix of \(length) bytes")
        }
        // A length byte changed anywhere in the first 64 bytes (the headers the split reads): never a crash, and never
        // accepted when the full verification refuses it.
        for i in 0..<64 {
            for value: UInt8 in [0x00, 0x7f, 0x80, 0x81, 0x84, 0x85, 0xff] {
                var changed = signature
                changed[i] = value
                let cached = try? CMS.verifySignature(changed, detachedContent: body, cache: cache)
                let full = try? CMS.verify(changed, detachedContent: body, roots: []).signer
                XCTAssertEqual(cached?.sha256Fingerprint, full?.sha256Fingerprint, "byte \(i) = \(value)")
            }
        }
    }
}
