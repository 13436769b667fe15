import OrchardCore
import AppleProtocol
import Foundation
import OrchardCrypto
import OrchardSchemas
import OrchardMessaging
import OrchardStorage

/// Where device identities come from.
enum IdentitySource: Sendable {
    /// profile-signer's own CA issues a PKCS#12 identity per profile (the default).
    case certificateAuthority
    case scep(url: String, challenge: String?)
    case acme(directoryURL: String)

    var name: String {
        switch self {
        case .certificateAuthority: return "ca"
        case .scep: return "scep"
        case .acme: return "acme"
        }
    }
}

/// Answers `BuildEnrollmentProfile`: builds the profile for the platform, adds the identity and the
/// anchor certificates, signs it (CMS SignedData, attached) and records the issued identity.
struct ProfileBuilder: Sendable {
    let authorities: Authorities
    let keys: DeviceKeyPool
    /// Watch identities use this key type (P-256 by default: RSA-2048 generation would cap watch
    /// enrollment at a few per second per core).
    let watchKeyType: DeviceKeyPool.KeyType
    let identitySource: IdentitySource
    let anchors: [Certificate]
    let database: Database
    let outbox: OutboxPublisher
    let service: String

    func build(_ request: BuildEnrollmentProfile, correlationID: String?) async throws -> BuildEnrollmentProfile.Reply {
        try Self.validate(request)
        let identifierRoot = "orchard.enroll." + request.organization.lowercased()
            .map { $0.isLetter || $0.isNumber ? String($0) : "-" }.joined()
        var fingerprint: String?
        var issued: Certificate?
        let identity: EnrollmentProfile.Identity
        switch identitySource {
        case .certificateAuthority:
            let key = request.platform == .watchOS && watchKeyType == .p256 ? try PrivateKey.generateP256() : try await keys.take()
            let cert = try Certificate.issue(
                subject: "/CN=\(request.subject)/O=\(request.organization)/OU=Orchard device identity", key: key,
                issuer: (authorities.ca.certificate, authorities.ca.key), usage: .clientIdentity,
                validity: Date().addingTimeInterval(-300)...Date().addingTimeInterval(86400 * 730))
            let password = try SecureRandom.token(byteCount: 16)
            let p12 = try PKCS12.create(identity: try SigningIdentity(certificate: cert, key: key, chain: [authorities.ca.certificate]),
                                        password: password, friendlyName: "Orchard device identity")
            identity = .pkcs12(data: p12, password: password)
            fingerprint = cert.sha256Fingerprint
            issued = cert
        case .scep(let url, let challenge):
            identity = .scep(url: url, challenge: challenge, subject: request.subject, keySize: 2048)
        case .acme(let directoryURL):
            identity = .acme(directoryURL: directoryURL, clientIdentifier: request.subject, subject: request.subject,
                             hardwareBound: true, attest: request.platform != .macOS)
        }
        let platform: EnrollmentProfile.Platform = switch request.platform {
        case .iOS: .iOS
        case .macOS: .macOS
        case .watchOS: .watchOS
        }
        var profile = EnrollmentProfile(
            identifier: identifierRoot, displayName: "\(request.organization) device management",
            organization: request.organization, topic: request.topic, serverURL: request.serverURL,
            checkInURL: request.checkInURL, identity: identity,
            anchorCertificates: anchors.map(\.der) + (request.extraAnchors ?? []).map { Array($0) }, platform: platform,
            serverCapabilities: request.serverCapabilities)
        profile.removalDisallowed = request.removalDisallowed ?? false
        profile.enrollmentMode = request.enrollmentMode
        profile.assignedManagedAppleID = request.assignedManagedAppleID
        let signed = try CMS.sign(profile.plist, identity: authorities.profileSigning)

        let activity = ActivityRecorded(actor: "service:\(service)", action: "profile.signed", deviceID: request.subject,
                                        outcome: .succeeded,
                                        detail: "\(request.platform.rawValue) profile, identity from \(identitySource.name)",
                                        service: service)
        let record = issued.flatMap { cert in fingerprint.map { (cert, $0) } }
        try await database.transaction { c in
            if let (issued, fingerprint) = record {
                try SignerStore.recordIssuedIdentity(c, fingerprint: fingerprint, subject: request.subject,
                                                     serialHex: issued.serialNumberHex, notAfter: issued.notAfter)
            }
            try Outbox.append(activity, correlationID: correlationID, on: c)
        }
        outbox.notify()
        return .init(signedProfile: Data(signed), identityFingerprint: fingerprint,
                     issuingCA: fingerprint == nil ? nil : Data(authorities.ca.certificate.der),
                     mdmPayloadIdentifier: profile.mdmPayloadIdentifier, profileIdentifier: profile.identifier)
    }

    func describe() throws -> DescribeSigningIdentities.Reply {
        func entry(_ role: String, _ c: Certificate) throws -> DescribeSigningIdentities.Certificate {
            .init(role: role, subject: c.subject, sha256: c.sha256Fingerprint, notAfter: c.notAfter,
                  pem: String(decoding: try c.pemRepresentation(), as: UTF8.self))
        }
        return .init(certificates: [try entry("device-ca", authorities.ca.certificate),
                                    try entry("profile-signing", authorities.profileSigning.certificate)],
                     identitySource: identitySource.name)
    }

    /// A request profile-signer may build from; 400 `invalid-profile-request` naming what is wrong otherwise.
    static func validate(_ r: BuildEnrollmentProfile) throws {
        func refuse(_ message: String) -> RequestRefused { RequestRefused(code: "invalid-profile-request", message: message) }
        if let extra = r.extraAnchors {
            guard extra.count <= 20, extra.allSatisfy({ (try? Certificate(der: Array($0))) != nil }) else {
                throw refuse("extraAnchors must be at most 20 DER certificates")
            }
        }
        guard DeviceIdentifier.isValid(r.subject) else { throw refuse("subject must be a device identifier") }
        if let mode = r.enrollmentMode {
            guard mode == "BYOD" || mode == "ADDE" else { throw refuse("enrollmentMode must be BYOD or ADDE") }
            guard let account = r.assignedManagedAppleID, (3...320).contains(account.count), account.contains("@"),
                  !account.containsControlCharacters else {
                throw refuse("an account-driven profile needs assignedManagedAppleID (name@domain)")
            }
        } else if r.assignedManagedAppleID != nil {
            throw refuse("assignedManagedAppleID needs enrollmentMode")
        }
        guard r.topic.hasPrefix("com.apple.mgmt."), r.topic.count <= 200 else { throw refuse("topic must start with com.apple.mgmt.") }
        for url in [r.serverURL, r.checkInURL] where !url.hasPrefix("https://") && !url.hasPrefix("http://") {
            throw refuse("server URLs must be http(s)")
        }
        guard !r.organization.isEmpty, r.organization.count <= 100,
              !r.organization.contains("/"), !r.organization.contains("=") else {
            throw refuse("organization must be 1-100 characters without / or =")
        }
    }
}
