import Foundation
import OrchardCore

/// An MDM enrollment profile (`.mobileconfig`): a `Configuration` holding the `com.apple.mdm` payload,
/// the identity it authenticates with, and anchor certificates. Signing happens elsewhere (CMS).
public struct EnrollmentProfile: Sendable, Equatable {
    /// How the device gets its identity.
    public enum Identity: Sendable, Equatable {
        /// A ready identity, issued by Orchard's device CA.
        case pkcs12(data: [UInt8], password: String)
        /// The device creates a key and asks a SCEP server for a certificate.
        case scep(url: String, challenge: String?, subject: String, keySize: Int)
        /// The device asks an ACME server (hardware-bound EC key when `hardwareBound`).
        case acme(directoryURL: String, clientIdentifier: String, subject: String, hardwareBound: Bool, attest: Bool)
    }

    public enum Platform: String, Sendable { case iOS, macOS, watchOS }

    public static let allAccessRights = 8191

    public var identifier: String
    public var uuid: String
    /// `PayloadUUID` of the identity payload, which `IdentityCertificateUUID` names.
    public var identityUUID: String
    public var displayName: String
    public var organization: String
    public var topic: String
    public var serverURL: String
    public var checkInURL: String
    public var accessRights: Int
    public var serverCapabilities: [String]
    public var identity: Identity
    public var anchorCertificates: [[UInt8]]
    public var platform: Platform
    /// `PayloadRemovalDisallowed` on the profile (honoured on supervised devices: ADE with `is_mdm_removable` false).
    public var removalDisallowed: Bool = false
    /// Account-driven enrollment (REFERENCE §5.6): `BYOD` (User Enrollment: no `AccessRights`) or `ADDE`, with the
    /// Managed Apple Account the user signed in with. Both must stay byte for byte the same when the profile is re-sent.
    public var enrollmentMode: String?
    public var assignedManagedAppleID: String?

    public init(identifier: String, displayName: String, organization: String, topic: String, serverURL: String,
                checkInURL: String, identity: Identity, anchorCertificates: [[UInt8]] = [], platform: Platform = .iOS,
                accessRights: Int = EnrollmentProfile.allAccessRights,
                serverCapabilities: [String] = ["com.apple.mdm.token"], uuid: String = RandomUUID.uppercased()) {
        self.identifier = identifier
        self.uuid = uuid
        self.identityUUID = RandomUUID.uppercased()
        self.displayName = displayName
        self.organization = organization
        self.topic = topic
        self.serverURL = serverURL
        self.checkInURL = checkInURL
        self.accessRights = accessRights
        self.serverCapabilities = serverCapabilities
        self.identity = identity
        self.anchorCertificates = anchorCertificates
        self.platform = platform
    }

    /// The payload identifier of the `com.apple.mdm` payload; removing it unenrolls.
    public var mdmPayloadIdentifier: String { "\(identifier).mdm" }

    public var dictionary: [String: PlistValue] {
        var content: [PlistValue] = [.dictionary(identityPayload(uuid: identityUUID))]
        for (i, der) in anchorCertificates.enumerated() {
            content.append(.dictionary(common(type: "com.apple.security.root", suffix: "anchor.\(i)",
                                              name: "Anchor certificate \(i + 1)")
                .merging(["PayloadContent": .data(der), "PayloadCertificateFileName": .string("anchor\(i + 1).cer")]) { $1 }))
        }
        var mdm = common(type: "com.apple.mdm", suffix: "mdm", name: "Mobile Device Management")
        mdm["IdentityCertificateUUID"] = .string(identityUUID)
        mdm["Topic"] = .string(topic)
        mdm["ServerURL"] = .string(serverURL)
        mdm["CheckInURL"] = .string(checkInURL)
        mdm["SignMessage"] = .bool(true)
        mdm["CheckOutWhenRemoved"] = .bool(true)
        if enrollmentMode != "BYOD" { mdm["AccessRights"] = .integer(accessRights) }
        if let enrollmentMode { mdm["EnrollmentMode"] = .string(enrollmentMode) }
        if let assignedManagedAppleID { mdm["AssignedManagedAppleID"] = .string(assignedManagedAppleID) }
        mdm["ServerCapabilities"] = .array(serverCapabilities.map(PlistValue.string))
        content.append(.dictionary(mdm))

        var top: [String: PlistValue] = [
            "PayloadType": .string("Configuration"), "PayloadVersion": .integer(1),
            "PayloadIdentifier": .string(identifier), "PayloadUUID": .string(uuid),
            "PayloadDisplayName": .string(displayName), "PayloadOrganization": .string(organization),
            "PayloadDescription": .string("Enrolls this device in \(organization)'s device management."),
            "PayloadContent": .array(content),
        ]
        switch platform {
        case .watchOS: top["TargetDeviceType"] = .integer(2)
        case .macOS: top["PayloadScope"] = .string("System")
        case .iOS: break
        }
        if removalDisallowed { top["PayloadRemovalDisallowed"] = .bool(true) }
        return top
    }

    public var plist: [UInt8] { Plist.xml(dictionary) }

    private func common(type: String, suffix: String, name: String) -> [String: PlistValue] {
        ["PayloadType": .string(type), "PayloadVersion": .integer(1), "PayloadIdentifier": .string("\(identifier).\(suffix)"),
         "PayloadUUID": .string(RandomUUID.uppercased()), "PayloadDisplayName": .string(name)]
    }

    private func identityPayload(uuid: String) -> [String: PlistValue] {
        switch identity {
        case .pkcs12(let data, let password):
            var p = common(type: "com.apple.security.pkcs12", suffix: "identity", name: "Device identity")
            p["PayloadUUID"] = .string(uuid)
            p["PayloadContent"] = .data(data)
            p["Password"] = .string(password)
            p["PayloadCertificateFileName"] = .string("identity.p12")
            return p
        case .scep(let url, let challenge, let subject, let keySize):
            var p = common(type: "com.apple.security.scep", suffix: "identity", name: "Device identity (SCEP)")
            p["PayloadUUID"] = .string(uuid)
            var c: [String: PlistValue] = [
                "URL": .string(url), "Keysize": .integer(keySize), "Key Type": .string("RSA"), "Key Usage": .integer(5),
                "Subject": .array([.array([.array([.string("CN"), .string(subject)])])]),
            ]
            if let challenge { c["Challenge"] = .string(challenge) }
            p["PayloadContent"] = .dictionary(c)
            return p
        case .acme(let directoryURL, let clientIdentifier, let subject, let hardwareBound, let attest):
            var p = common(type: "com.apple.security.acme", suffix: "identity", name: "Device identity (ACME)")
            p["PayloadUUID"] = .string(uuid)
            p["DirectoryURL"] = .string(directoryURL)
            p["ClientIdentifier"] = .string(clientIdentifier)
            p["KeyType"] = .string(hardwareBound ? "ECSECPrimeRandom" : "RSA")
            p["KeySize"] = .integer(hardwareBound ? 256 : 2048)
            p["HardwareBound"] = .bool(hardwareBound)
            p["Subject"] = .array([.array([.array([.string("CN"), .string(subject)])])])
            if attest { p["Attest"] = .bool(true) }
            return p
        }
    }
}
