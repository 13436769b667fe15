import Foundation
import Hummingbird
import OrchardCrypto
import OrchardSchemas
import OrchardMessaging
import OrchardStorage

/// Whether supervised iPhones may pair Apple Watches into management, and which ones. An iPhone that
/// may is served, through declarative management, the `com.apple.configuration.watch.enrollment`
/// declaration pointing at this gateway, with its anchor-certificate asset, activated by an activation.
struct WatchEnrollmentSettings: Sendable {
    enum Mode: String, Codable, Sendable { case off, allSupervised = "all-supervised", selected }

    static let configurationID = "orchard.watch-enrollment"
    static let activationID = "orchard.watch-enrollment.activation"
    static let anchorsID = "orchard.watch-enrollment.anchors"

    let database: Database
    let declarations: DeclarationService
    let outbox: OutboxPublisher
    let publicURL: String

    var enrollmentProfileURL: String { "\(publicURL)/mdm/watch/enroll" }
    var anchorsURL: String { "\(publicURL)/mdm/watch/anchors.pem" }

    /// Why an iPhone cannot pair watches into management; nil when it can.
    static func ineligibility(_ r: Row) -> String? {
        guard r.string("enrollment_kind") == "device", r.string("product_name")?.hasPrefix("iPhone") == true else {
            return "not an iPhone"
        }
        guard EnrollmentStatus(stored: r.string("status")) == .enrolled else { return "not enrolled" }
        guard r.bool("supervised") == true else { return "not supervised" }
        guard let major = r.string("os_version")?.split(separator: ".").first.flatMap({ Int($0) }), major >= 17 else {
            return "needs iOS 17 or later (has \(r.string("os_version") ?? "unknown"))"
        }
        guard (r.string("server_capabilities") ?? "").split(separator: ",").contains("com.apple.mdm.token") else {
            return "its MDM profile does not advertise com.apple.mdm.token"
        }
        return nil
    }


    struct Outcome: Sendable {
        var enabled: [String] = []
        var disabled: [String] = []
        var ineligible: [(String, String)] = []
        var push: [String] = []
    }

    /// Saves the settings and brings every iPhone's declarations in line with them.
    func save(mode: Mode, selected: [String], anchorsPEM: String?, actor: String, correlationID: String) async throws -> Outcome {
        if let anchorsPEM {
            guard (try? Certificate.parsePEM(Array(anchorsPEM.utf8)))?.isEmpty == false else {
                throw refuse(.badRequest, "anchorCertificatesPEM holds no certificate")
            }
        }
        try await publishDeclarations(anchorsPEM: anchorsPEM, actor: actor, correlationID: correlationID)
        return try await database.transaction { c in
            try WatchEnrollmentStore.save(c, mode: mode.rawValue, anchorsPEM: anchorsPEM, selected: selected)
            var journal = Journal(correlationID: correlationID)
            journal.activity(actor: actor, "watch-enrollment.configured", device: nil,
                             detail: "\(mode.rawValue)\(selected.isEmpty ? "" : ": " + selected.joined(separator: ", "))")
            let outcome = try reconcile(c, only: nil, actor: actor, journal: &journal)
            try journal.write(c)
            return outcome
        }
    }

    /// Turns watch enrollment on or off for iPhones (all, or one) to match the settings.
    func reconcile(_ c: Connection, only: String?, actor: String, journal: inout Journal) throws -> Outcome {
        let mode: Mode, selected: Set<String>, on: Set<String>
        if let only {
            // One device (its DeviceInformation answer): nothing to read beyond its own rows, and nothing to do
            // when the mode does not want it and it is not turned on.
            let scope = try WatchEnrollmentStore.scope(c, of: only)
            mode = Mode(rawValue: scope.mode ?? "off") ?? .off
            selected = scope.selected ? [only] : []
            on = scope.enabled ? [only] : []
            let wanted = mode == .allSupervised || (mode == .selected && scope.selected)
            if !wanted && !scope.enabled { return Outcome() }
        } else {
            mode = Mode(rawValue: try WatchEnrollmentStore.mode(c) ?? "off") ?? .off
            selected = try WatchEnrollmentStore.selected(c)
            on = try WatchEnrollmentStore.enabledPhones(c)
        }
        let phones = try WatchEnrollmentStore.candidatePhones(c, only: only, selected: selected, enabled: on)
        var outcome = Outcome()
        for phone in phones {
            guard let id = phone.string("id") else { continue }
            let wanted = mode == .allSupervised || (mode == .selected && selected.contains(id))
            let reason = Self.ineligibility(phone)
            if wanted, let reason {
                if mode == .selected || only != nil { outcome.ineligible.append((id, reason)) }
                if !on.contains(id) {
                    journal.activity(actor: actor, "watch-enrollment.not-eligible", device: id, outcome: .refused, detail: reason)
                }
            }
            let enable = wanted && reason == nil
            if enable && !on.contains(id) {
                try WatchEnrollmentStore.enable(c, phone: id)
                outcome.push += try declarations.change(c, add: identifiers(c), remove: [], for: id, actor: actor, journal: &journal)
                journal.activity(actor: actor, "watch-enrollment.enabled", device: id)
                outcome.enabled.append(id)
            } else if !enable && on.contains(id) {
                try WatchEnrollmentStore.disable(c, phone: id)
                outcome.push += try declarations.change(c, add: [], remove: Self.allIDs, for: id, actor: actor, journal: &journal)
                journal.activity(actor: actor, "watch-enrollment.disabled", device: id, detail: reason)
                outcome.disabled.append(id)
            }
        }
        return outcome
    }

    static let allIDs = [configurationID, activationID, anchorsID]

    private func identifiers(_ c: Connection) throws -> [String] {
        let hasAnchors = try WatchEnrollmentStore.declarationExists(c, identifier: Self.anchorsID)
        return hasAnchors ? Self.allIDs : [Self.configurationID, Self.activationID]
    }

    private func publishDeclarations(anchorsPEM: String?, actor: String, correlationID: String) async throws {
        var configuration: [String: Any] = ["EnrollmentProfileURL": enrollmentProfileURL]
        if let anchorsPEM {
            let asset: [String: Any] = [
                "Reference": ["DataURL": anchorsURL, "ContentType": "application/pem",
                              "Size": anchorsPEM.utf8.count, "Hash-SHA-256": Digest.sha256(Array(anchorsPEM.utf8)).hexString],
                "Authentication": ["Type": "None"],
            ]
            _ = try await declarations.upsert(identifier: Self.anchorsID, type: "com.apple.asset.credential.certificate",
                                              payload: json(asset), actor: actor, correlationID: correlationID)
            configuration["AnchorCertificateAssetReferences"] = [Self.anchorsID]
        }
        _ = try await declarations.upsert(identifier: Self.configurationID, type: "com.apple.configuration.watch.enrollment",
                                          payload: json(configuration), actor: actor, correlationID: correlationID)
        _ = try await declarations.upsert(identifier: Self.activationID, type: "com.apple.activation.simple",
                                          payload: json(["StandardConfigurations": [Self.configurationID]]),
                                          actor: actor, correlationID: correlationID)
    }

    /// The anchors served at `anchorsURL`.
    func anchorsPEM() async throws -> String? {
        try await WatchEnrollmentStore.anchorsPEM(database)
    }

    /// Whether an iPhone may pair a watch now (GetToken and the watch's second request check it).
    func mayPair(_ c: Connection, phone: String) throws -> String? {
        guard let row = try WatchEnrollmentStore.phone(c, id: phone) else {
            return "unknown iPhone"
        }
        if let reason = Self.ineligibility(row) { return reason }
        guard try WatchEnrollmentStore.isEnabled(c, phone: phone) else {
            return "watch enrollment is not turned on for this iPhone"
        }
        return nil
    }

    private func json(_ object: Any) -> [UInt8] {
        Array(try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]))
    }
}
