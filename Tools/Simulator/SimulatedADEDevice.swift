import AppleProtocol
import Foundation
import NIOHTTP1
import OrchardCrypto

/// A device in Setup Assistant that ABM assigned to Orchard: it has an Apple-issued device identity (here
/// from the tests' stand-in for Apple's device CA) and sends its CMS-signed MachineInfo to the ADE
/// profile's `url` — as a POST body, or base64 in `x-apple-aspen-deviceinfo` on a GET (`configuration_web_url`).
/// Real devices' identities may be expired and sign with SHA-1 (REFERENCE §4.7); `legacy` does both, the
/// certificate and the signature made by the `openssl` tool.
public struct SimulatedADEDevice: Sendable {
    public let udid: String
    public let serial: String
    public let product: String
    public let osVersion: String
    public let canRequestSoftwareUpdate: Bool
    /// macOS 26: `MDM_CAN_REQUEST_PSSO_CONFIG` in the MachineInfo (the first request; the retry after Platform SSO has none).
    public var canRequestPlatformSSO = false
    public let appleIdentity: SigningIdentity
    /// Signs with SHA-1 (openssl cms -md sha1) with a certificate that expired yesterday.
    public let legacy: Bool

    /// `key`: the identity's key (a load generator shares one P-256 key; by default a new RSA-2048 key, as devices have).
    public init(udid: String, serial: String, product: String, osVersion: String, canRequestSoftwareUpdate: Bool = true,
                appleCA: SigningIdentity, legacy: Bool = false, key: PrivateKey? = nil) throws {
        self.udid = udid
        self.serial = serial
        self.product = product
        self.osVersion = osVersion
        self.canRequestSoftwareUpdate = canRequestSoftwareUpdate
        self.legacy = legacy
        let key = try key ?? PrivateKey.generateRSA(bits: 2048)
        let now = Date()
        let validity = legacy ? now.addingTimeInterval(-86400 * 800)...now.addingTimeInterval(-86400)
                              : now.addingTimeInterval(-86400)...now.addingTimeInterval(86400 * 365)
        let cert = try Certificate.issue(subject: "/CN=\(udid)/O=Apple Inc. (test)", key: key, issuer: (appleCA.certificate, appleCA.key),
                                         usage: .clientIdentity, validity: validity)
        appleIdentity = try SigningIdentity(certificate: cert, key: key)
    }

    public var machineInfo: MachineInfo {
        var info = MachineInfo(udid: udid, serial: serial, product: product, version: "22B83", osVersion: osVersion, language: "en",
                               canRequestSoftwareUpdate: canRequestSoftwareUpdate)
        info.canRequestPlatformSSO = canRequestPlatformSSO
        return info
    }

    public func signedMachineInfo(signer: SigningIdentity? = nil) throws -> [UInt8] {
        guard legacy, signer == nil else { return try CMS.sign(machineInfo.plist, identity: signer ?? appleIdentity) }
        return try Self.opensslSHA1Sign(machineInfo.plist, identity: appleIdentity)
    }

    /// POSTs the signed MachineInfo (as Setup Assistant does for `url`).
    public func post(_ url: String, signer: SigningIdentity? = nil, bearer: String? = nil) async throws -> HTTPResult {
        try await http(.POST, url, headers: [("Content-Type", "application/pkcs7-signature")] + (bearer.map { [("Authorization", "Bearer \($0)")] } ?? []),
                       body: try signedMachineInfo(signer: signer))
    }

    /// GETs with the signed MachineInfo in `x-apple-aspen-deviceinfo` (as the web view does for `configuration_web_url`).
    public func get(_ url: String) async throws -> HTTPResult {
        try await http(.GET, url, headers: [("x-apple-aspen-deviceinfo", Data(try signedMachineInfo()).base64EncodedString())])
    }

    /// `openssl cms -sign -md sha1 -nodetach -binary`: a SHA-1 signature made by an implementation other than ours.
    static func opensslSHA1Sign(_ content: [UInt8], identity: SigningIdentity) throws -> [UInt8] {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("orchard-ade-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try Data(content).write(to: dir.appendingPathComponent("info.plist"))
        try Data(try identity.certificate.pemRepresentation()).write(to: dir.appendingPathComponent("cert.pem"))
        try Data(try identity.key.pemRepresentation()).write(to: dir.appendingPathComponent("key.pem"))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        process.arguments = ["cms", "-sign", "-md", "sha1", "-nodetach", "-binary", "-in", "info.plist", "-signer", "cert.pem",
                             "-inkey", "key.pem", "-outform", "DER", "-out", "signed.der"]
        process.currentDirectoryURL = dir
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw PlistError("openssl cms -sign -md sha1 failed") }
        return Array(try Data(contentsOf: dir.appendingPathComponent("signed.der")))
    }
}
