import AppleProtocol
import Foundation
import OrchardMessaging
import OrchardSchemas
import OrchardStorage

/// GetToken `com.apple.maid`: a device's Managed Apple Account sign-in asks for proof that the account's organisation
/// manages this device; abm-sync signs the JWT with the ABM server token's key (the device's ABM server when its serial
/// is in ABM's assignments). No `TokenParameters`. Issued and refused tokens go to the activity log.
struct ManagedAppleIDTokenService: TokenService {
    let database: Database
    let outbox: OutboxPublisher
    let requests: RequestClient
    let requestTimeout: Duration

    func refusal(for m: GetToken, from e: AuthorizedEnrollment, in c: Connection) throws -> String? {
        // Only an enrolled device (its TokenUpdate done) gets one.
        e.status == .enrolled ? nil : "the enrollment is not complete"
    }

    func tokenData(for m: GetToken, from e: AuthorizedEnrollment, refusal: String?, correlationID: String) async throws -> [UInt8] {
        var journal = Journal(correlationID: correlationID)
        if let refusal {
            journal.activity(actor: "device:\(e.id)", "maid-token.refused", device: e.id, outcome: .refused, detail: refusal)
            try await journal.commit(to: database, outbox: outbox)
            throw refuse(.forbidden, "com.apple.maid: \(refusal)")
        }
        let serial = try await EnrollmentStore.serialNumber(database, id: e.id)
        let reply = try await requests.request(SignManagedAppleIDToken(serialNumber: serial), timeout: requestTimeout, correlationID: correlationID)
        journal.activity(actor: "device:\(e.id)", "maid-token.issued", device: e.id,
                         detail: "com.apple.maid JWT \(reply.jti) signed with ABM server token \(reply.tokenID)")
        try await journal.commit(to: database, outbox: outbox)
        return Array(reply.jwt.utf8)
    }
}
