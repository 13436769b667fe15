import OrchardCore
import AppleProtocol
import Foundation
import Hummingbird
import OrchardSchemas
import OrchardMessaging
import OrchardStorage

/// The iPhone's `GetToken` for `com.apple.watch.pairing`: checks that the phone that signed the
/// request is the `PhoneUDID`, and may pair a watch; then token-service exchanges the watch's security
/// token for a pairing token bound to both devices. Every refusal is written to the activity log.
struct WatchPairingTokens: TokenService {
    let database: Database
    let outbox: OutboxPublisher
    let requests: RequestClient
    let settings: WatchEnrollmentSettings
    let organization: String
    let requestTimeout: Duration

    /// Whether the iPhone may pair a watch, read in the transaction that authorized it.
    func refusal(for m: GetToken, from phone: AuthorizedEnrollment, in c: Connection) throws -> String? {
        try settings.mayPair(c, phone: phone.id)
    }

    /// `mayNotPair`: what `refusal` said (nil when the iPhone may pair).
    func tokenData(for m: GetToken, from phone: AuthorizedEnrollment, refusal mayNotPair: String?,
                   correlationID: String) async throws -> [UInt8] {
        guard let securityToken = m.securityToken, let phoneUDID = m.phoneUDID, let watchUDID = m.watchUDID,
              !securityToken.isEmpty, securityToken.utf8.count <= 128,
              DeviceIdentifier.isValid(phoneUDID), DeviceIdentifier.isValid(watchUDID) else {
            try await refused(phone.id, watch: m.watchUDID, "TokenParameters need SecurityToken, PhoneUDID and WatchUDID", correlationID)
            throw refuse(.badRequest, "com.apple.watch.pairing needs TokenParameters SecurityToken, PhoneUDID and WatchUDID")
        }
        guard phoneUDID == phone.id else {
            try await refused(phone.id, watch: watchUDID, "PhoneUDID \(phoneUDID) is not the iPhone that signed the request", correlationID)
            throw refuse(.forbidden, "PhoneUDID is not the device that signed this request")
        }
        if let reason = mayNotPair {
            try await refused(phone.id, watch: watchUDID, reason, correlationID)
            throw refuse(.forbidden, "this iPhone may not pair a watch: \(reason)")
        }
        // A refusal or a time-out answers as DependencyFailure maps it.
        let reply = try await requests.request(
            IssuePairingToken(securityToken: securityToken, phoneUDID: phoneUDID, watchUDID: watchUDID, organization: organization),
            timeout: requestTimeout, correlationID: correlationID)
        return Array(reply.pairingToken.utf8)
    }

    private func refused(_ phone: String, watch: String?, _ reason: String, _ correlationID: String) async throws {
        var journal = Journal(correlationID: correlationID)
        journal.activity(actor: "device:\(phone)", "pairing-token.refused", device: watch ?? phone, outcome: .refused,
                         detail: reason, related: watch == nil ? [] : [phone])
        try await journal.commit(to: database, outbox: outbox)
    }
}
