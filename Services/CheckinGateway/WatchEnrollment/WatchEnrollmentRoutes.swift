import AppleProtocol
import Foundation
import HTTPTypes
import Hummingbird
import OrchardCrypto
import OrchardSchemas
import OrchardMessaging
import OrchardStorage

/// The Apple Watch's `EnrollmentProfileURL`. The watch sends its MachineInfo, CMS-signed by its
/// Apple-issued identity (POST body, or base64 in `x-apple-aspen-deviceinfo`):
/// - without `PAIRING_TOKEN`: 403 `com.apple.watch.pairing.token.missing` with a new security token;
/// - with it: the pairing token is verified and spent, and the signed watch enrollment profile is served.
struct WatchEnrollmentRoutes: Sendable {
    let database: Database
    let outbox: OutboxPublisher
    let requests: RequestClient
    let delivery: ProfileDelivery
    let settings: WatchEnrollmentSettings
    let configuration: GatewayConfiguration
    let requestTimeout: Duration
    let machineInfo: MachineInfoAuthenticator

    func add(to router: Router<GatewayContext>) {
        router.post("mdm/watch/enroll") { request, context in
            try await enroll(request, correlationID: context.correlationID)
        }
        router.get("mdm/watch/enroll") { request, context in
            try await enroll(request, correlationID: context.correlationID)
        }
        router.get("mdm/watch/anchors.pem") { _, _ -> Response in
            guard let pem = try await settings.anchorsPEM() else { throw refuse(.notFound, "no anchor certificates configured") }
            return bytesResponse(Array(pem.utf8), contentType: "application/pem")
        }
    }

    func enroll(_ request: Request, correlationID: String) async throws -> Response {
        guard !machineInfo.roots.isEmpty else {
            throw refuse(.serviceUnavailable, "watch enrollment needs ORCHARD_APPLE_DEVICE_ROOTS")
        }
        let info: MachineInfo
        do { info = try machineInfo.verify(try await MachineInfoAuthenticator.signedBytes(request)) } catch let rejection as MachineInfoAuthenticator.Rejection {
            try await record("watch.machine-info.rejected", device: nil, outcome: .refused, detail: "\(rejection)", correlationID: correlationID)
            throw refuse(rejection.status, "\(rejection)")
        }
        guard let token = info.pairingToken else {
            let reply = try await requests.request(IssueSecurityToken(watchUDID: info.udid, watchSerialNumber: info.serial),
                                                   timeout: requestTimeout, correlationID: correlationID)
            return bytesResponse(ErrorDocument.pairingTokenMissing(securityToken: reply.securityToken).json,
                                 contentType: "application/json", status: .forbidden)
        }
        let redeemed: RedeemPairingToken.Reply
        do {
            redeemed = try await requests.request(
                RedeemPairingToken(pairingToken: String(decoding: token, as: UTF8.self), watchUDID: info.udid,
                                   organization: configuration.organization),
                timeout: requestTimeout, correlationID: correlationID)
        } catch let refusal as RequestRefused {
            return pairingRefusal(refusal.message)
        }
        let phone = redeemed.phoneUDID
        // token-service verified the token; it is spent when the profile is recorded (ProfileDelivery), so
        // a failure before that leaves it usable. A replay of a spent one is refused here, before any build.
        let spentToken = redeemed.tokenID.map { (id: $0, expiresAt: redeemed.expiresAt ?? Date().addingTimeInterval(3600)) }
        let (spent, reason) = try await database.transaction { c -> (Bool, String?) in
            (try spentToken.map { try WatchPairingStore.isSpent(c, tokenID: $0.id) } ?? false, try settings.mayPair(c, phone: phone))
        }
        if spent {
            try await record("pairing-token.rejected", device: info.udid, related: [phone], outcome: .refused,
                             detail: "pairing-token.used: the pairing token was already used", correlationID: correlationID)
            return pairingRefusal("the pairing token was already used")
        }
        if let reason {
            try await record("watch.enrollment.refused", device: info.udid, related: [phone], outcome: .refused,
                             detail: "iPhone \(phone): \(reason)", correlationID: correlationID)
            throw refuse(.forbidden, "the paired iPhone may not enroll watches: \(reason)")
        }
        // The identity is issued to this watch (its UDID is proven by the MachineInfo signature): it serves
        // this watch only, and may re-bind it if it enrolls again.
        return try await delivery.deliver(
            to: .init(subject: info.udid, platform: .watchOS, capabilities: [], deviceID: info.udid, pairedPhone: phone),
            correlationID: correlationID,
            record: { c, _ in
                // The pairing token is spent with the profile it paid for: a second delivery for it is refused.
                if let token = spentToken {
                    guard try WatchPairingStore.spend(c, tokenID: token.id, watch: info.udid, expiresAt: token.expiresAt) else {
                        throw refuse(.forbidden, "the pairing token was already used")
                    }
                }
            }) { _ in
            ActivityRecorded(actor: "device:\(info.udid)", action: "watch.enrollment-profile.served", deviceID: info.udid,
                             relatedDeviceIDs: [phone], outcome: .succeeded, detail: "\(info.product) \(info.osVersion)",
                             service: ActivityLog.service)
        }
    }

    /// The watch reads an error document, as Apple's own answers to it are.
    private func pairingRefusal(_ message: String) -> Response {
        bytesResponse(ErrorDocument(code: "orchard.watch.pairing.token.invalid", description: message, details: [:]).json,
                      contentType: "application/json", status: .forbidden)
    }

    private func record(_ action: String, device: String?, related: [String] = [], outcome: ActivityRecorded.Outcome,
                        detail: String, correlationID: String) async throws {
        var journal = Journal(correlationID: correlationID)
        journal.activity(actor: "device:\(device ?? "unknown-watch")", action, device: device, outcome: outcome, detail: detail,
                         related: related)
        try await journal.commit(to: database, outbox: outbox)
    }
}
