import AppleProtocol
import Foundation
import NIOHTTP1
import OrchardCrypto

/// An Apple Watch before enrollment: it has an Apple-issued device identity (here from a test CA) with
/// which it signs its MachineInfo, and talks to the `EnrollmentProfileURL` its iPhone gave it.
public struct SimulatedWatch: Sendable {
    public let udid: String
    public let serial: String
    public let appleIdentity: SigningIdentity

    public init(udid: String, serial: String, appleCA: SigningIdentity) throws {
        self.udid = udid
        self.serial = serial
        let key = try PrivateKey.generateP256()
        let cert = try Certificate.issue(subject: "/CN=\(udid)/O=Apple Inc. (test)", key: key,
                                         issuer: (appleCA.certificate, appleCA.key), usage: .clientIdentity,
                                         validity: Date().addingTimeInterval(-86400)...Date().addingTimeInterval(86400 * 365))
        appleIdentity = try SigningIdentity(certificate: cert, key: key)
    }

    public func machineInfo(pairingToken: [UInt8]? = nil) -> MachineInfo {
        MachineInfo(udid: udid, serial: serial, product: "Watch7,3", version: "22R349", osVersion: "11.1", language: "en",
                    pairingToken: pairingToken)
    }

    /// The CMS-signed MachineInfo the watch sends.
    public func signedMachineInfo(pairingToken: [UInt8]? = nil, signer: SigningIdentity? = nil) throws -> [UInt8] {
        try CMS.sign(machineInfo(pairingToken: pairingToken).plist, identity: signer ?? appleIdentity)
    }

    /// POSTs the signed MachineInfo to the enrollment profile URL.
    public func requestProfile(_ url: String, pairingToken: [UInt8]? = nil, signer: SigningIdentity? = nil) async throws -> HTTPResult {
        try await http(.POST, url, headers: [("Content-Type", "application/pkcs7-signature")],
                       body: try signedMachineInfo(pairingToken: pairingToken, signer: signer))
    }
}
