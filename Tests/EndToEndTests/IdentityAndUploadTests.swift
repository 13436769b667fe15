import AppleProtocol
import Foundation
import OrchardCrypto
import OrchardTestSupport
import XCTest

/// The other ways in: a client certificate forwarded by the TLS terminator, a PKCS#12 push certificate,
/// and raw command plists.
final class IdentityAndUploadTests: XCTestCase {
    func testClientCertificateHeaderIdentifiesTheDevice() async throws {
        let device = try await Fixture.shared.enrollWithExternalIdentity()
        let pem = String(decoding: try device.identity.certificate.pemRepresentation(), as: UTF8.self)
        let header = ("X-Client-Cert", pem.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")
        let body = Plist.xml(device.identifiers.merging(["Status": .string("Idle")]) { $1 })
        let viaHeader = try await device.put(device.serverURL, body: body, contentType: CommandResult.contentType, signer: nil,
                                             extraHeaders: [header])
        XCTAssertEqual(viaHeader.status, 200, viaHeader.text)

        // A certificate from an untrusted CA in the header is refused.
        let key = try PrivateKey.generateP256()
        let stranger = try Certificate.issue(subject: "/CN=\(device.udid)", key: key, issuer: nil, usage: .clientIdentity,
                                             validity: Date().addingTimeInterval(-60)...Date().addingTimeInterval(600))
        let strangerPEM = String(decoding: try stranger.pemRepresentation(), as: UTF8.self)
        let refused = try await device.put(device.serverURL, body: body, contentType: CommandResult.contentType, signer: nil,
                                           extraHeaders: [("X-Client-Cert", strangerPEM.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")])
        XCTAssertEqual(refused.status, 401)
        // Another enrolled device's certificate in the header does not open this device's queue.
        let other = try await Fixture.shared.enrollWithExternalIdentity()
        let otherPEM = String(decoding: try other.identity.certificate.pemRepresentation(), as: UTF8.self)
        let foreign = try await device.put(device.serverURL, body: body, contentType: CommandResult.contentType, signer: nil,
                                           extraHeaders: [("X-Client-Cert", otherPEM.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")])
        XCTAssertEqual(foreign.status, 403)
    }

    func testPushCertificateAsPKCS12AndRawCommands() async throws {
        let stack = try await Fixture.shared.prepare()
        let current = try await stack.admin.expect(.GET, "/push-certificate")
        XCTAssertEqual(current["topic"] as? String, stack.topic)

        // The same topic uploaded again as PKCS#12 (a new key and certificate for the same topic).
        let key = try PrivateKey.generateP256()
        let cert = try Certificate.issue(subject: "/CN=APSP:renewed/UID=\(stack.topic)", key: key,
                                         issuer: (stack.testCA.certificate, stack.testCA.key), usage: .clientIdentity,
                                         validity: Date().addingTimeInterval(-60)...Date().addingTimeInterval(86400 * 365))
        let p12 = try PKCS12.create(identity: try SigningIdentity(certificate: cert, key: key), password: "renew", friendlyName: "push")
        let uploaded = try await stack.admin.expect(.PUT, "/push-certificate",
                                                    json: ["pkcs12": Data(p12).base64EncodedString(), "password": "renew"])
        XCTAssertEqual(uploaded["topic"] as? String, stack.topic)
        let wrongPassword = try await stack.admin.call(.PUT, "/push-certificate",
                                                       json: ["pkcs12": Data(p12).base64EncodedString(), "password": "nope"])
        XCTAssertEqual(wrongPassword.status, 400)

        // A raw command plist goes to the device as given, and pushes still reach it with the new certificate.
        let device = try await Fixture.shared.enrollWithExternalIdentity()
        let raw = MDMCommand(requestType: "ProfileList")
        _ = try await stack.admin.expect(.POST, "/devices/\(device.udid)/commands",
                                         json: ["type": "Raw", "plist": Data(raw.plist).base64EncodedString()])
        let pushed = await eventually(timeout: 30) { stack.apns.pushes(to: device.pushToken.hexString).count >= 2 }
        XCTAssertTrue(pushed, "pushes keep working after the certificate was replaced")
        let received = try unwrap(try await device.idle())
        XCTAssertEqual(received.commandUUID, raw.commandUUID)
        XCTAssertEqual(received.requestType, "ProfileList")
        let bad = try await stack.admin.call(.POST, "/devices/\(device.udid)/commands", json: ["type": "Raw", "plist": "bm90IGEgcGxpc3Q="])
        XCTAssertEqual(bad.status, 400)
    }
}
