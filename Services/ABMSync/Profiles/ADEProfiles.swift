import Foundation
import NIOHTTP1
import OrchardCore
import OrchardCrypto
import OrchardMessaging
import OrchardSchemas
import OrchardStorage

/// ADE profiles: validated (`ProfileValidation`), defined with ABM (`POST /profile`), recorded with the
/// `orchard.abm-profiles.v1` event the gateway enrolls devices by, and assigned (`Assigner`). A profile is
/// immutable at ABM: a changed profile is a new one, made the default or assigned in its place.
struct ADEProfiles: Sendable {
    let tokens: ServerTokens
    let assigner: Assigner
    let database: Database
    let outbox: OutboxPublisher

    func define(_ r: DefineADEProfile, correlationID: String?) async throws -> ADEProfileView {
        let tokenID = try ServerTokens.canonicalID(r.tokenID)
        let checked = try ProfileValidation.check(r.profile, enrollmentURL: r.enrollmentURL)
        try ProfileValidation.checkMinimumOS(r.minimumOS)
        let session = try await tokens.session(id: tokenID)
        let answer: ABMSession.Answer
        do { answer = try await session.call(.POST, "/profile", json: checked.json) } catch let refused as ABMSession.Refused
            where refused.status == 400 {
            throw RequestRefused(code: "ade-profile.refused-by-abm", message: "ABM refused the profile: \(refused.body.prefix(300))")
        }
        guard let profileUUID = ((try? JSONSerialization.jsonObject(with: Data(answer.body))) as? [String: Any])?["profile_uuid"] as? String,
              !profileUUID.isEmpty, profileUUID.count <= 64 else {
            throw ABMSession.Refused(status: answer.status, body: "ABM's answer to POST /profile has no profile_uuid")
        }
        let id = RandomUUID.lowercased()
        let minimum = String(decoding: try JSONEncoder().encode(r.minimumOS), as: UTF8.self)
        let event = ADEProfileEvent(profileID: id, tokenID: tokenID, profileUUID: profileUUID, name: checked.name,
                                    isSupervised: checked.isSupervised, isMdmRemovable: checked.isMdmRemovable,
                                    awaitDeviceConfigured: checked.awaitDeviceConfigured, anchorCertificates: checked.anchors,
                                    minimumOS: r.minimumOS, requiresSignIn: r.requiresSignIn == true)
        try await database.transaction { c in
            try ADEProfileStore.insert(c, id: id, tokenID: tokenID, name: checked.name, profileUUID: profileUUID,
                                       body: String(decoding: checked.json, as: UTF8.self), minimumOS: minimum, definedBy: r.actor,
                                       requiresSignIn: r.requiresSignIn == true)
            if r.makeDefault { try ADEProfileStore.setDefault(c, tokenID: tokenID, profileID: id) }
            if !checked.devices.isEmpty {
                try want(c, tokenID: tokenID, profileID: id, serials: checked.devices)
            }
            try Outbox.append([event, tokens.activity(r.actor, "ade-profile.defined", detail: """
                server token \(tokenID): \(checked.name) (\(profileUUID))\(r.makeDefault ? ", the token's default" : "")\(
                checked.warnings.isEmpty ? "" : "; warnings: " + checked.warnings.joined(separator: "; "))
                """)], correlationID: correlationID, on: c)
        }
        outbox.notify()
        if r.makeDefault || !checked.devices.isEmpty {
            _ = try await assigner.assignDue(tokenID: tokenID, session: session, serials: r.makeDefault ? nil : checked.devices,
                                             actor: r.actor, correlationID: correlationID)
        }
        var defined = try await view(id)
        defined.warnings = checked.warnings.isEmpty ? nil : checked.warnings
        return defined
    }

    /// Profiles that require the sign-in page but whose event the gateway has not had with that fact (defined before
    /// the event carried it): announced again, once. Runs at start-up.
    func announceSignInRequirements() async throws {
        try await database.transaction { c in
            let rows = try ADEProfileStore.takeUnannouncedSignIn(c)
            for row in rows {
                guard let body = row.string("body"), let checked = try? ProfileValidation.check(Data(body.utf8), enrollmentURL: "") else { continue }
                let minimum = (try? JSONDecoder().decode([String: String].self, from: Data((row.string("minimum_os") ?? "{}").utf8))) ?? [:]
                try Outbox.append(ADEProfileEvent(profileID: row.string("id") ?? "", tokenID: row.string("token_id") ?? "",
                                                  profileUUID: row.string("profile_uuid") ?? "", name: row.string("name") ?? "",
                                                  isSupervised: checked.isSupervised, isMdmRemovable: checked.isMdmRemovable,
                                                  awaitDeviceConfigured: checked.awaitDeviceConfigured, anchorCertificates: checked.anchors,
                                                  minimumOS: minimum, requiresSignIn: true), correlationID: nil, on: c)
            }
        }
        outbox.notify()
    }

    /// When Apple last pushed the serial its profile (`POST /devices`), for the gateway's re-enrollment check. ABM that
    /// does not answer (after two tries: a device in Setup Assistant is waiting) is a 503 refusal.
    func profilePush(_ r: ConfirmADEProfilePush) async throws -> ConfirmADEProfilePush.Reply {
        guard (1...64).contains(r.serialNumber.count), !r.serialNumber.containsControlCharacters,
              let tokenID = try await ADEProfileStore.tokenOf(database, serial: r.serialNumber) else {
            throw RequestRefused(code: "abm-device.unknown", message: "serial \(r.serialNumber.prefix(64)) is not assigned to this MDM server",
                                 httpStatus: 404)
        }
        let answer: ABMSession.Answer
        do {
            answer = try await tokens.session(id: tokenID, attempts: 2).call(.POST, "/devices",
                                                                             json: Array(try JSONSerialization.data(withJSONObject: ["devices": [r.serialNumber]])))
        } catch let error as ABMSession.Refused {
            throw RequestRefused(code: "abm.unreachable", message: "Apple Business Manager did not confirm the device (\(error)); retry shortly",
                                 httpStatus: 503)
        } catch let error as ABMSession.TermsNotSigned {
            throw RequestRefused(code: "abm.terms", message: "\(error)", httpStatus: 503)
        }
        let devices = ((try? JSONSerialization.jsonObject(with: Data(answer.body))) as? [String: Any])?["devices"] as? [String: Any]
        guard let device = devices?[r.serialNumber] as? [String: Any] else {
            throw RequestRefused(code: "abm.unreachable", message: "Apple Business Manager's answer has no entry for the serial", httpStatus: 503)
        }
        let pushed = (device["profile_push_time"] as? String).flatMap { ISO8601.date(from: $0) }
        return .init(tokenID: tokenID, profilePushTime: pushed, profileStatus: device["profile_status"] as? String)
    }

    func list() async throws -> [ADEProfileView] {
        try await ADEProfileStore.list(database).map(Self.view)
    }

    func makeDefault(_ r: SetDefaultADEProfile, correlationID: String?) async throws -> AssignADEProfile.Reply {
        let profile = try await view(try ServerTokens.canonicalID(r.profileID))
        try await database.transaction { c in
            try ADEProfileStore.setDefault(c, tokenID: profile.tokenID, profileID: profile.id)
            try Outbox.append(tokens.activity(r.actor, "ade-profile.default", detail: """
                server token \(profile.tokenID): new devices get \(profile.name) (\(profile.profileUUID))
                """), correlationID: correlationID, on: c)
        }
        outbox.notify()
        return try await assigner.assignDue(tokenID: profile.tokenID, actor: r.actor, correlationID: correlationID)
    }

    /// Explicit serials: chosen for the profile (their cooldown ends: an administrator asked), then assigned.
    func assign(_ r: AssignADEProfile, correlationID: String?) async throws -> AssignADEProfile.Reply {
        let profile = try await view(try ServerTokens.canonicalID(r.profileID))
        let serials = Array(Set(r.serials))
        guard !serials.isEmpty, serials.count <= 100_000, serials.allSatisfy({ (1...64).contains($0.count) && !$0.containsControlCharacters })
        else { throw RequestRefused(code: "ade-profile.serials", message: "serials must list 1 to 100000 serial numbers") }
        let known = try await database.transaction { c in
            try want(c, tokenID: profile.tokenID, profileID: profile.id, serials: serials)
        }
        var reply = try await assigner.assignDue(tokenID: profile.tokenID, serials: serials, actor: r.actor, correlationID: correlationID)
        for serial in serials where !known.contains(serial) { reply.outcomes[serial] = "NOT_IN_MIRROR" }
        return reply
    }

    /// Chooses the profile for mirrored serials of its token; returns those it found.
    @discardableResult
    private func want(_ c: Connection, tokenID: String, profileID: String, serials: [String]) throws -> Set<String> {
        try ADEProfileStore.want(c, tokenID: tokenID, profileID: profileID, serials: serials)
    }

    func devices(_ r: ListABMDevices) async throws -> [ABMDeviceView] {
        let token = try r.tokenID.map(ServerTokens.canonicalID)
        return try await ADEProfileStore.devices(database, tokenID: token, after: r.after, limit: max(1, min(r.limit, 1000))).map {
            ABMDeviceView(tokenID: $0.string("token_id") ?? "", serialNumber: $0.string("serial_number") ?? "", model: $0.string("model"),
                          os: $0.string("os"), deviceFamily: $0.string("device_family"), color: $0.string("color"),
                          assetTag: $0.string("asset_tag"), description: $0.string("description"),
                          profileStatus: $0.string("profile_status"), profileUUID: $0.string("profile_uuid"),
                          deviceAssignedDate: $0.string("device_assigned_date"), deviceAssignedBy: $0.string("device_assigned_by"),
                          assignment: $0.string("assign_state") ?? "unassigned", lastOutcome: $0.string("assign_outcome"),
                          retryAfter: $0.date("assign_retry_at"), released: $0.bool("released") ?? false,
                          migrationDeadline: $0.date("mdm_migration_deadline"))
        }
    }

    /// "Check with ABM" (`POST /devices`), disown (`POST /devices/disown`) or remove the profile
    /// (`DELETE /profile/devices`), at most 1,000 serials.
    func act(_ r: ABMDeviceAction, correlationID: String?) async throws -> ABMDeviceAction.Reply {
        let tokenID = try ServerTokens.canonicalID(r.tokenID)
        guard (1...1000).contains(r.serials.count), r.serials.allSatisfy({ (1...64).contains($0.count) && !$0.containsControlCharacters })
        else { throw RequestRefused(code: "abm-devices.serials", message: "serials must list 1 to 1000 serial numbers") }
        let session = try await tokens.session(id: tokenID)
        if r.action == .activationLock { return try await activationLock(r, tokenID: tokenID, session: session, correlationID: correlationID) }
        let (method, path): (HTTPMethod, String) = switch r.action {
        case .check: (.POST, "/devices")
        case .disown: (.POST, "/devices/disown")
        case .removeProfile, .activationLock: (.DELETE, "/profile/devices")
        }
        let answer = try await session.call(method, path, json: Array(try JSONSerialization.data(withJSONObject: ["devices": r.serials])))
        let devices = ((try? JSONSerialization.jsonObject(with: Data(answer.body))) as? [String: Any])?["devices"] ?? [:]
        let text = String(decoding: try JSONSerialization.data(withJSONObject: devices, options: [.sortedKeys]), as: UTF8.self)
        if r.action == .removeProfile {
            try await profilesRemoved(tokenID: tokenID, outcomes: devices as? [String: Any] ?? [:], actor: r.actor, correlationID: correlationID)
        }
        if r.action == .disown {
            try await database.transaction { c in
                try Outbox.append(tokens.activity(r.actor, "abm-devices.disowned", detail: "server token \(tokenID): \(text.prefix(2000))"),
                                  correlationID: correlationID, on: c)
            }
            outbox.notify()
        }
        return ABMDeviceAction.Reply(devices: text)
    }

    /// `POST /device/activationlock`, one call per serial (Apple's endpoint takes one device), with the escrow key of its
    /// bypass code: each serial's `response_status` (`SUCCESS`, `NOT_ACCESSIBLE`, `ORG_NOT_SUPPORTED`, `DEVICE_NOT_SUPPORTED`,
    /// `DEVICE_ALREADY_LOCKED`, `FAILED`), or `NO_ESCROW_KEY` when none was given; one activity entry with them all.
    private func activationLock(_ r: ABMDeviceAction, tokenID: String, session: ABMSession, correlationID: String?) async throws -> ABMDeviceAction.Reply {
        var outcomes: [String: String] = [:]
        for serial in r.serials {
            guard let key = r.escrowKeys?[serial], key.count == 64, key.allSatisfy(\.isHexDigit) else { outcomes[serial] = "NO_ESCROW_KEY"; continue }
            var body: [String: Any] = ["device": serial, "escrow_key": key]
            if let message = r.lostMessage, !message.isEmpty { body["lost_message"] = String(message.prefix(200)) }
            do {
                let answer = try await session.call(.POST, "/device/activationlock", json: Array(try JSONSerialization.data(withJSONObject: body)))
                let json = (try? JSONSerialization.jsonObject(with: Data(answer.body))) as? [String: Any]
                outcomes[serial] = json?["response_status"] as? String ?? "HTTP \(answer.status)"
            } catch let refused as ABMSession.Refused where (400..<500).contains(refused.status) {
                // ABM refused this serial's request (its body names why): that serial's outcome, the others go on.
                outcomes[serial] = "REFUSED \(refused.status): \(refused.body.prefix(80))"
            }
        }
        let text = String(decoding: try JSONSerialization.data(withJSONObject: outcomes, options: [.sortedKeys]), as: UTF8.self)
        let allLocked = outcomes.values.allSatisfy { $0 == "SUCCESS" }
        try await database.transaction { c in
            try Outbox.append(tokens.activity(r.actor, "abm-devices.activation-lock", outcome: allLocked ? .succeeded : .failed,
                                              detail: "server token \(tokenID): bypass codes escrowed with ABM: \(text.prefix(2000))"),
                              correlationID: correlationID, on: c)
        }
        outbox.notify()
        return ABMDeviceAction.Reply(devices: text)
    }

    /// ABM removed the profile from the serials it answered SUCCESS for: the mirror shows `removed`, the device is kept
    /// out of default assignment, the gateway's copy learns it at once; one activity entry with every outcome.
    private func profilesRemoved(tokenID: String, outcomes answered: [String: Any], actor: String, correlationID: String?) async throws {
        let outcomes = answered.mapValues { $0 as? String ?? "\($0)" }
        let removed = outcomes.filter { $0.value == "SUCCESS" }.keys.sorted()
        let summary = outcomes.keys.sorted().prefix(50).map { "\($0) \(outcomes[$0] ?? "?")" }.joined(separator: ", ")
        try await database.transaction { c in
            let rows = try ADEProfileStore.profilesRemoved(c, tokenID: tokenID, serials: removed)
            let events = rows.map {
                ABMDeviceEvent(tokenID: tokenID, serialNumber: $0.string("serial_number") ?? "", change: .modified, model: $0.string("model"),
                               os: $0.string("os"), deviceFamily: $0.string("device_family"), profileStatus: "removed",
                               profileUUID: $0.string("profile_uuid"), opDate: nil, migrationDeadline: $0.date("mdm_migration_deadline"))
            }
            try Outbox.append(events.map { $0 as any MessageSchema }, correlationID: correlationID, on: c)
            try Outbox.append(tokens.activity(actor, "ade-profile.removed", outcome: removed.count == outcomes.count ? .succeeded : .failed,
                                              detail: "server token \(tokenID): \(removed.count) of \(outcomes.count) removed at ABM: \(summary)\(outcomes.count > 50 ? " …" : "")"),
                              correlationID: correlationID, on: c)
        }
        outbox.notify()
    }

    private func view(_ id: String) async throws -> ADEProfileView {
        guard let row = try await ADEProfileStore.find(database, id: id) else {
            throw RequestRefused(code: "ade-profile.unknown", message: "no ADE profile \(id)", httpStatus: 404)
        }
        return Self.view(row)
    }

    private static func view(_ row: Row) -> ADEProfileView {
        ADEProfileView(id: row.string("id") ?? "", tokenID: row.string("token_id") ?? "", name: row.string("name") ?? "",
                       profileUUID: row.string("profile_uuid") ?? "", profile: row.string("body") ?? "{}",
                       minimumOS: (try? JSONDecoder().decode([String: String].self, from: Data((row.string("minimum_os") ?? "{}").utf8))) ?? [:],
                       isDefault: row.bool("is_default") ?? false, definedAt: row.date("defined_at") ?? Date(),
                       requiresSignIn: row.bool("requires_sign_in") ?? false)
    }
}
