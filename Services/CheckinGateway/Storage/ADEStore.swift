import Foundation
import OrchardCore
import OrchardSchemas
import OrchardStorage

/// Where an ADE device is in its enrollment (`ade_enrollments.state`, and the `ade.<state>` activity entries): its
/// profile given, enrolled (first TokenUpdate), its setup items running, released (DeviceConfigured, or nothing to
/// wait for), or failed.
enum ADESetupState: String, Sendable {
    case profilePushed = "profile pushed"
    case enrolled
    case settingUp = "setting up"
    case released
    case failed
}

/// Every statement on the ADE tables: the copy of abm-sync's devices and profiles, each ADE device's way
/// from `profile pushed` to `released`, and the setup items of each ADE profile.
enum ADEStore {
    /// What the ADE endpoint needs to decide about a serial: its device row and the profile ABM shows on it.
    struct Assignment: Sendable {
        let serial: String
        let released: Bool
        let profileUUID: String?
        let profileStatus: String?
        /// Nil: the profile on the device is not one of Orchard's (or not known to the gateway yet).
        let profile: Profile?
    }

    struct Profile: Sendable {
        let profileUUID: String, profileID: String, name: String
        let isMdmRemovable: Bool, awaitDeviceConfigured: Bool
        /// Only the sign-in page's successful POST hands out the profile (its `configuration_web_url` is that page).
        let requiresSignIn: Bool
        let anchors: [Data]
        let minimumOS: [String: String]
    }

    // MARK: The copy of abm-sync's events

    static func apply(_ c: Connection, _ e: ABMDeviceEvent) throws { try apply(c, devices: [e]) }

    /// Several events in one statement per run of distinct serials (one row cannot be upserted twice in a statement;
    /// a serial's later event goes in the next statement, so events of a serial still apply in order).
    static func apply(_ c: Connection, devices events: [ABMDeviceEvent]) throws {
        var start = events.startIndex
        while start < events.endIndex {
            var serials: Set<String> = []
            var end = start
            while end < events.endIndex, serials.insert(events[end].serialNumber).inserted { end += 1 }
            try upsert(c, events[start..<end])
            start = end
        }
        try leftABM(c, serials: events.filter { $0.change == .deleted }.map(\.serialNumber))
    }

    /// Enrollments of devices ABM no longer lists for this server: marked (once), with an activity entry each; nothing is
    /// deleted, and a device still checking in goes on until it checks out or enrolls elsewhere.
    private static func leftABM(_ c: Connection, serials: [String]) throws {
        guard !serials.isEmpty else { return }
        let rows = try c.query("""
            UPDATE enrollments SET left_abm_at = now()
            WHERE serial_number = ANY($1::text[]) AND left_abm_at IS NULL AND status IN ('\(EnrollmentStatus.pending.rawValue)', '\(EnrollmentStatus.enrolled.rawValue)')
            RETURNING id, serial_number
            """, [.text(postgresArray(serials))])
        guard !rows.isEmpty else { return }
        var journal = Journal(correlationID: RandomUUID.lowercased())
        for row in rows {
            guard let id = row.string("id") else { continue }
            journal.activity(actor: "service:\(ActivityLog.service)", "ade.device.left-abm", device: id, outcome: .succeeded,
                             detail: "serial \(row.string("serial_number") ?? ""): Apple Business Manager no longer assigns it to this server "
                                + "(moved to another MDM server, or disowned); its enrollment and history stay, its CheckOut may never come")
        }
        try journal.write(c)
    }

    private static func upsert(_ c: Connection, _ events: ArraySlice<ABMDeviceEvent>) throws {
        var rows: [String] = [], parameters: [SQLValue] = []
        for e in events {
            let n = parameters.count
            rows.append("(" + (1...9).map { "$\(n + $0)" }.joined(separator: ", ") + ")")
            parameters += [.text(e.serialNumber), .text(e.tokenID), .optionalText(e.profileUUID), .optionalText(e.profileStatus),
                           .optionalText(e.model), .optionalText(e.os), .optionalText(e.deviceFamily), .bool(e.change == .deleted),
                           e.migrationDeadline.map(SQLValue.timestamp) ?? .null]
        }
        try c.query("""
            INSERT INTO ade_devices (serial_number, token_id, profile_uuid, profile_status, model, os, device_family, released,
                                     migration_deadline)
            VALUES \(rows.joined(separator: ", "))
            ON CONFLICT (serial_number) DO UPDATE SET token_id = EXCLUDED.token_id,
                profile_uuid = CASE WHEN EXCLUDED.released THEN ade_devices.profile_uuid ELSE EXCLUDED.profile_uuid END,
                profile_status = CASE WHEN EXCLUDED.released THEN ade_devices.profile_status ELSE EXCLUDED.profile_status END,
                model = COALESCE(EXCLUDED.model, ade_devices.model), os = COALESCE(EXCLUDED.os, ade_devices.os),
                device_family = COALESCE(EXCLUDED.device_family, ade_devices.device_family), released = EXCLUDED.released,
                migration_deadline = EXCLUDED.migration_deadline, updated_at = now()
            """, parameters)
    }

    static func apply(_ c: Connection, _ e: ADEProfileEvent) throws {
        let anchors = String(decoding: try JSONEncoder().encode(e.anchorCertificates), as: UTF8.self)
        let minimum = String(decoding: try JSONEncoder().encode(e.minimumOS), as: UTF8.self)
        try c.query("""
            INSERT INTO ade_profiles (profile_uuid, profile_id, token_id, name, is_supervised, is_mdm_removable, await_device_configured,
                                      anchors, minimum_os, requires_sign_in)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
            ON CONFLICT (profile_uuid) DO UPDATE SET profile_id = EXCLUDED.profile_id, token_id = EXCLUDED.token_id, name = EXCLUDED.name,
                is_supervised = EXCLUDED.is_supervised, is_mdm_removable = EXCLUDED.is_mdm_removable,
                await_device_configured = EXCLUDED.await_device_configured, anchors = EXCLUDED.anchors, minimum_os = EXCLUDED.minimum_os,
                requires_sign_in = EXCLUDED.requires_sign_in, updated_at = now()
            """, [.text(e.profileUUID), .text(e.profileID), .text(e.tokenID), .text(e.name), .bool(e.isSupervised),
                  .bool(e.isMdmRemovable), .bool(e.awaitDeviceConfigured), .text(anchors), .text(minimum), .bool(e.requiresSignIn == true)])
    }

    static func assignment(_ database: Database, serial: String) async throws -> Assignment? {
        guard let row = try await database.query("""
            SELECT d.serial_number, d.released, d.profile_uuid, d.profile_status, p.profile_id, p.name, p.is_mdm_removable,
                   p.await_device_configured, p.anchors, p.minimum_os, p.requires_sign_in
            FROM ade_devices d LEFT JOIN ade_profiles p ON p.profile_uuid = d.profile_uuid WHERE d.serial_number = $1
            """, [.text(serial)]).first else { return nil }
        let profile = row.string("profile_id").map { id in
            Profile(profileUUID: row.string("profile_uuid") ?? "", profileID: id, name: row.string("name") ?? "",
                    isMdmRemovable: row.bool("is_mdm_removable") ?? true, awaitDeviceConfigured: row.bool("await_device_configured") ?? false,
                    requiresSignIn: row.bool("requires_sign_in") ?? false,
                    anchors: (try? JSONDecoder().decode([Data].self, from: Data((row.string("anchors") ?? "[]").utf8))) ?? [],
                    minimumOS: (try? JSONDecoder().decode([String: String].self, from: Data((row.string("minimum_os") ?? "{}").utf8))) ?? [:])
        }
        return Assignment(serial: serial, released: row.bool("released") ?? false, profileUUID: row.string("profile_uuid"),
                          profileStatus: row.string("profile_status"), profile: profile)
    }

    // MARK: Each ADE device's state

    /// The profile was served: the device is `profile pushed` (again, if it enrolls anew).
    static func profileServed(_ c: Connection, udid: String, serial: String, profileUUID: String) throws {
        try c.execute("""
            INSERT INTO ade_enrollments (udid, serial_number, profile_uuid, state) VALUES ($1, $2, $3, 'profile pushed')
            ON CONFLICT (udid) DO UPDATE SET serial_number = EXCLUDED.serial_number, profile_uuid = EXCLUDED.profile_uuid,
                state = 'profile pushed', reason = NULL, setup_deadline = NULL, release_command = NULL, updated_at = now()
            """, [.text(udid), .text(serial), .text(profileUUID)])
        try c.execute("DELETE FROM ade_setup_commands WHERE udid = $1", [.text(udid)])
    }

    struct Enrollment: Sendable {
        let udid: String, serial: String, profileUUID: String, state: ADESetupState?
        let awaitConfigured: Bool
        let releaseCommand: String?
    }

    static func enrollment(_ c: Connection, udid: String, lock: Bool = false) throws -> Enrollment? {
        try c.query("""
            SELECT udid, serial_number, profile_uuid, state, await_configured, release_command FROM ade_enrollments WHERE udid = $1
            \(lock ? "FOR UPDATE" : "")
            """, [.text(udid)]).first.map { enrollment($0, udid: udid) }
    }

    private static func enrollment(_ row: Row, udid: String) -> Enrollment {
        Enrollment(udid: row.string("udid") ?? udid, serial: row.string("serial_number") ?? "", profileUUID: row.string("profile_uuid") ?? "",
                   state: row.string("state").flatMap(ADESetupState.init(rawValue:)), awaitConfigured: row.bool("await_configured") ?? false,
                   releaseCommand: row.string("release_command"))
    }

    static func setState(_ c: Connection, udid: String, _ state: ADESetupState, reason: String? = nil, awaitConfigured: Bool? = nil,
                         deadline: Date? = nil, releaseCommand: String? = nil) throws {
        try c.execute("""
            UPDATE ade_enrollments SET state = $2, reason = $3, await_configured = COALESCE($4, await_configured),
                   setup_deadline = COALESCE($5, setup_deadline), release_command = COALESCE($6, release_command), updated_at = now()
            WHERE udid = $1
            """, [.text(udid), .text(state.rawValue), .optionalText(reason), awaitConfigured.map(SQLValue.bool) ?? .null,
                  deadline.map(SQLValue.timestamp) ?? .null, .optionalText(releaseCommand)])
        if state == .released {
            // Out of Setup Assistant: the device no longer awaits configuration (until a TokenUpdate says otherwise).
            try c.execute("UPDATE enrollments SET awaiting_configuration = false WHERE id = $1 AND awaiting_configuration", [.text(udid)])
        }
    }

    /// What the setup of an ADE device starts from, in one statement: its ADE enrollment (locked), the profile it was
    /// served (its settings at the time of setup) and that profile's setup items.
    struct SetupStart: Sendable {
        let enrollment: Enrollment
        let profile: (profileID: String, awaitDeviceConfigured: Bool)?
        let items: (commands: String, declarations: [String])
    }

    static func setupStart(_ c: Connection, udid: String) throws -> SetupStart? {
        guard let row = try c.query("""
            SELECT e.udid, e.serial_number, e.profile_uuid, e.state, e.await_configured, e.release_command,
                   p.profile_id, p.await_device_configured, i.commands, i.declarations
            FROM ade_enrollments e LEFT JOIN ade_profiles p ON p.profile_uuid = e.profile_uuid
                 LEFT JOIN ade_setup_items i ON i.profile_id = p.profile_id
            WHERE e.udid = $1 FOR UPDATE OF e
            """, [.text(udid)]).first else { return nil }
        let profile = row.string("profile_id").map { ($0, row.bool("await_device_configured") ?? false) }
        return SetupStart(enrollment: enrollment(row, udid: udid), profile: profile, items: profile == nil ? ("[]", []) : items(row))
    }

    // MARK: Re-enrollment

    /// The enrolled enrollment (TokenUpdate received) of this UDID, or of another UDID that enrolled through ADE with
    /// this serial, and when its current identity was bound (first authenticated): what a second identity would replace.
    static func enrolledIdentity(_ database: Database, udid: String, serial: String) async throws -> (id: String, boundAt: Date)? {
        try await database.query("""
            SELECT e.id, b.bound_at FROM enrollments e JOIN identity_bindings b ON b.fingerprint = e.identity_fingerprint
            WHERE e.status = '\(EnrollmentStatus.enrolled.rawValue)'
              AND (e.id = $1 OR e.id IN (SELECT udid FROM ade_enrollments WHERE serial_number = $2))
            ORDER BY b.bound_at DESC LIMIT 1
            """, [.text(udid), .text(serial)]).first.flatMap { row in
            row.string("id").map { ($0, row.date("bound_at") ?? Date()) }
        }
    }

    /// Who allowed `serial` to re-enroll once without a new profile push, while the allowance lasts.
    static func reenrollmentAllowance(_ database: Database, serial: String) async throws -> String? {
        try await database.query("""
            SELECT allowed_by FROM ade_reenrollment_allowances WHERE serial_number = $1 AND expires_at > now()
            """, [.text(serial)]).first?.string("allowed_by")
    }

    static func allowReenrollment(_ c: Connection, serial: String, by actor: String, for lifetime: TimeInterval) throws -> Date {
        try c.query("""
            INSERT INTO ade_reenrollment_allowances (serial_number, allowed_by, expires_at) VALUES ($1, $2, now() + make_interval(secs => $3))
            ON CONFLICT (serial_number) DO UPDATE SET allowed_by = EXCLUDED.allowed_by, allowed_at = now(), expires_at = EXCLUDED.expires_at
            RETURNING expires_at
            """, [.text(serial), .text(actor), .int(Int(lifetime))]).first?.date("expires_at") ?? Date()
    }

    /// Spends the allowance; false when another request spent it first (or it expired).
    static func spendReenrollmentAllowance(_ c: Connection, serial: String) throws -> Bool {
        !(try c.query("DELETE FROM ade_reenrollment_allowances WHERE serial_number = $1 AND expires_at > now() RETURNING 1",
                      [.text(serial)])).isEmpty
    }

    // MARK: Platform SSO

    /// The profile's Platform SSO requirement, as JSON; nil when it has none.
    static func platformSSO(_ database: Database, profileID: String) async throws -> String? {
        try await database.query("SELECT settings FROM ade_platform_sso WHERE profile_id = $1", [.text(profileID)]).first?.string("settings")
    }

    static func savePlatformSSO(_ c: Connection, profileID: String, settings: String, actor: String) throws {
        try c.query("""
            INSERT INTO ade_platform_sso (profile_id, settings, updated_by) VALUES ($1, $2, $3)
            ON CONFLICT (profile_id) DO UPDATE SET settings = EXCLUDED.settings, updated_by = EXCLUDED.updated_by, updated_at = now()
            """, [.text(profileID), .text(settings), .text(actor)])
    }

    static func deletePlatformSSO(_ c: Connection, profileID: String) throws -> Bool {
        !(try c.query("DELETE FROM ade_platform_sso WHERE profile_id = $1 RETURNING 1", [.text(profileID)])).isEmpty
    }

    /// Whether Orchard has the profile (by its own id), and whether it requires the sign-in page; nil when unknown.
    static func profileRequiresSignIn(_ c: Connection, profileID: String) throws -> Bool? {
        try c.query("SELECT requires_sign_in FROM ade_profiles WHERE profile_id = $1 LIMIT 1", [.text(profileID)]).first?.bool("requires_sign_in")
    }

    // MARK: Return to Service

    /// What a return to service of enrollment `udid` needs: its serial, its ADE profile (Orchard's id), whether that
    /// profile uses the sign-in page, whether Orchard has return-to-service settings for it (and their Wi-Fi profile),
    /// and the sealed bootstrap token. nil when the enrollment is not an ADE device Orchard knows.
    struct ReturnToServiceContext: Sendable {
        let serial: String
        let profileID: String
        let requiresSignIn: Bool
        let configured: Bool
        let wifiProfile: [UInt8]?
        let sealedBootstrapToken: [UInt8]?
        let supervised: Bool
    }

    static func returnToServiceContext(_ c: Connection, enrollmentID: String) throws -> ReturnToServiceContext? {
        guard let row = try c.query("""
            SELECT e.serial_number, e.sealed_bootstrap_token, COALESCE(e.supervised, false) AS supervised, p.profile_id, p.requires_sign_in,
                   r.profile_id IS NOT NULL AS configured, r.wifi_profile
            FROM enrollments e JOIN ade_devices d ON d.serial_number = e.serial_number
                 JOIN ade_profiles p ON p.profile_uuid = d.profile_uuid
                 LEFT JOIN ade_return_to_service r ON r.profile_id = p.profile_id
            WHERE e.id = $1
            """, [.text(enrollmentID)]).first, let serial = row.string("serial_number"), let profileID = row.string("profile_id") else { return nil }
        return ReturnToServiceContext(serial: serial, profileID: profileID, requiresSignIn: row.bool("requires_sign_in") ?? false,
                                      configured: row.bool("configured") ?? false, wifiProfile: row.bytes("wifi_profile"),
                                      sealedBootstrapToken: row.bytes("sealed_bootstrap_token"), supervised: row.bool("supervised") ?? false)
    }

    static func saveReturnToService(_ c: Connection, profileID: String, wifiProfile: [UInt8]?, actor: String) throws {
        try c.query("""
            INSERT INTO ade_return_to_service (profile_id, wifi_profile, updated_by) VALUES ($1, $2, $3)
            ON CONFLICT (profile_id) DO UPDATE SET wifi_profile = EXCLUDED.wifi_profile, updated_by = EXCLUDED.updated_by, updated_at = now()
            """, [.text(profileID), wifiProfile.map(SQLValue.bytes) ?? .null, .text(actor)])
    }

    static func returnToService(_ database: Database, profileID: String) async throws -> Row? {
        try await database.query("SELECT wifi_profile, updated_by, updated_at FROM ade_return_to_service WHERE profile_id = $1",
                                 [.text(profileID)]).first
    }

    static func deleteReturnToService(_ c: Connection, profileID: String) throws -> Bool {
        !(try c.query("DELETE FROM ade_return_to_service WHERE profile_id = $1 RETURNING 1", [.text(profileID)])).isEmpty
    }

    // MARK: Setup items

    private static func items(_ row: Row) -> (commands: String, declarations: [String]) {
        (row.string("commands") ?? "[]",
         (try? JSONDecoder().decode([String].self, from: Data((row.string("declarations") ?? "[]").utf8))) ?? [])
    }

    static func saveSetupItems(_ c: Connection, profileID: String, commands: String, declarations: [String], actor: String) throws {
        try c.query("""
            INSERT INTO ade_setup_items (profile_id, commands, declarations, updated_by) VALUES ($1, $2, $3, $4)
            ON CONFLICT (profile_id) DO UPDATE SET commands = EXCLUDED.commands, declarations = EXCLUDED.declarations,
                updated_by = EXCLUDED.updated_by, updated_at = now()
            """, [.text(profileID), .text(commands),
                  .text(String(decoding: try JSONEncoder().encode(declarations), as: UTF8.self)), .text(actor)])
    }

    static func trackSetupCommand(_ c: Connection, udid: String, uuid: String, requestType: String) throws {
        try c.execute("INSERT INTO ade_setup_commands (udid, command_uuid, request_type) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                    [.text(udid), .text(uuid), .text(requestType)])
    }

    /// Records a setup command's final status; returns how many are still open, or nil if it was not a setup item.
    static func setupCommandFinished(_ c: Connection, udid: String, uuid: String, status: String) throws -> Int? {
        // One statement: the count reads the rows as they were before the UPDATE (one snapshot), so the row it finished
        // is taken off.
        let row = try c.query("""
            WITH finished AS (
                UPDATE ade_setup_commands SET status = $3 WHERE udid = $1 AND command_uuid = $2 AND status IS NULL RETURNING 1)
            SELECT (SELECT count(*)::int FROM finished) AS finished,
                   (SELECT count(*)::int FROM ade_setup_commands WHERE udid = $1 AND status IS NULL) AS open
            """, [.text(udid), .text(uuid), .text(status)]).first
        guard let finished = row?.int("finished"), finished > 0 else { return nil }
        return (row?.int("open") ?? finished) - finished
    }

    static func setupSummary(_ c: Connection, udid: String) throws -> (done: Int, failed: Int, open: Int) {
        let row = try c.query("""
            SELECT count(*) FILTER (WHERE status = 'Acknowledged')::int AS done,
                   count(*) FILTER (WHERE status IS NOT NULL AND status <> 'Acknowledged')::int AS failed,
                   count(*) FILTER (WHERE status IS NULL)::int AS open
            FROM ade_setup_commands WHERE udid = $1
            """, [.text(udid)]).first
        return (row?.int("done") ?? 0, row?.int("failed") ?? 0, row?.int("open") ?? 0)
    }

    /// Devices still setting up past their deadline (locked: one gateway replica releases each).
    static func overdue(_ c: Connection, limit: Int = 100) throws -> [String] {
        try c.query("""
            SELECT udid FROM ade_enrollments WHERE state = 'setting up' AND release_command IS NULL AND setup_deadline < now()
            ORDER BY setup_deadline LIMIT $1 FOR UPDATE SKIP LOCKED
            """, [.int(limit)]).compactMap { $0.string("udid") }
    }

    // MARK: Admin

    /// The copy of ABM's devices with each one's ADE state: `assigned` (to one of Orchard's profiles) until
    /// the device asks for its profile, then its enrollment's state.
    static func list(_ database: Database, after: String, limit: Int) async throws -> [Row] {
        try await database.query("""
            SELECT d.serial_number, d.token_id, d.profile_uuid, d.profile_status, d.model, d.os, d.device_family, d.released,
                   d.migration_deadline, p.name AS profile_name, e.udid, e.reason, e.updated_at AS state_since,
                   CASE WHEN e.state IS NOT NULL THEN e.state WHEN d.released THEN 'released by ABM'
                        WHEN p.profile_uuid IS NOT NULL AND d.profile_status IN ('assigned', 'pushed') THEN 'assigned'
                        ELSE 'unassigned' END AS state
            FROM ade_devices d LEFT JOIN ade_profiles p ON p.profile_uuid = d.profile_uuid
            LEFT JOIN LATERAL (SELECT * FROM ade_enrollments x WHERE x.serial_number = d.serial_number
                               ORDER BY x.updated_at DESC LIMIT 1) e ON true
            WHERE d.serial_number > $1 ORDER BY d.serial_number LIMIT $2
            """, [.text(after), .int(limit)])
    }

    /// Devices migrating here from another MDM server, by deadline: each one's ADE state and setup items (done,
    /// failed, open), and whether the deadline passed before Orchard released it.
    static func migrations(_ database: Database, limit: Int) async throws -> [Row] {
        try await database.query("""
            SELECT d.serial_number, d.migration_deadline, d.model, p.name AS profile_name, p.await_device_configured, e.udid,
                   CASE WHEN e.state IS NOT NULL THEN e.state WHEN d.released THEN 'released by ABM'
                        WHEN p.profile_uuid IS NOT NULL AND d.profile_status IN ('assigned', 'pushed') THEN 'assigned'
                        ELSE 'unassigned' END AS state,
                   s.done, s.failed, s.open,
                   d.migration_deadline < now() AND COALESCE(e.state, '') <> 'released' AS overdue
            FROM ade_devices d LEFT JOIN ade_profiles p ON p.profile_uuid = d.profile_uuid
            LEFT JOIN LATERAL (SELECT * FROM ade_enrollments x WHERE x.serial_number = d.serial_number
                               ORDER BY x.updated_at DESC LIMIT 1) e ON true
            LEFT JOIN LATERAL (SELECT count(*) FILTER (WHERE status = 'Acknowledged')::int AS done,
                                      count(*) FILTER (WHERE status IS NOT NULL AND status <> 'Acknowledged')::int AS failed,
                                      count(*) FILTER (WHERE status IS NULL)::int AS open
                               FROM ade_setup_commands c WHERE c.udid = e.udid) s ON true
            WHERE d.migration_deadline IS NOT NULL AND NOT d.released
            ORDER BY d.migration_deadline, d.serial_number LIMIT $1
            """, [.int(limit)])
    }
}
