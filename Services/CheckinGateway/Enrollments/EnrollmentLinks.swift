import OrchardCore
import Foundation
import Hummingbird
import Logging
import OrchardCrypto
import OrchardSchemas
import OrchardMessaging
import OrchardServiceKit
import OrchardStorage

/// Enrollment links: an admin creates one (a random token, optional expiry and use count); a device
/// downloads its signed profile with it at `GET /enroll/<token>`. Tokens are stored hashed.
struct EnrollmentLinks: Sendable {
    let database: Database
    let outbox: OutboxPublisher
    let delivery: ProfileDelivery
    let publicURL: String

    struct Created: Sendable { let id: String; let token: String; let url: String }

    func create(name: String, expiresAt: Date?, maxUses: Int?, actor: String, correlationID: String) async throws -> Created {
        guard !name.isEmpty, name.count <= 200 else { throw refuse(.badRequest, "name must be 1-200 characters") }
        if let maxUses, !(1...1_000_000).contains(maxUses) { throw refuse(.badRequest, "maxUses must be from 1 to 1000000") }
        guard !name.containsControlCharacters else {
            throw refuse(.badRequest, "name must not contain control characters")
        }
        if let expiresAt, expiresAt <= Date() { throw refuse(.badRequest, "expiresAt must be in the future") }
        let token = try SecureRandom.token()
        let id = RandomUUID.lowercased()
        try await database.transaction { c in
            try EnrollmentLinkStore.create(c, id: id, name: name, tokenHash: Digest.sha256(Array(token.utf8)), createdBy: actor,
                                           expiresAt: expiresAt, maxUses: maxUses)
            var journal = Journal(correlationID: correlationID)
            journal.activity(actor: actor, "enrollment-link.created", device: nil, detail: "\(name) (\(id))")
            try journal.write(c)
        }
        outbox.notify()
        return Created(id: id, token: token, url: "\(publicURL)/enroll/\(token)")
    }

    /// Serves the signed profile for a link. Its use is spent when a device enrolls with the profile (the
    /// identity's first Authenticate, `EnrollmentLinkStore.spend`), not here: a device whose answer was lost
    /// downloads again, and of all profiles a link served, as many enroll as it has uses. Refused: unknown (404);
    /// expired, revoked or used up by enrollments (410); 503 + Retry-After while a limited link has as many claims
    /// outstanding as it allows (downloads under way, profiles delivered and not yet enrolled with): they end when
    /// those devices enroll or their claims expire. A failed build gives its claim back at once, and a claim a crash
    /// cut off is given back by `claimRecovery`.
    func download(token: String, correlationID: String) async throws -> Response {
        guard token.count == 43, token.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }) else {
            throw refuse(.notFound, "unknown enrollment link")
        }
        let hash = Digest.sha256(Array(token.utf8))
        let claimID = RandomUUID.lowercased()
        let linkID: String
        switch try await EnrollmentLinkStore.claim(database, tokenHash: hash, claimID: claimID) {
        case .claimed(let id): linkID = id
        case .unknown: throw refuse(.notFound, "unknown enrollment link")
        case .unusable: throw refuse(.gone, "enrollment link expired, used up or revoked")
        case .pending:
            // Not gone: its uses are held by profiles not yet enrolled with, which come back if those devices never do.
            throw DependencyFailure.unavailable(
                "this link's uses left are held by profiles delivered or being delivered and not yet enrolled with; retry later")
        }
        do {
            return try await delivery.deliver(to: .init(subject: linkID, platform: .iOS, linkID: linkID, linkClaimID: claimID),
                                              correlationID: correlationID) {
                ActivityRecorded(actor: "link:\(linkID)", action: "enrollment-profile.served", deviceID: nil, relatedDeviceIDs: [],
                                 outcome: .succeeded, detail: "identity \($0.identityFingerprint ?? "external")",
                                 service: ActivityLog.service)
            }
        } catch {
            // The claim goes back; the error becomes the answer (503 + Retry-After when profile-signer is slow).
            try await EnrollmentLinkStore.release(database, claimID: claimID)
            throw error
        }
    }
}
