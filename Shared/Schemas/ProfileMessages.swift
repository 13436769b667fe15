import Foundation
import OrchardMessaging

/// Asks profile-signer to build and sign an enrollment profile for one device.
public struct BuildEnrollmentProfile: RequestSchema, Equatable {
    public static let topic = "orchard.profile-requests.v1"
    public static let type = "profile.build"
    public static let version = 1

    public enum Platform: String, Codable, Sendable { case iOS, macOS, watchOS }

    /// Who the profile is for: an enrollment link id, or the UDID when it is known (watch, ADE).
    public var subject: String
    public var platform: Platform
    public var topic: String
    public var serverURL: String
    public var checkInURL: String
    public var organization: String
    public var serverCapabilities: [String]
    /// Anchor certificates (DER) this profile adds to profile-signer's own (an ADE profile's `anchor_certs`).
    public var extraAnchors: [Data]?
    /// `PayloadRemovalDisallowed`: an ADE profile with `is_mdm_removable` false.
    public var removalDisallowed: Bool?
    /// Account-driven enrollment: `EnrollmentMode` (`BYOD` or `ADDE`) and `AssignedManagedAppleID` of the MDM payload.
    /// With `BYOD` the payload has no `AccessRights` (a User Enrollment cancels when it has them).
    public var enrollmentMode: String?
    public var assignedManagedAppleID: String?

    public var key: String { subject }

    public init(subject: String, platform: Platform, topic: String, serverURL: String, checkInURL: String,
                organization: String, serverCapabilities: [String] = ["com.apple.mdm.token"]) {
        self.subject = subject
        self.platform = platform
        self.topic = topic
        self.serverURL = serverURL
        self.checkInURL = checkInURL
        self.organization = organization
        self.serverCapabilities = serverCapabilities
    }

    public struct Reply: Codable, Sendable, Equatable {
        /// The CMS-signed profile (DER), served as `application/x-apple-aspen-config`.
        public var signedProfile: Data
        /// SHA-256 of the device identity certificate in the profile, when profile-signer issued one.
        public var identityFingerprint: String?
        /// The CA that issued that identity (DER): the gateway trusts it for `Mdm-Signature`.
        public var issuingCA: Data?
        /// `PayloadIdentifier` of the MDM payload inside the profile.
        public var mdmPayloadIdentifier: String
        /// The profile's top-level `PayloadIdentifier`: `RemoveProfile` with it unenrolls the device.
        /// Optional only so that a reply from an older profile-signer still decodes.
        public var profileIdentifier: String?

        public init(signedProfile: Data, identityFingerprint: String?, issuingCA: Data?, mdmPayloadIdentifier: String,
                    profileIdentifier: String) {
            self.signedProfile = signedProfile
            self.identityFingerprint = identityFingerprint
            self.issuingCA = issuingCA
            self.mdmPayloadIdentifier = mdmPayloadIdentifier
            self.profileIdentifier = profileIdentifier
        }

        /// The top-level identifier; for an older profile-signer's reply, derived as it built it (`<id>.mdm`).
        public var removableIdentifier: String {
            profileIdentifier ?? (mdmPayloadIdentifier.hasSuffix(".mdm") ? String(mdmPayloadIdentifier.dropLast(4)) : mdmPayloadIdentifier)
        }
    }
}

/// Asks profile-signer which certificates it signs with (for the admin API).
public struct DescribeSigningIdentities: RequestSchema, Equatable {
    public static let topic = "orchard.profile-requests.v1"
    public static let type = "profile.describe-signing"
    public static let version = 1

    public var key: String { "signing" }
    public init() {}

    public struct Certificate: Codable, Sendable, Equatable {
        public var role: String
        public var subject: String
        public var sha256: String
        public var notAfter: Date
        public var pem: String

        public init(role: String, subject: String, sha256: String, notAfter: Date, pem: String) {
            self.role = role
            self.subject = subject
            self.sha256 = sha256
            self.notAfter = notAfter
            self.pem = pem
        }
    }

    public struct Reply: Codable, Sendable, Equatable {
        public var certificates: [Certificate]
        public var identitySource: String
        public init(certificates: [Certificate], identitySource: String) {
            self.certificates = certificates
            self.identitySource = identitySource
        }
    }
}
