import Foundation
import OrchardStorage

/// Every statement on app assignments and their per-device installs (`app_assignments`, `app_installs`).
enum AppInstallStore {
    /// Where one device's install of one assignment stands (stored as text in `app_installs.state`).
    enum State: String, Sendable, Codable, CaseIterable {
        case assigned, licensed, installing, installed, failed
    }

    struct App: Sendable, Codable, Equatable {
        var name: String?
        /// The App Store id; empty for an in-house app (installed from its manifests).
        var adamID: String
        var bundleID: String
        var watchBundleID: String?
        var pricingParam: String?
        var contentToken: String?
        /// `paired`, `dependent` or `standalone`.
        var watchDeployment: String
        /// `apple` (bundle ids and deployment from Apple's app metadata) or `admin` (as given).
        var detailsFrom: String = "admin"
        /// Apple's `deviceFamilies` for the app, when its metadata was read.
        var deviceFamilies: [String]? = nil
        /// `command` (InstallApplication) or `declaration` (com.apple.configuration.app.managed) for the iPhone.
        var iphoneInstall: String = "command"
        /// An in-house app's manifests (Apple's ManifestURL property list): the iPhone app's, the watch app's.
        var manifestURL: String? = nil
        var watchManifestURL: String? = nil

        var isInHouse: Bool { adamID.isEmpty }
        /// How logs and activity entries name the app.
        var label: String { isInHouse ? "in-house \(bundleID)" : adamID }

        /// The declaration that installs this assignment's app on iPhones (one per assignment, assigned to each iPhone).
        static func declarationID(assignment: String) -> String { "orchard.app.\(assignment)" }
    }

    /// One install to create: `after` is the index (in the same list) of the iPhone's install a watch's waits for.
    struct NewInstall: Sendable {
        var enrollmentID: String
        var role: String
        var after: Int?
    }

    struct Install: Sendable {
        let id: Int
        let assignmentID: String
        let enrollmentID: String
        let role: String
        let state: State
        let detail: String?
        let afterEnrollmentID: String?
        let updatedAt: Date
        let checks: Int
        let app: App
        let serialNumber: String?
        let enrollmentActive: Bool
        var declarationID: String? = nil
        /// The InstallApplication sent (none yet: a check is a watch's precheck).
        var commandUUID: String? = nil
        var prechecked = false
    }

    static func app(_ r: Row) -> App {
        App(name: r.string("name"), adamID: r.string("adam_id") ?? "", bundleID: r.string("bundle_id") ?? "",
            watchBundleID: r.string("watch_bundle_id"), pricingParam: r.string("pricing_param"), contentToken: r.string("content_token"),
            watchDeployment: r.string("watch_deployment") ?? "", detailsFrom: r.string("details_from") ?? "admin",
            deviceFamilies: r.string("device_families").map { $0.split(separator: ",").map(String.init) },
            iphoneInstall: r.string("iphone_install") ?? "command", manifestURL: r.string("manifest_url"),
            watchManifestURL: r.string("watch_manifest_url"))
    }

    private static let installColumns = """
        i.id, i.assignment_id::text AS assignment_id, i.enrollment_id, i.role, i.state, i.detail, i.updated_at, i.checks,
        (SELECT p.enrollment_id FROM app_installs p WHERE p.id = i.after_id) AS after_enrollment,
        a.name, a.adam_id, a.bundle_id, a.watch_bundle_id, a.pricing_param, a.content_token, a.watch_deployment,
        a.details_from, a.device_families, a.iphone_install, i.declaration_id, a.manifest_url, a.watch_manifest_url, i.command_uuid, i.prechecked,
        e.serial_number, e.status IN ('pending', 'enrolled') AS active
        """

    private static func install(_ r: Row) -> Install {
        Install(id: r.int("id") ?? 0, assignmentID: r.string("assignment_id") ?? "", enrollmentID: r.string("enrollment_id") ?? "",
                role: r.string("role") ?? "", state: State(rawValue: r.string("state") ?? "") ?? .failed, detail: r.string("detail"),
                afterEnrollmentID: r.string("after_enrollment"), updatedAt: r.date("updated_at") ?? Date(), checks: r.int("checks") ?? 0,
                app: app(r), serialNumber: r.string("serial_number"), enrollmentActive: r.bool("active") ?? false,
                declarationID: r.string("declaration_id"), commandUUID: r.string("command_uuid"), prechecked: r.bool("prechecked") ?? false)
    }

    // MARK: Targets

    struct Device: Sendable {
        let id: String
        let pairedWith: String?
        let active: Bool
        let isWatch: Bool
        var osVersion: String? = nil
    }

    /// The enrollments named, and the watches paired with them, each with whether it takes commands.
    static func devices(_ c: Connection, around ids: [String]) throws -> [String: Device] {
        var found: [String: Device] = [:]
        for r in try c.query("""
            SELECT id, paired_with, status IN ('pending', 'enrolled') AS active, os_version,
                   (paired_with IS NOT NULL OR product_name LIKE 'Watch%') AS watch
            FROM enrollments WHERE id = ANY($1::text[]) OR paired_with = ANY($1::text[])
               OR id IN (SELECT paired_with FROM enrollments WHERE id = ANY($1::text[]) AND paired_with IS NOT NULL)
            """, [.text(postgresArray(ids))]) {
            guard let id = r.string("id") else { continue }
            found[id] = Device(id: id, pairedWith: r.string("paired_with"), active: r.bool("active") ?? false, isWatch: r.bool("watch") ?? false,
                               osVersion: r.string("os_version"))
        }
        return found
    }

    // MARK: Assignments

    /// An assignment and its installs (a watch's waiting for its iPhone's: due never, until that one is installed).
    static func create(_ c: Connection, id: String, app: App, installs: [NewInstall], actor: String) throws {
        try c.query("""
            INSERT INTO app_assignments (id, name, adam_id, bundle_id, watch_bundle_id, pricing_param, content_token, watch_deployment, created_by,
                                         details_from, device_families, iphone_install, manifest_url, watch_manifest_url)
            VALUES ($1::uuid, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
            """, [.text(id), .optionalText(app.name), .optionalText(app.isInHouse ? nil : app.adamID), .text(app.bundleID), .optionalText(app.watchBundleID),
                  .optionalText(app.pricingParam), .optionalText(app.contentToken), .text(app.watchDeployment), .text(actor),
                  .text(app.detailsFrom), .optionalText(app.deviceFamilies?.joined(separator: ",")), .text(app.iphoneInstall),
                  .optionalText(app.manifestURL), .optionalText(app.watchManifestURL)])
        // Two statements: the installs nothing waits on, then those that wait (they name the first ones' ids).
        let firsts = installs.enumerated().filter { $0.element.after == nil }
        let rows = try c.query("""
            INSERT INTO app_installs (assignment_id, enrollment_id, role, state)
            SELECT $1::uuid, e, r, 'assigned' FROM unnest($2::text[], $3::text[]) AS t(e, r)
            RETURNING id, enrollment_id
            """, [.text(id), .text(postgresArray(firsts.map(\.element.enrollmentID))), .text(postgresArray(firsts.map(\.element.role)))])
        var idOf: [String: Int] = [:]
        for r in rows { if let e = r.string("enrollment_id"), let i = r.int("id") { idOf[e] = i } }
        let waiting = installs.filter { $0.after != nil }
        guard !waiting.isEmpty else { return }
        try c.query("""
            INSERT INTO app_installs (assignment_id, enrollment_id, role, state, after_id, next_at, detail)
            SELECT $1::uuid, e, r, 'assigned', a::bigint, 'infinity', 'waits for the iPhone''s install'
            FROM unnest($2::text[], $3::text[], $4::text[]) AS t(e, r, a)
            """, [.text(id), .text(postgresArray(waiting.map(\.enrollmentID))), .text(postgresArray(waiting.map(\.role))),
                  .text(postgresArray(waiting.map { String(idOf[installs[$0.after!].enrollmentID] ?? 0) }))])
    }

    static func installs(_ database: Database, assignmentID: String, limit: Int = 10_000) async throws -> [Install] {
        try await database.query("""
            SELECT \(installColumns) FROM app_installs i JOIN app_assignments a ON a.id = i.assignment_id
            JOIN enrollments e ON e.id = i.enrollment_id WHERE i.assignment_id = $1::uuid ORDER BY i.id LIMIT $2
            """, [.text(assignmentID), .int(limit)]).map(install)
    }

    static func installs(_ database: Database, enrollmentID: String) async throws -> [Install] {
        try await database.query("""
            SELECT \(installColumns) FROM app_installs i JOIN app_assignments a ON a.id = i.assignment_id
            JOIN enrollments e ON e.id = i.enrollment_id WHERE i.enrollment_id = $1 ORDER BY i.id LIMIT 1000
            """, [.text(enrollmentID)]).map(install)
    }

    struct Summary: Sendable {
        let id: String
        let app: App
        let createdBy: String
        let createdAt: Date
        let states: [String: Int]
    }

    static func assignments(_ database: Database, id: String? = nil) async throws -> [Summary] {
        try await database.query("""
            SELECT a.id::text AS id, a.name, a.adam_id, a.bundle_id, a.watch_bundle_id, a.pricing_param, a.content_token,
                   a.watch_deployment, a.details_from, a.device_families, a.iphone_install, a.manifest_url, a.watch_manifest_url,
                   a.created_by, a.created_at,
                   (SELECT string_agg(s.state || '=' || s.n, ',') FROM (SELECT state, count(*) AS n FROM app_installs
                     WHERE assignment_id = a.id GROUP BY state) s) AS states
            FROM app_assignments a WHERE $1::uuid IS NULL OR a.id = $1::uuid ORDER BY a.created_at DESC, a.id LIMIT 1000
            """, [.optionalText(id)]).map { r in
            var states: [String: Int] = [:]
            for part in (r.string("states") ?? "").split(separator: ",") {
                let kv = part.split(separator: "=")
                if kv.count == 2 { states[String(kv[0])] = Int(kv[1]) ?? 0 }
            }
            return Summary(id: r.string("id") ?? "", app: app(r),
                           createdBy: r.string("created_by") ?? "", createdAt: r.date("created_at") ?? Date(), states: states)
        }
    }

    static func remove(_ c: Connection, id: String) throws -> Bool {
        try !c.query("DELETE FROM app_assignments WHERE id = $1::uuid RETURNING id", [.text(id)]).isEmpty
    }

    // MARK: The rollout

    /// Installs due for a licence: assigned, with a content token, due now; each claimed for `lease` (another replica
    /// skips them; a crash hands them back when the lease ends).
    static func claimForLicence(_ c: Connection, limit: Int, lease: Duration) throws -> [Install] {
        try c.query("""
            WITH due AS (
                SELECT i.id FROM app_installs i JOIN app_assignments a ON a.id = i.assignment_id
                WHERE i.state = 'assigned' AND a.content_token IS NOT NULL AND i.next_at <= now()
                  AND NOT (i.role = 'watch' AND a.watch_deployment <> 'standalone' AND NOT i.prechecked)
                ORDER BY i.next_at, i.id LIMIT $1 FOR UPDATE OF i SKIP LOCKED),
            claimed AS (
                UPDATE app_installs i SET next_at = now() + make_interval(secs => $2) FROM due WHERE i.id = due.id RETURNING i.*)
            SELECT \(installColumns) FROM claimed i JOIN app_assignments a ON a.id = i.assignment_id JOIN enrollments e ON e.id = i.enrollment_id
            """, [.int(limit), .int(Int(lease.components.seconds))]).map(install)
    }

    /// Installs ready for their InstallApplication (licensed, or assigned with no licence to get), locked until the
    /// transaction ends.
    static func lockForInstall(_ c: Connection, limit: Int) throws -> [Install] {
        try c.query("""
            WITH due AS (
                SELECT i.id FROM app_installs i JOIN app_assignments a ON a.id = i.assignment_id
                WHERE (i.state = 'licensed' OR (i.state = 'assigned' AND (a.content_token IS NULL
                       OR (i.role = 'watch' AND a.watch_deployment <> 'standalone' AND NOT i.prechecked)))) AND i.next_at <= now()
                ORDER BY i.next_at, i.id LIMIT $1 FOR UPDATE OF i SKIP LOCKED)
            SELECT \(installColumns) FROM app_installs i JOIN due ON due.id = i.id JOIN app_assignments a ON a.id = i.assignment_id
            JOIN enrollments e ON e.id = i.enrollment_id
            """, [.int(limit)]).map(install)
    }

    /// Installs whose last check said "not yet", due for another, locked until the transaction ends.
    static func lockForRecheck(_ c: Connection, limit: Int) throws -> [Install] {
        try c.query("""
            WITH due AS (
                SELECT i.id FROM app_installs i WHERE i.state = 'installing' AND i.check_uuid IS NULL AND i.checks > 0 AND i.next_at <= now()
                ORDER BY i.next_at, i.id LIMIT $1 FOR UPDATE OF i SKIP LOCKED)
            SELECT \(installColumns) FROM app_installs i JOIN due ON due.id = i.id JOIN app_assignments a ON a.id = i.assignment_id
            JOIN enrollments e ON e.id = i.enrollment_id
            """, [.int(limit)]).map(install)
    }

    static func setLicensed(_ c: Connection, ids: [Int]) throws {
        guard !ids.isEmpty else { return }
        try c.query("""
            UPDATE app_installs SET state = 'licensed', detail = NULL, next_at = now(), updated_at = now()
            WHERE id = ANY($1::bigint[]) AND state = 'assigned'
            """, [.text(postgresArray(ids.map(String.init)))])
    }

    /// Gives claimed installs back for a later try (the licence request failed on the way).
    static func retryLater(_ c: Connection, ids: [Int], after: Duration, detail: String) throws {
        guard !ids.isEmpty else { return }
        try c.query("""
            UPDATE app_installs SET next_at = now() + make_interval(secs => $2), detail = $3, updated_at = now()
            WHERE id = ANY($1::bigint[]) AND state IN ('assigned', 'licensed')
            """, [.text(postgresArray(ids.map(String.init))), .int(Int(after.components.seconds)), .text(detail)])
    }

    static func setInstalling(_ c: Connection, ids: [Int], commandUUID: String) throws {
        guard !ids.isEmpty else { return }
        try c.query("""
            UPDATE app_installs SET state = 'installing', command_uuid = $2, check_uuid = NULL, checks = 0, detail = NULL,
                next_at = 'infinity', updated_at = now()
            WHERE id = ANY($1::bigint[])
            """, [.text(postgresArray(ids.map(String.init))), .text(commandUUID)])
    }

    /// Fails installs with the reason, and the watches' installs that waited on them (with "its iPhone's install
    /// failed: …"). Returns the ids failed.
    @discardableResult
    static func fail(_ c: Connection, ids: [Int], reasons: [String]) throws -> [Int] {
        guard !ids.isEmpty else { return [] }
        let failed = try c.query("""
            WITH f AS (
                UPDATE app_installs i SET state = 'failed', detail = t.reason, next_at = 'infinity', updated_at = now()
                FROM unnest($1::bigint[], $2::text[]) AS t(id, reason)
                WHERE i.id = t.id AND i.state NOT IN ('installed', 'failed') RETURNING i.id, i.detail),
            w AS (
                UPDATE app_installs d SET state = 'failed', detail = 'its iPhone''s install failed: ' || f.detail, next_at = 'infinity',
                    updated_at = now()
                FROM f WHERE d.after_id = f.id AND d.state NOT IN ('installed', 'failed') RETURNING d.id)
            SELECT id FROM f UNION ALL SELECT id FROM w
            """, [.text(postgresArray(ids.map(String.init))), .text(postgresArray(reasons))])
        return failed.compactMap { $0.int("id") }
    }

    /// The installs an InstallApplication (or a check) of this device stands for.
    static func installs(_ c: Connection, enrollmentID: String, commandUUID: String) throws -> [Install] {
        try c.query("""
            SELECT \(installColumns) FROM app_installs i JOIN app_assignments a ON a.id = i.assignment_id JOIN enrollments e ON e.id = i.enrollment_id
            WHERE i.enrollment_id = $1 AND i.state = 'installing' AND (i.command_uuid = $2 OR i.check_uuid = $2)
            FOR UPDATE OF i
            """, [.text(enrollmentID), .text(commandUUID)]).map(install)
    }

    static func setChecking(_ c: Connection, ids: [Int], checkUUID: String, detail: String?) throws {
        guard !ids.isEmpty else { return }
        try c.query("""
            UPDATE app_installs SET check_uuid = $2, detail = COALESCE($3, detail), updated_at = now() WHERE id = ANY($1::bigint[])
            """, [.text(postgresArray(ids.map(String.init))), .text(checkUUID), .optionalText(detail)])
    }

    /// Installed (with why, when there is more to say); the watches' installs that waited on these are due now.
    static func setInstalled(_ c: Connection, ids: [Int], detail: String? = nil) throws {
        guard !ids.isEmpty else { return }
        try c.query("""
            WITH done AS (
                UPDATE app_installs SET state = 'installed', detail = $2, check_uuid = NULL, next_at = 'infinity', updated_at = now()
                WHERE id = ANY($1::bigint[]) RETURNING id)
            UPDATE app_installs d SET next_at = now(), detail = NULL, updated_at = now()
            FROM done WHERE d.after_id = done.id AND d.state = 'assigned'
            """, [.text(postgresArray(ids.map(String.init))), .optionalText(detail)])
    }

    /// Not installed yet: ask again after `after`.
    static func checkLater(_ c: Connection, ids: [Int], after: Duration, detail: String) throws {
        guard !ids.isEmpty else { return }
        try c.query("""
            UPDATE app_installs SET check_uuid = NULL, checks = checks + 1, detail = $3,
                next_at = now() + make_interval(secs => $2), updated_at = now()
            WHERE id = ANY($1::bigint[])
            """, [.text(postgresArray(ids.map(String.init))), .int(Int(after.components.seconds)), .text(detail)])
    }

    // MARK: Managed-app declarations

    /// The iPhone's install goes through the app's declaration (assigned in the same transaction): installing, with no
    /// command to wait for; the device's app.managed.list status moves it on.
    /// `deadline`: how long the device has to report the app managed before the install fails.
    static func setDeclared(_ c: Connection, ids: [Int], declarationID: String, deadline: Duration) throws {
        guard !ids.isEmpty else { return }
        try c.query("""
            UPDATE app_installs SET state = 'installing', declaration_id = $2, command_uuid = NULL, check_uuid = NULL, checks = 0,
                detail = 'declaration sent', next_at = now() + make_interval(secs => $3), updated_at = now()
            WHERE id = ANY($1::bigint[])
            """, [.text(postgresArray(ids.map(String.init))), .text(declarationID), .int(Int(deadline.components.seconds))])
    }

    /// Installs through a declaration whose device has not reported the app managed by their deadline, locked until the
    /// transaction ends.
    static func lockOverdueDeclared(_ c: Connection, limit: Int) throws -> [Install] {
        try c.query("""
            WITH due AS (
                SELECT i.id FROM app_installs i WHERE i.state = 'installing' AND i.declaration_id IS NOT NULL AND i.next_at <= now()
                ORDER BY i.next_at, i.id LIMIT $1 FOR UPDATE OF i SKIP LOCKED)
            SELECT \(installColumns) FROM app_installs i JOIN due ON due.id = i.id JOIN app_assignments a ON a.id = i.assignment_id
            JOIN enrollments e ON e.id = i.enrollment_id
            """, [.int(limit)]).map(install)
    }

    /// This device's installs through one of these declarations, still under way, locked until the transaction ends.
    static func installs(_ c: Connection, enrollmentID: String, declarationIDs: [String]) throws -> [Install] {
        guard !declarationIDs.isEmpty else { return [] }
        return try c.query("""
            SELECT \(installColumns) FROM app_installs i JOIN app_assignments a ON a.id = i.assignment_id JOIN enrollments e ON e.id = i.enrollment_id
            WHERE i.enrollment_id = $1 AND i.declaration_id = ANY($2::text[]) AND i.state = 'installing'
            FOR UPDATE OF i
            """, [.text(enrollmentID), .text(postgresArray(declarationIDs))]).map(install)
    }

    /// Still under way, with what the device last said.
    static func note(_ c: Connection, ids: [Int], detail: String) throws {
        guard !ids.isEmpty else { return }
        try c.query("UPDATE app_installs SET detail = $2, updated_at = now() WHERE id = ANY($1::bigint[]) AND detail IS DISTINCT FROM $2",
                    [.text(postgresArray(ids.map(String.init))), .text(detail)])
    }

    // MARK: A watch's precheck

    /// The watch is asked (`checkUUID`) whether the app is already there; no InstallApplication yet.
    static func setPrechecking(_ c: Connection, ids: [Int], checkUUID: String) throws {
        guard !ids.isEmpty else { return }
        try c.query("""
            UPDATE app_installs SET state = 'installing', prechecked = true, command_uuid = NULL, check_uuid = $2, checks = 0,
                detail = 'asking the watch whether its iPhone already put the app there', next_at = 'infinity', updated_at = now()
            WHERE id = ANY($1::bigint[])
            """, [.text(postgresArray(ids.map(String.init))), .text(checkUUID)])
    }

    /// Not on the watch: back to the start, to be licensed and sent.
    static func precheckMissed(_ c: Connection, ids: [Int], detail: String?) throws {
        guard !ids.isEmpty else { return }
        try c.query("""
            UPDATE app_installs SET state = 'assigned', check_uuid = NULL, checks = 0, detail = $2, next_at = now(), updated_at = now()
            WHERE id = ANY($1::bigint[]) AND state = 'installing'
            """, [.text(postgresArray(ids.map(String.init))), .optionalText(detail)])
    }

}
