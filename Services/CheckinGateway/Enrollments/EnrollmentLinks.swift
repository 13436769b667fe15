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

    /// Serves the signed profile for a link, counting the use. Refused: unknown (404), expired,
    /// used up or revoked (410); 503 + Retry-After while its last use is held by an unsettled delivery. A failed build gives the use back; so does `claimRecovery` when the
    /// gateway died before the profile was recorded.
    func download(token: String, correlationID: String) async throws -> Response {
        guard token.count == 43, token.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }) else {
            throw refuse(.notFound, "unknown enrollment link")
        }
        let hash = Digest.sha256(Array(token.utf8))
        // The use and a claim on it, in one statement: the claim is settled when the profile's identity
        // is recorded (ProfileDelivery), given back on an error here, and by `claimRecovery` after a crash.
        let claimID = RandomUUID.lowercased()
        let linkID: String
        switch try await EnrollmentLinkStore.claim(database, tokenHash: hash, claimID: claimID) {
        case .claimed(let id): linkID = id
        case .unknown: throw refuse(.notFound, "unknown enrollment link")
        case .unusable: throw refuse(.gone, "enrollment link expired, used up or revoked")
        case .pending:
            // Its last use is paying for a delivery still in progress (or cut off by a crash, given back by
            // `claimRecovery`): not gone yet, so the device retries rather than giving up.
            throw DependencyFailure.unavailable("this link's last use is held by a profile delivery in progress; retry shortly")
        }
        do {
            return try await delivery.deliver(to: .init(subject: linkID, platform: .iOS, linkID: linkID, linkClaimID: claimID),
                                              correlationID: correlationID) {
                ActivityRecorded(actor: "link:\(linkID)", action: "enrollment-profile.served", deviceID: nil, relatedDeviceIDs: [],
                                 outcome: .succeeded, detail: "identity \($0.identityFingerprint ?? "external")",
                                 service: ActivityLog.service)
            }
        } catch {
            // The device keeps its use; the error becomes its answer (503 + Retry-After when profile-signer is slow).
            try await EnrollmentLinkStore.release(database, claimID: claimID)
            throw error
        }
    }
}
