import AppleProtocol
import Foundation
import HTTPTypes
import Hummingbird
import OrchardCore
import OrchardMessaging
import OrchardSchemas
import OrchardServiceKit
import OrchardStorage

/// The ADE profile's `url` (and `configuration_web_url`): during Setup Assistant the device POSTs its
/// CMS-signed MachineInfo, or GETs with it in `x-apple-aspen-deviceinfo` (REFERENCE §4.6). The serial must be
/// in the gateway's copy of the ABM mirror with one of Orchard's profiles assigned; otherwise 403 with a JSON
/// reason. Below the profile's minimum OS, a device that allows it is told `com.apple.softwareupdate.required`.
/// A profile that requires the sign-in page gets no profile here (403 `orchard.ade.sign-in-required`): only the sign-in's
/// POST (`ADESignInRoutes`) serves it. A second identity for an enrolled serial needs ABM to show a newer profile push,
/// or an administrator's allowance (`ADEReenrollment`). The profile is served with the ADE profile's anchors and
/// removability, its identity bound to the UDID.
struct ADEEnrollmentRoutes: Sendable {
    let database: Database
    let outbox: OutboxPublisher
    let delivery: ProfileDelivery
    let machineInfo: MachineInfoAuthenticator
    let reenrollment: ADEReenrollment
    /// Verifies a Platform SSO token (the identity provider's, through user-enrollment-auth).
    let accounts: AccountAuthorization
    /// The TLS terminator's header naming the client address (`ORCHARD_FORWARDED_FOR_HEADER`), when there is one.
    let forwardedFor: HTTPField.Name?
    /// Activity entries of refusals per minute: per client address before the MachineInfo's signature is checked, per
    /// device after (a captured MachineInfo can be sent again and again; devices behind one address each have their own).
    /// The answers are never limited.
    let budget = ActivityBudget(limit: 30)

    func add(to router: Router<GatewayContext>) {
        router.post("mdm/ade/enroll") { request, context in try await enroll(request, context: context) }
        router.get("mdm/ade/enroll") { request, context in try await enroll(request, context: context) }
    }

    func enroll(_ request: Request, context: GatewayContext) async throws -> Response {
        let correlationID = context.correlationID
        switch try await admit(try await signedMachineInfo(request, context: context), correlationID: correlationID,
                               address: context.clientAddress(request, forwardedFor: forwardedFor)) {
        case .refused(let answer): return answer
        case .admitted(let admitted):
            if let psso = try await platformSSORequirement(admitted) {
                if let answer = try await platformSSO(psso, admitted, request: request, correlationID: correlationID) { return answer }
            }
            guard !admitted.profile.requiresSignIn else {
                return try await refusal(admitted.info, "orchard.ade.sign-in-required", """
                    serial \(admitted.info.serial)'s enrollment profile \(admitted.profile.name) requires signing in: the profile is \
                    served by its configuration_web_url, \(ADESignInRoutes.path), after a sign-in
                    """, correlationID, address: admitted.address)
            }
            return try await serve(admitted, actor: "device:\(admitted.info.udid)", correlationID: correlationID)
        }
    }

    /// A Mac whose profile requires Platform SSO: with a good token of the domain's identity provider, its profile;
    /// able to do Platform SSO, `com.apple.psso.required`; otherwise the profile's fallback (nil: go on as without
    /// Platform SSO, to the sign-in page).
    private func platformSSO(_ psso: ADEPlatformSSO, _ admitted: Admitted, request: Request, correlationID: String) async throws -> Response? {
        let info = admitted.info
        func required(_ detail: String) async throws -> Response {
            try await record(info, "ade.platform-sso.required", outcome: .refused, detail: "\(info.serial): \(detail)",
                             correlationID: correlationID, address: admitted.address)
            return bytesResponse(psso.required.json, contentType: "application/json", status: .forbidden)
        }
        switch try await accounts.judge(request, domain: psso.domain, correlationID: correlationID) {
        case .refused(let why):
            // Told to authenticate again: the device can, and a refused token gets no profile.
            return try await required("Platform SSO token refused (\(why))")
        case .accepted(let user):
            return try await serve(admitted, actor: "user:\(user)", correlationID: correlationID)
        case .missing:
            break
        }
        if info.canRequestPlatformSSO {
            return try await required("profile \(admitted.profile.name) requires Platform SSO; the Mac can (macOS \(info.osVersion))")
        }
        switch psso.fallback {
        case "refuse":
            return try await refusal(info, "orchard.ade.platform-sso-unsupported", """
                serial \(info.serial)'s enrollment profile \(admitted.profile.name) requires Platform SSO during setup, which needs macOS 26 \
                or later; this Mac runs \(info.osVersion.isEmpty ? "an older macOS" : "macOS \(info.osVersion)")
                """, correlationID, address: admitted.address)
        default:
            return nil
        }
    }

    /// The Platform SSO requirement of a Mac's ADE profile; nil for other devices and profiles without one.
    private func platformSSORequirement(_ admitted: Admitted) async throws -> ADEPlatformSSO? {
        guard Self.platform(product: admitted.info.product) == .macOS,
              let text = try await ADEStore.platformSSO(database, profileID: admitted.profile.profileID) else { return nil }
        return try? JSONDecoder().decode(ADEPlatformSSO.self, from: Data(text.utf8))
    }

    /// The sign-in page's check: a Mac whose profile requires Platform SSO with the fallback `refuse` may not sign in
    /// there instead (the refusal); nil otherwise.
    func platformSSOOnly(_ admitted: Admitted, correlationID: String) async throws -> Response? {
        guard let psso = try await platformSSORequirement(admitted), psso.fallback == "refuse" else { return nil }
        return try await refusal(admitted.info, "orchard.ade.platform-sso-only", """
            serial \(admitted.info.serial)'s enrollment profile \(admitted.profile.name) requires Platform SSO: Macs do not sign in on this page
            """, correlationID, address: admitted.address)
    }

    /// A device that may have its profile: who it is, the ADE profile assigned to it, and a note for the log.
    struct Admitted: Sendable {
        let info: MachineInfo
        let profile: ADEStore.Profile
        let note: String
        /// The client's address (the refusals' activity budget).
        let address: String
    }

    enum Admission: Sendable {
        case admitted(Admitted)
        /// The answer the device gets instead (403 with a JSON reason, or `com.apple.softwareupdate.required`).
        case refused(Response)
    }

    /// The signed MachineInfo of the request (POST body or `x-apple-aspen-deviceinfo`); 400/403 when missing or untrusted.
    func signedMachineInfo(_ request: Request, context: GatewayContext) async throws -> [UInt8] {
        guard !machineInfo.roots.isEmpty else { throw refuse(.serviceUnavailable, "ADE enrollment needs ORCHARD_APPLE_DEVICE_ROOTS") }
        do { return try await MachineInfoAuthenticator.signedBytes(request) } catch let rejection as MachineInfoAuthenticator.Rejection {
            try await record(nil, "ade.enrollment.refused", outcome: .refused, detail: "\(rejection)", correlationID: context.correlationID,
                             address: context.clientAddress(request, forwardedFor: forwardedFor))
            throw refuse(rejection.status, "\(rejection)")
        }
    }

    /// Verifies the signed MachineInfo and decides whether the device may have its profile.
    func admit(_ signed: [UInt8], correlationID: String, address: String) async throws -> Admission {
        let info: MachineInfo
        do { info = try machineInfo.verify(signed) } catch let rejection as MachineInfoAuthenticator.Rejection {
            try await record(nil, "ade.enrollment.refused", outcome: .refused, detail: "\(rejection)", correlationID: correlationID, address: address)
            throw refuse(rejection.status, "\(rejection)")
        }
        guard !info.serial.isEmpty, info.serial.count <= 64, !info.serial.containsControlCharacters else {
            throw refuse(.badRequest, "malformed MachineInfo: SERIAL")
        }
        guard let assignment = try await ADEStore.assignment(database, serial: info.serial), !assignment.released else {
            return .refused(try await refusal(info, "orchard.ade.device-unknown",
                                              "serial \(info.serial) is not assigned to this MDM server in Apple Business Manager",
                                              correlationID, address: address))
        }
        guard let profile = assignment.profile, ["assigned", "pushed"].contains(assignment.profileStatus ?? "") else {
            return .refused(try await refusal(info, "orchard.ade.profile-not-assigned", """
                serial \(info.serial) has no Orchard enrollment profile assigned in Apple Business Manager \
                (profile status \(assignment.profileStatus ?? "empty"))
                """, correlationID, address: address))
        }
        let platform = Self.platform(product: info.product)
        var note = ""
        if let minimum = profile.minimumOS[platform == .macOS ? "macOS" : "iOS"], !info.osVersion.isEmpty,
           OSVersion.compare(info.osVersion, minimum) == .orderedAscending {
            if info.canRequestSoftwareUpdate {
                try await record(info, "ade.enrollment.update-required", outcome: .refused,
                                 detail: "\(info.serial) runs \(info.osVersion); profile \(profile.name) requires \(minimum)",
                                 correlationID: correlationID, address: address)
                return .refused(bytesResponse(ErrorDocument.softwareUpdateRequired(osVersion: minimum).json, contentType: "application/json",
                                              status: .forbidden))
            }
            // It cannot be asked to update during Setup Assistant: it enrolls, and the log says so.
            note = " (below the minimum \(minimum); the device cannot be asked to update during setup)"
        }
        return .admitted(Admitted(info: info, profile: profile, note: note, address: address))
    }

    /// The signed profile for an admitted device, its identity bound to the UDID, the device `profile pushed`; for a
    /// serial that is enrolled already, only when `ADEReenrollment` accepts a second identity.
    func serve(_ admitted: Admitted, actor: String, correlationID: String) async throws -> Response {
        let info = admitted.info, profile = admitted.profile, note = admitted.note
        let serial = info.serial, udid = info.udid
        let decision = try await reenrollment.decide(info, correlationID: correlationID)
        if case .refused(let reason) = decision {
            return try await reenrollment.refusal(info, reason: reason, correlationID: correlationID, recorded: budget.allow("device:\(udid)"))
        }
        return try await delivery.deliver(
            to: .init(subject: udid, platform: Self.platform(product: info.product), deviceID: udid, extraAnchors: profile.anchors,
                      removalDisallowed: !profile.isMdmRemovable),
            correlationID: correlationID,
            record: { c, journal in
                try reenrollment.accept(decision, info, in: c, journal: &journal)
                try ADEStore.profileServed(c, udid: udid, serial: serial, profileUUID: profile.profileUUID)
            }) { _ in
            ActivityRecorded(actor: actor, action: "ade.enrollment-profile.served", deviceID: udid, relatedDeviceIDs: [],
                             outcome: .succeeded,
                             detail: "serial \(serial), \(info.product) \(info.osVersion), profile \(profile.name)\(note)",
                             service: ActivityLog.service)
        }
    }

    /// iPhone, iPad, iPod and Apple TV take the iOS profile; Macs (Mac…, iMac…, MacBook…, VirtualMac…) the macOS one.
    static func platform(product: String) -> BuildEnrollmentProfile.Platform {
        product.hasPrefix("Mac") || product.hasPrefix("iMac") || product.hasPrefix("VirtualMac") ? .macOS : .iOS
    }

    private func refusal(_ info: MachineInfo, _ code: String, _ message: String, _ correlationID: String, address: String) async throws -> Response {
        try await record(info, "ade.enrollment.refused", outcome: .refused, detail: "\(code): \(message)", correlationID: correlationID,
                         address: address)
        return bytesResponse(ErrorDocument(code: code, description: message, details: [:]).json, contentType: "application/json",
                             status: .forbidden)
    }

    /// An activity entry of its own; a refusal's only within the budget of its device, or of its client address when
    /// the request proved no device (a flood of bad requests must not become as many rows).
    func record(_ info: MachineInfo?, _ action: String, outcome: ActivityRecorded.Outcome, detail: String,
                correlationID: String, address: String) async throws {
        guard outcome != .refused || budget.allow(info.map { "device:\($0.udid)" } ?? "address:\(address)") else { return }
        var journal = Journal(correlationID: correlationID)
        journal.activity(actor: "device:\(info?.udid ?? "unknown")", action, device: info?.udid, outcome: outcome, detail: detail)
        try await journal.commit(to: database, outbox: outbox)
    }
}
