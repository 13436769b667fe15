import Foundation
import OrchardCrypto
import XCTest

/// CMS SignedData and EnvelopedData, checked against the `openssl cms` command line both ways.
final class CMSInteropTests: XCTestCase {
    var tool: OpenSSLTool!
    var pki: TestPKI!

    override func setUpWithError() throws {
        tool = try OpenSSLTool()
        pki = try TestPKI()
        _ = try tool.write("root.pem", pki.root.pemRepresentation())
    }

    override func tearDown() { tool.cleanUp() }

    let body = Array("<plist version=\"1.0\"><dict><key>MessageType</key><string>Authenticate</string></dict></plist>".utf8)

    func testOpenSSLVerifiesOurAttachedSignatureWithRSAAndEC() throws {
        for rsa in [true, false] {
            let identity = try pki.identity("signer-\(rsa ? "rsa" : "ec")", rsa: rsa)
            _ = try tool.write("signed.der", CMS.sign(body, identity: identity))
            let result = try tool.run(["cms", "-verify", "-inform", "DER", "-in", "signed.der", "-CAfile", "root.pem",
                                       "-purpose", "any", "-out", "content.out"])
            XCTAssertEqual(result.status, 0, "openssl rejected our \(rsa ? "RSA" : "EC") signature: \(result.stderr)")
            XCTAssertEqual(try tool.read("content.out"), body)
        }
    }

    func testOpenSSLVerifiesOurDetachedSignature() throws {
        let identity = try pki.identity("device")
        _ = try tool.write("sig.der", CMS.sign(body, identity: identity, detached: true))
        _ = try tool.write("body.plist", body)
        let ok = try tool.run(["cms", "-verify", "-inform", "DER", "-in", "sig.der", "-content", "body.plist",
                               "-CAfile", "root.pem", "-purpose", "any", "-binary", "-out", "/dev/null"])
        XCTAssertEqual(ok.status, 0, ok.stderr)
        _ = try tool.write("tampered.plist", body + [0x20])
        let bad = try tool.run(["cms", "-verify", "-inform", "DER", "-in", "sig.der", "-content", "tampered.plist",
                                "-CAfile", "root.pem", "-purpose", "any", "-binary", "-out", "/dev/null"])
        XCTAssertNotEqual(bad.status, 0, "openssl accepted a detached signature over a different body")
    }

    func testWeVerifyOpenSSLSignaturesAttachedAndDetached() throws {
        let identity = try pki.identity("openssl-signer", rsa: true)
        _ = try tool.write("signer.pem", identity.certificate.pemRepresentation())
        _ = try tool.write("signer.key", identity.key.pemRepresentation())
        _ = try tool.write("chain.pem", pki.intermediate.pemRepresentation())
        _ = try tool.write("body.plist", body)
        let attached = try tool.run(["cms", "-sign", "-binary", "-nodetach", "-md", "sha256", "-in", "body.plist",
                                     "-signer", "signer.pem", "-inkey", "signer.key", "-certfile", "chain.pem",
                                     "-outform", "DER", "-out", "attached.der"])
        XCTAssertEqual(attached.status, 0, attached.stderr)
        let verified = try CMS.verify(try tool.read("attached.der"), roots: [pki.root])
        XCTAssertEqual(verified.content, body)
        XCTAssertEqual(verified.signer.subjectValue("CN"), "openssl-signer")
        XCTAssertEqual(verified.signer.der, identity.certificate.der)

        let detached = try tool.run(["cms", "-sign", "-binary", "-md", "sha256", "-in", "body.plist",
                                     "-signer", "signer.pem", "-inkey", "signer.key", "-certfile", "chain.pem",
                                     "-outform", "DER", "-out", "detached.der"])
        XCTAssertEqual(detached.status, 0, detached.stderr)
        let signature = try tool.read("detached.der")
        XCTAssertEqual(try CMS.verify(signature, detachedContent: body, roots: [pki.root]).signer.subjectValue("CN"),
                       "openssl-signer")
        XCTAssertThrowsError(try CMS.verify(signature, detachedContent: body + [0x0A], roots: [pki.root]),
                             "a tampered body must not verify")
        XCTAssertThrowsError(try CMS.verify(signature, roots: [pki.root]),
                             "a detached signature without its content must not verify")
    }

    func testSignerOutsideTrustedRootsIsRejected() throws {
        let stranger = try TestPKI(name: "Stranger")
        let signed = try CMS.sign(body, identity: try stranger.identity("intruder"))
        XCTAssertThrowsError(try CMS.verify(signed, roots: [pki.root])) { error in
            XCTAssertTrue("\(error)".contains("verif"), "\(error)")
        }
        // The same bytes verify against the stranger's own root: the rejection was about trust.
        XCTAssertEqual(try CMS.verify(signed, roots: [stranger.root]).content, body)
    }

    func testTamperedAttachedContentIsRejected() throws {
        var signed = try CMS.sign(body, identity: try pki.identity("device"))
        let marker = Array("Authenticate".utf8)
        let index = try XCTUnwrap(signed.firstRange(of: marker)).lowerBound
        signed[index] ^= 0x01
        XCTAssertThrowsError(try CMS.verify(signed, roots: [pki.root]))
    }

    func testSignatureOnlyModeReturnsSignerWithoutCheckingTrust() throws {
        let stranger = try TestPKI(name: "Self-contained")
        let identity = try stranger.identity("device-identity")
        let signature = try CMS.sign(body, identity: identity, detached: true)
        let verified = try CMS.verify(signature, detachedContent: body, roots: [])
        XCTAssertEqual(verified.signer.sha256Fingerprint, identity.certificate.sha256Fingerprint)
        XCTAssertThrowsError(try CMS.verify(signature, detachedContent: Array("other".utf8), roots: []))
    }

    func testExpiredSignerVerifiesOnlyWhenValidityIsIgnored() throws {
        let key = try PrivateKey.generateP256()
        let expired = try Certificate.issue(subject: "/CN=old device", key: key, issuer: (pki.intermediate, pki.intermediateKey),
                                            usage: .clientIdentity,
                                            validity: Date().addingTimeInterval(-86400 * 10)...Date().addingTimeInterval(-86400))
        let signed = try CMS.sign(body, identity: try SigningIdentity(certificate: expired, key: key, chain: [pki.intermediate]))
        XCTAssertThrowsError(try CMS.verify(signed, roots: [pki.root]))
        XCTAssertEqual(try CMS.verify(signed, roots: [pki.root], checkValidityPeriods: false).content, body)
        XCTAssertThrowsError(try CMS.verify(signed, roots: [try TestPKI(name: "Else").root], checkValidityPeriods: false),
                             "ignoring validity periods must not mean ignoring trust")
    }

    func testGarbageIsAnErrorNotACrash() {
        for input: [UInt8] in [[], [0x30], [0x30, 0x82, 0xFF, 0xFF, 0x00], Array(repeating: 0x41, count: 4096)] {
            XCTAssertThrowsError(try CMS.verify(input, roots: [pki.root]))
            XCTAssertThrowsError(try CMS.verify(input, detachedContent: body, roots: []))
        }
    }

    func testEnvelopedDataBothWays() throws {
        let recipient = try pki.identity("abm-token-recipient", rsa: true)
        _ = try tool.write("recipient.pem", recipient.certificate.pemRepresentation())
        _ = try tool.write("recipient.key", recipient.key.pemRepresentation())
        let secret = Array("{\"consumer_key\":\"CK_test\"}".utf8)
        _ = try tool.write("secret.json", secret)
        let enc = try tool.run(["cms", "-encrypt", "-binary", "-aes256", "-in", "secret.json", "-outform", "DER",
                                "-out", "enveloped.der", "recipient.pem"])
        XCTAssertEqual(enc.status, 0, enc.stderr)
        XCTAssertEqual(try CMS.decrypt(try tool.read("enveloped.der"), certificate: recipient.certificate,
                                       key: recipient.key), secret)

        _ = try tool.write("ours.der", CMS.encrypt(secret, for: recipient.certificate))
        let dec = try tool.run(["cms", "-decrypt", "-binary", "-inform", "DER", "-in", "ours.der",
                                "-recip", "recipient.pem", "-inkey", "recipient.key", "-out", "plain.out"])
        XCTAssertEqual(dec.status, 0, dec.stderr)
        XCTAssertEqual(try tool.read("plain.out"), secret)

        let other = try pki.identity("someone-else", rsa: true)
        XCTAssertThrowsError(try CMS.decrypt(try tool.read("enveloped.der"), certificate: other.certificate, key: other.key)) {
            guard case CMS.DecryptionFailure.notForThisKey = $0 else { return XCTFail("\($0)") }
        }
        // Not CMS at all is told apart (an ABM server token upload answers 400 for one, 422 for the other).
        XCTAssertThrowsError(try CMS.decrypt(Array("not a CMS message".utf8), certificate: other.certificate, key: other.key)) {
            guard case CMS.DecryptionFailure.notCMS = $0 else { return XCTFail("\($0)") }
        }
    }
}
