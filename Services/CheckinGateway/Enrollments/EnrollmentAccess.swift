import Foundation
import Hummingbird
import OrchardStorage

/// The enrollment a device request belongs to, after its identity was checked.
struct AuthorizedEnrollment: Sendable {
    let id: String
    let status: String
    let enrolledAt: Date?
    let mdmPayloadIdentifier: String?
}

enum EnrollmentAccess {
    /// Loads and locks the enrollment, checks that `fingerprint` is the identity bound to it, and records
    /// that it was seen. Unknown enrollment: 401. Another identity: 403. Nothing is written on refusal.
    static func authorize(_ c: Connection, enrollmentID: String, fingerprint: String,
                          allowCheckedOut: Bool = false) throws -> AuthorizedEnrollment {
        guard let row = try c.query("""
            UPDATE enrollments SET last_seen_at = now() WHERE id = $1
            RETURNING identity_fingerprint, status, enrolled_at, mdm_payload_identifier
            """, [.text(enrollmentID)]).first else {
            throw refuse(.unauthorized, "unknown enrollment \(enrollmentID): Authenticate first")
        }
        guard row.string("identity_fingerprint") == fingerprint else {
            throw refuse(.forbidden, "request signed by an identity that is not this enrollment's")
        }
        let status = row.string("status") ?? ""
        if status == "checked-out" && !allowCheckedOut {
            throw refuse(.unauthorized, "enrollment \(enrollmentID) has checked out")
        }
        return AuthorizedEnrollment(id: enrollmentID, status: status, enrolledAt: row.date("enrolled_at"),
                                    mdmPayloadIdentifier: row.string("mdm_payload_identifier"))
    }
}
