import Foundation
import OrchardCrypto
import XCTest

final class CertificateTests: XCTestCase {
    func testChainVerificationThroughIntermediate() throws {
        let pki = try TestPKI()
        let leaf = try pki.identity("watch").certificate
        XCTAssertNoThrow(try leaf.verify(roots: [pki.root], intermediates: [pki.intermediate]))
        XCTAssertThrowsError(try leaf.verify(roots: [pki.root]), "the intermediate is needed to build the chain")
        XCTAssertThrowsError(try leaf.verify(roots: [try TestPKI(name: "Other").root], intermediates: [pki.intermediate]))
        XCTAssertThrowsError(try leaf.verify(roots: [pki.root], intermediates: [pki.intermediate],
                                             at: Date().addingTimeInterval(86400 * 365)), "expired at that time")
    }

    func testParsedFields() throws {
        let pki = try TestPKI()
        let leaf = try pki.identity("00008030-001A2B3C4D5E6F70").certificate
        XCTAssertEqual(leaf.subjectValue("CN"), "00008030-001A2B3C4D5E6F70")
        XCTAssertEqual(leaf.subjectValue("O"), "Orchard Tests")
        XCTAssertTrue(leaf.subject.contains("CN=00008030-001A2B3C4D5E6F70"), leaf.subject)
        XCTAssertTrue(leaf.issuer.contains("Orchard Test Intermediate"), leaf.issuer)
        XCTAssertFalse(leaf.isCA)
        XCTAssertTrue(pki.root.isCA)
        XCTAssertEqual(leaf.sha256Fingerprint.count, 64)
        XCTAssertLessThan(leaf.notBefore, Date())
        XCTAssertGreaterThan(leaf.notAfter, Date())
    }

    func testPEMAndDERRoundTrips() throws {
        let pki = try TestPKI()
        let identity = try pki.identity("roundtrip", rsa: true)
        let bundle = try identity.certificate.pemRepresentation() + pki.intermediate.pemRepresentation()
        let parsed = try Certificate.parsePEM(bundle)
        XCTAssertEqual(parsed.map(\.der), [identity.certificate.der, pki.intermediate.der])
        XCTAssertEqual(try Certificate(der: identity.certificate.der).serialNumberHex, identity.certificate.serialNumberHex)
        let key = try PrivateKey(pem: try identity.key.pemRepresentation())
        XCTAssertTrue(key.matches(identity.certificate))
        XCTAssertTrue(try PrivateKey(der: try identity.key.derRepresentation()).matches(identity.certificate))
        XCTAssertFalse(try PrivateKey.generateP256().matches(identity.certificate))
    }

    func testMalformedInputsAreErrors() {
        XCTAssertThrowsError(try Certificate(der: []))
        XCTAssertThrowsError(try Certificate(der: [0x30, 0x03, 0x02, 0x01, 0x01]))
        XCTAssertThrowsError(try Certificate.parsePEM(Array("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".utf8)))
        XCTAssertThrowsError(try PrivateKey(pem: Array("not a key".utf8)))
        XCTAssertThrowsError(try PrivateKey(der: [1, 2, 3]))
    }

    func testSigningIdentityRefusesMismatchedKey() throws {
        let pki = try TestPKI()
        let cert = try pki.identity("a").certificate
        XCTAssertThrowsError(try SigningIdentity(certificate: cert, key: try PrivateKey.generateP256()))
    }

    func testPKCS12RoundTripAndOpenSSLReadsIt() throws {
        let pki = try TestPKI()
        let identity = try pki.identity("device-identity", rsa: true)
        let p12 = try PKCS12.create(identity: identity, password: "s3cret", friendlyName: "Orchard device")
        let opened = try PKCS12.parse(p12, password: "s3cret")
        XCTAssertEqual(opened.certificate.der, identity.certificate.der)
        XCTAssertTrue(opened.key.matches(identity.certificate))
        XCTAssertEqual(opened.chain.map(\.der), [pki.intermediate.der])
        XCTAssertThrowsError(try PKCS12.parse(p12, password: "wrong"))
        XCTAssertThrowsError(try PKCS12.parse([0x30, 0x00], password: ""))

        let tool = try OpenSSLTool()
        defer { tool.cleanUp() }
        _ = try tool.write("id.p12", p12)
        let result = try tool.run(["pkcs12", "-in", "id.p12", "-passin", "pass:s3cret", "-nokeys", "-out", "certs.pem"])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(try Certificate.parsePEM(try tool.read("certs.pem")).count, 2)
    }
}

final class SecretsAndDigestTests: XCTestCase {
    func testSecretBoxBindsKeyAndContext() throws {
        let box = try SecretBox(key: try SecureRandom.bytes(32))
        let sealed = try box.seal(Array("abm private key".utf8), context: "abm_sync.server_tokens/7")
        XCTAssertEqual(try box.open(sealed, context: "abm_sync.server_tokens/7"), Array("abm private key".utf8))
        XCTAssertThrowsError(try box.open(sealed, context: "abm_sync.server_tokens/8"))
        XCTAssertThrowsError(try SecretBox(key: try SecureRandom.bytes(32)).open(sealed, context: "abm_sync.server_tokens/7"))
        var tampered = sealed
        tampered[20] ^= 0xFF
        XCTAssertThrowsError(try box.open(tampered, context: "abm_sync.server_tokens/7"))
        XCTAssertThrowsError(try box.open([1, 2, 3], context: "x"))
        XCTAssertThrowsError(try SecretBox(key: [1, 2, 3]))
        XCTAssertNotEqual(try box.seal([1], context: "c"), try box.seal([1], context: "c"), "nonces must differ")
    }

    func testDigestsAndRandom() throws {
        XCTAssertEqual(Digest.sha256(Array("abc".utf8)).hexString,
                       "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertEqual(Digest.hmacSHA256(key: Array("key".utf8), data: Array("The quick brown fox jumps over the lazy dog".utf8)).hexString,
                       "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8")
        XCTAssertTrue(Digest.constantTimeEquals([1, 2, 3], [1, 2, 3]))
        XCTAssertFalse(Digest.constantTimeEquals([1, 2, 3], [1, 2, 4]))
        XCTAssertFalse(Digest.constantTimeEquals([1, 2], [1, 2, 3]))
        let tokens = Set(try (0..<100).map { _ in try SecureRandom.token() })
        XCTAssertEqual(tokens.count, 100)
        XCTAssertTrue(tokens.allSatisfy { $0.count == 43 && !$0.contains("=") && !$0.contains("+") && !$0.contains("/") })
    }
}
