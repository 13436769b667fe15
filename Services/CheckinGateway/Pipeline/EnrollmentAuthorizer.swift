import Foundation
import Hummingbird
import OrchardStorage

/// What a message needs of the enrollment it names.
enum EnrollmentAccess: Sendable {
    /// Authenticate: the identity may create the enrollment, or bind it anew under the rules below.
    case binding
    /// The enrollment exists, is bound to this identity and has not checked out or been unenrolled.
    case active
    /// As `active`, and also once the device is unenrolled or checked out (CheckOut, and a repeated one).
    case activeOrCheckedOut
}

/// The enrollment a device request acts on, after the pipeline authorized it in the transaction the
/// handler's writes then run in. (Authenticate's row is locked; other messages' writes that depend on the
/// binding repeat it in their WHERE clause instead.)
struct AuthorizedEnrollment: Sendable {
    let id: String
    let credential: DeviceCredential
    /// The enrollment as it was before this request; nil when Authenticate creates it.
    let record: EnrollmentRecord?
    /// Authenticate only: what is known about the identity.
    let claim: IdentityClaim?
    /// The rows of the handler's leading statement (`DeviceMessageHandler.leadingStatement`), nil without one.
    var leadingRows: [Row]? = nil

    var status: EnrollmentStatus? { record?.status ?? claim?.current?.status }
}

/// An account-driven enrollment's request without a good bearer for its Managed Apple Account: the pipeline answers
/// `401` with the domain's challenge; the device signs in again and retries (REFERENCE §5.7).
struct AccountChallengeRequired: Error {
    let binding: AccountBinding
    let reason: String
}

/// A request for an enrollment Orchard no longer has for this device: an account-driven device's whose enrollment is
/// unknown or ended, or one signed by an identity the enrollment had before it re-enrolled with a new one. `403
/// com.apple.unrecognized.device` (Apple: "use this error instead of a 401 to cause an unenroll"; a 401 would only make
/// an account-driven device sign in again).
struct UnrecognizedDevice: Error {
    let reason: String
    /// The activity entry's action.
    var action = "device.unrecognized"
}

/// The one authorization decision of the device endpoints. Refusals: unknown enrollment 401, another
/// identity 403, checked out 401; nothing is written on refusal (the transaction rolls back).
enum EnrollmentAuthorizer {
    /// `touch`: record that the enrollment was seen (with the COMMIT) when the last record is older than
    /// `EnrollmentStore.lastSeenResolution`; false when the handler writes the enrollment row anyway and sets it
    /// itself (one UPDATE of the row instead of two).
    static func authorize(_ c: Connection, id: String, credential: DeviceCredential,
                          access: EnrollmentAccess, touch: Bool = true,
                          leading: (String, [SQLValue])? = nil) throws -> AuthorizedEnrollment {
        switch access {
        case .binding:
            precondition(leading == nil, "Authenticate takes no leading statement")
            let claim = try EnrollmentStore.claim(c, id: id, fingerprint: credential.fingerprint)
            if claim.boundTo == id, let current = claim.current, current.fingerprint != credential.fingerprint {
                throw UnrecognizedDevice(reason: "enrollment \(id) re-enrolled with a new identity; this one is no longer its")
            }
            if let reason = bindingRefusal(id: id, fingerprint: credential.fingerprint, claim: claim) {
                throw refuse(.forbidden, reason)
            }
            try checkAccount(claim.issued?.account, credential)
            if claim.issued?.linkUsePending == true,
               try !EnrollmentLinkStore.spend(c, identityFingerprint: credential.fingerprint) {
                throw refuse(.forbidden, "the enrollment link this profile came from is used up (other devices enrolled with its uses) or revoked")
            }
            return AuthorizedEnrollment(id: id, credential: credential, record: nil, claim: claim)
        case .active, .activeOrCheckedOut:
            let (found, leadingRows) = try EnrollmentStore.find(c, id: id, leading: leading)
            guard let record = found else {
                if credential.bearer != nil {
                    throw UnrecognizedDevice(reason: "unknown enrollment \(id)", action: "account.enrollment.unrecognized")
                }
                throw refuse(.unauthorized, "unknown enrollment \(id): Authenticate first")
            }
            guard record.identityFingerprint == credential.fingerprint else {
                if try EnrollmentStore.boundEnrollment(c, fingerprint: credential.fingerprint) == id {
                    throw UnrecognizedDevice(reason: "enrollment \(id) re-enrolled with a new identity; this one is no longer its")
                }
                throw refuse(.forbidden, "request signed by an identity that is not this enrollment's")
            }
            if !record.status.isActive && access != .activeOrCheckedOut {
                if record.account != nil {
                    throw UnrecognizedDevice(reason: "enrollment \(id) is \(record.status.rawValue)", action: "account.enrollment.unrecognized")
                }
                throw refuse(.unauthorized, "enrollment \(id) is \(record.status.rawValue): enroll again first")
            }
            try checkAccount(record.account, credential)
            if touch && record.lastSeenDue { try EnrollmentStore.touch(c, id: id) }
            return AuthorizedEnrollment(id: id, credential: credential, record: record, claim: nil, leadingRows: leadingRows)
        }
    }

    /// An account-driven enrollment's requests need a good bearer, issued to its account, where the device sends one:
    /// every request of an iPhone or iPad, the user channel of a Mac (its device channel carries none).
    static func checkAccount(_ binding: AccountBinding?, _ credential: DeviceCredential) throws {
        guard let binding, binding.bearerRequired || credential.user != nil else { return }
        switch AccountAuthorization.verdict(bearerPresent: credential.bearer != nil, token: credential.accountToken,
                                            domain: binding.domain, account: binding.managedAppleID) {
        case .missing: throw AccountChallengeRequired(binding: binding, reason: "no bearer token")
        case .refused(let why): throw AccountChallengeRequired(binding: binding, reason: why)
        case .accepted: return
        }
    }

    /// Why `fingerprint` may not Authenticate as enrollment `id`; nil when it may.
    /// - An identity issued to one device (a watch's, from its verified MachineInfo) serves that device only.
    /// - An identity serves the first enrollment it authenticated, for ever (an external CA's included).
    /// - An enrolled device moves to a new identity only with one issued to that very device: an identity
    ///   from an enrollment link proves nothing about which device holds it, so it cannot take over an
    ///   enrolled device (the device must check out, or an admin release it, first).
    /// - And only with one issued after its current identity was bound: an identity a captured MachineInfo obtained
    ///   while the device was enrolling cannot take the enrollment over later (ADE issues a second identity for an
    ///   enrolled device only once ABM confirms a new Setup Assistant run, `ADEReenrollment`).
    static func bindingRefusal(id: String, fingerprint: String, claim: IdentityClaim) -> String? {
        if let device = claim.issued?.deviceID, device != id {
            return "this identity was issued to another device"
        }
        if let bound = claim.boundTo, bound != id {
            return "this identity belongs to another enrollment"
        }
        if let current = claim.current, current.fingerprint != fingerprint, current.status == .enrolled {
            guard claim.issued?.deviceID == id else {
                return "enrollment \(id) is enrolled with another identity: it must check out (remove its MDM profile) first"
            }
            if let issuedAt = claim.issued?.issuedAt, let boundAt = current.boundAt, issuedAt <= boundAt {
                return "enrollment \(id) is enrolled with an identity bound after this one was issued: enroll again first"
            }
        }
        return nil
    }
}
