import Foundation
import Hummingbird
import OrchardSchemas
import OrchardMessaging
import OrchardStorage

/// Hands a device its signed enrollment profile, whatever flow it came through (an enrollment link, an
/// Apple Watch, next ADE and account-driven enrollment): profile-signer builds and signs it, the gateway
/// records the identity it carries (with the device it was issued to, when known) and trusts its CA for
/// `Mdm-Signature`, and the flow's activity entry commits with that record.
struct ProfileDelivery: Sendable {
    let database: Database
    let outbox: OutboxPublisher
    let requests: RequestClient
    let trust: DeviceTrust
    let configuration: GatewayConfiguration
    let pushTopic: @Sendable () async throws -> String?
    let requestTimeout: Duration

    struct Recipient: Sendable {
        /// What the profile is made for: the link's id, or the device's UDID.
        var subject: String
        var platform: BuildEnrollmentProfile.Platform
        /// `ServerCapabilities` of the MDM payload; nil for profile-signer's default.
        var capabilities: [String]?
        var linkID: String?
        /// The enrollment-link claim this delivery pays for: the use is spent when a device enrolls with the profile.
        var linkClaimID: String?
        /// The device the identity is issued to, when proven (a watch's MachineInfo): it serves that device only.
        var deviceID: String?
        var pairedPhone: String?
        /// Anchor certificates (DER) the profile adds (an ADE profile's `anchor_certs`).
        var extraAnchors: [Data] = []
        /// `PayloadRemovalDisallowed` (an ADE profile with `is_mdm_removable` false).
        var removalDisallowed = false
        /// Account-driven enrollment: the signed-in Managed Apple Account (the profile's `EnrollmentMode` and
        /// `AssignedManagedAppleID` follow from it); the identity's enrollment is bound to that account.
        var account: AccountBinding? = nil
    }

    /// Builds the profile and records its identity; `activity` (the flow's entry) commits with the record.
    /// Failures of profile-signer answer as `DependencyFailure` maps them; nothing is recorded then.
    /// `record` writes the flow's own state (and what it announces) in the same transaction (an ADE device's `profile pushed`,
    /// the watch's spent pairing token); what it throws undoes the whole delivery.
    func deliver(to recipient: Recipient, correlationID: String, record: (@Sendable (Connection, inout Journal) throws -> Void)? = nil,
                 activity: @escaping @Sendable (BuildEnrollmentProfile.Reply) -> ActivityRecorded) async throws -> Response {
        bytesResponse(try await signedProfile(for: recipient, correlationID: correlationID, record: record, activity: activity),
                      contentType: "application/x-apple-aspen-config")
    }

    /// As `deliver`, the signed profile's bytes (a profile handed over inside another answer: Return to Service).
    func signedProfile(for recipient: Recipient, correlationID: String, record: (@Sendable (Connection, inout Journal) throws -> Void)? = nil,
                       activity: @escaping @Sendable (BuildEnrollmentProfile.Reply) -> ActivityRecorded) async throws -> [UInt8] {
        guard let topic = try await pushTopic() else { throw refuse(.serviceUnavailable, "no push certificate is installed yet") }
        var build = BuildEnrollmentProfile(subject: recipient.subject, platform: recipient.platform, topic: topic,
                                           serverURL: configuration.serverURL, checkInURL: configuration.checkInURL,
                                           organization: configuration.organization)
        if let capabilities = recipient.capabilities { build.serverCapabilities = capabilities }
        if !recipient.extraAnchors.isEmpty { build.extraAnchors = recipient.extraAnchors }
        if recipient.removalDisallowed { build.removalDisallowed = true }
        if let account = recipient.account {
            build.enrollmentMode = account.mode == AccountEnrollmentMode.userEnrollment.rawValue ? "BYOD" : "ADDE"
            build.assignedManagedAppleID = account.managedAppleID
        }
        let reply = try await requests.request(build, timeout: requestTimeout, correlationID: correlationID)
        if let ca = reply.issuingCA { try await trust.trust(Array(ca)) }
        let capabilities = build.serverCapabilities
        try await database.transaction { c in
            if let fingerprint = reply.identityFingerprint {
                try IssuedIdentityStore.record(c, fingerprint: fingerprint, linkID: recipient.linkID,
                                               profileIdentifier: reply.removableIdentifier, capabilities: capabilities,
                                               deviceID: recipient.deviceID, pairedPhone: recipient.pairedPhone,
                                               account: recipient.account)
            }
            if let claim = recipient.linkClaimID,
               try !EnrollmentLinkStore.delivered(c, claimID: claim, identityFingerprint: reply.identityFingerprint) {
                throw refuse(.gone, "enrollment link used up or revoked")
            }
            var journal = Journal(correlationID: correlationID)
            try record?(c, &journal)
            journal.activity(activity(reply))
            try journal.write(c)
        }
        outbox.notify()
        return Array(reply.signedProfile)
    }
}
