import AppleProtocol
import Foundation
import OrchardCrypto
import OrchardTestSupport
import XCTest

/// What every end-to-end test shares, prepared once per test run against the services Deploy/test.sh
/// started: the admin client, the APNs stand-in, an uploaded push certificate, and the test PKI.
actor Fixture {
    static let shared = Fixture()

    struct Ready: Sendable {
        let gateway: String
        let admin: AdminClient
        let apns: APNsStandIn
        let topic: String
        /// The test CA: it signs the APNs stand-in's certificate and the push certificate, and the gateway
        /// trusts it for device identities as it would an external SCEP CA (ORCHARD_DEVICE_IDENTITY_ROOTS).
        let testCA: SigningIdentity
        /// profile-signer's device CA, which signs enrollment profiles' signing certificate.
        let profileCA: Certificate
        let pkiDirectory: String
        /// Stands in for Apple's device CA (ORCHARD_APPLE_DEVICE_ROOTS): signs watches' MachineInfo identities.
        let appleCA: SigningIdentity
    }

    private var ready: Ready?

    func prepare() async throws -> Ready {
        if let ready { return ready }
        let gateway = try TestEnvironment.require("ORCHARD_URL_CHECKIN_GATEWAY")
        let admin = AdminClient(baseURL: gateway, key: try TestEnvironment.require("ORCHARD_ADMIN_API_KEY"))
        let pki = try TestEnvironment.require("ORCHARD_TEST_PKI")
        let caKey = try PrivateKey(pem: Array(try Data(contentsOf: URL(fileURLWithPath: "\(pki)/ca.key"))))
        let caCert = try Certificate.parsePEM(Array(try Data(contentsOf: URL(fileURLWithPath: "\(pki)/ca.pem"))))[0]
        let testCA = try SigningIdentity(certificate: caCert, key: caKey)

        let apns = APNsStandIn()
        try apns.start(port: Int(try TestEnvironment.require("ORCHARD_TEST_APNS_PORT"))!,
                       certificatePEM: "\(pki)/apns-server.pem", keyPEM: "\(pki)/apns-server.key", clientCAPEM: "\(pki)/ca.pem")

        // The MDM push certificate: its subject UID is the topic.
        let pushID = UUID().uuidString.lowercased()
        let topic = "com.apple.mgmt.External.\(pushID)"
        let pushKey = try PrivateKey.generateP256()
        let pushCert = try Certificate.issue(subject: "/CN=APSP:\(pushID)/UID=\(topic)/O=Orchard Tests", key: pushKey,
                                             issuer: (caCert, caKey), usage: .clientIdentity,
                                             validity: Date().addingTimeInterval(-60)...Date().addingTimeInterval(86400 * 365))
        let uploaded = try await admin.expect(.PUT, "/push-certificate", json: [
            "certificate": String(decoding: try pushCert.pemRepresentation(), as: UTF8.self),
            "privateKey": String(decoding: try pushKey.pemRepresentation(), as: UTF8.self),
        ])
        guard uploaded["topic"] as? String == topic else { throw PlistError("push certificate topic not taken: \(uploaded)") }

        let signing = try await admin.expect(.GET, "/signing-identities")
        let certificates = signing["certificates"] as? [[String: Any]] ?? []
        guard let caPEM = certificates.first(where: { $0["role"] as? String == "device-ca" })?["pem"] as? String else {
            throw PlistError("no device CA in \(signing)")
        }
        let appleCA = try SigningIdentity(
            certificate: try Certificate.parsePEM(Array(try Data(contentsOf: URL(fileURLWithPath: "\(pki)/apple-ca.pem"))))[0],
            key: try PrivateKey(pem: Array(try Data(contentsOf: URL(fileURLWithPath: "\(pki)/apple-ca.key")))))
        let made = Ready(gateway: gateway, admin: admin, apns: apns, topic: topic, testCA: testCA,
                         profileCA: try Certificate.parsePEM(Array(caPEM.utf8))[0], pkiDirectory: pki, appleCA: appleCA)
        ready = made
        return made
    }

    /// A device enrolled through an enrollment link: downloads and installs the signed profile.
    func enrollThroughLink(udid: String = newUDID(), supervised: Bool = true) async throws -> SimulatedDevice {
        let ready = try await prepare()
        let link = try await ready.admin.expect(.POST, "/enrollment-links", json: ["name": "device \(udid)", "maxUses": 1])
        let profile = try await http(.GET, link["url"] as! String)
        guard profile.status == 200 else { throw PlistError("profile download → \(profile.status) \(profile.text)") }
        let (device, _) = try SimulatedDevice.installing(profile.body, roots: [ready.profileCA], udid: udid,
                                                         serial: "SER\(udid.suffix(8))")
        try await completeEnrollment(device, supervised: supervised)
        return device
    }

    /// A device whose identity comes from the test CA (as from an external SCEP server), enrolled.
    func enrollWithExternalIdentity(udid: String = newUDID(), platform: String = "iOS", supervised: Bool = true) async throws -> SimulatedDevice {
        let ready = try await prepare()
        let key = try PrivateKey.generateP256()
        let cert = try Certificate.issue(subject: "/CN=\(udid)/O=Orchard Tests", key: key, issuer: (ready.testCA.certificate, ready.testCA.key),
                                         usage: .clientIdentity, validity: Date().addingTimeInterval(-60)...Date().addingTimeInterval(86400))
        let device = try SimulatedDevice(udid: udid, serial: "SER\(udid.suffix(8))", platform: platform,
                                         identity: try SigningIdentity(certificate: cert, key: key), topic: ready.topic,
                                         checkInURL: "\(ready.gateway)/mdm/checkin", serverURL: "\(ready.gateway)/mdm/server",
                                         productName: platform == "watchOS" ? "Watch7,3" : "iPhone15,2")
        try await completeEnrollment(device, supervised: supervised)
        return device
    }

    /// Authenticate, TokenUpdate, then answer the DeviceInformation the gateway queues.
    func completeEnrollment(_ device: SimulatedDevice, supervised: Bool) async throws {
        let auth = try await device.authenticate()
        guard auth.status == 200 else { throw PlistError("Authenticate → \(auth.status) \(auth.text)") }
        let update = try await device.tokenUpdate()
        guard update.status == 200 else { throw PlistError("TokenUpdate → \(update.status) \(update.text)") }
        guard let info = try await device.idle(), info.requestType == "DeviceInformation" else {
            throw PlistError("expected DeviceInformation after enrollment")
        }
        _ = try await device.respond(to: info, status: "Acknowledged", extra: device.informationAnswers(supervised: supervised))
    }
}

func newUDID() -> String {
    "00008030-" + UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(16).uppercased()
}

/// Polls until the condition holds or the timeout passes.
func eventually(timeout: TimeInterval = 30, _ condition: () async throws -> Bool) async rethrows -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: .milliseconds(100))
    }
    return false
}
