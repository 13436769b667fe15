import AppleProtocol
import OrchardSchemas
import OrchardStorage

/// `Authenticate`: sent first, while the MDM payload installs. Creates the enrollment (pending until its
/// first TokenUpdate) or binds it anew, as `EnrollmentAuthorizer` allowed.
/// https://developer.apple.com/documentation/devicemanagement/authenticate
struct AuthenticateHandler: DeviceMessageHandler {
    let topic: PushTopicCheck

    var access: EnrollmentAccess { .binding }

    func check(_ m: Authenticate) async throws { try await topic.check(m.topic) }

    /// The enrollment's row is written with the COMMIT: a unique violation there (enrollments_identity) means this
    /// identity is already bound to another enrollment (a concurrent Authenticate).
    func transactionFailed(_ error: any Error) -> any Error {
        if let error = error as? PostgresError, error.isUniqueViolation {
            return refuse(.forbidden, "this identity belongs to another enrollment")
        }
        return error
    }

    func apply(_ m: Authenticate, to e: AuthorizedEnrollment, in c: Connection, journal: inout Journal) throws {
        let claim = e.claim ?? IdentityClaim(current: nil, boundTo: nil, issued: nil)
        try EnrollmentStore.authenticate(c, id: e.id, m, fingerprint: e.credential.fingerprint, claim: claim)
        var details: [String: String] = [:]
        details["serial"] = m.serialNumber
        details["product"] = m.productName
        journal.event(DeviceEvent(kind: .authenticated, enrollmentID: e.id, details: details))
        let phone = claim.issued?.pairedPhone
        journal.activity(actor: "device:\(e.id)", phone == nil ? "device.authenticated" : "watch.authenticated", device: e.id,
                         related: phone.map { [$0] } ?? [])
    }
}
