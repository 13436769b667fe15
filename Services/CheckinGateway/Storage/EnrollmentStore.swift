import AppleProtocol
import Foundation
import OrchardStorage

/// An enrollment as the request pipeline found it.
struct EnrollmentRecord: Sendable {
    let id: String
    let identityFingerprint: String
    let status: EnrollmentStatus
    let enrolledAt: Date?
    let profileIdentifier: String?
    let pairedWith: String?
    /// The device's ADE state, when it enrolled through ADE (read with the enrollment: ADESetup needs a statement of its
    /// own only for the ADE devices it acts on).
    var adeState: ADESetupState? = nil
    /// An ADE device in Setup Assistant whose setup items are being followed (ADESetup reads its command results).
    var adeSettingUp: Bool { adeState == .settingUp }
    /// An account-driven enrollment: the Managed Apple Account, and whether every request must carry its bearer.
    var account: AccountBinding? = nil
    /// `last_seen_at` is older than `EnrollmentStore.lastSeenResolution` (or unset): this request should record it.
    var lastSeenDue: Bool = true
}

/// The Managed Apple Account an account-driven enrollment belongs to (its profile was served after that sign-in).
struct AccountBinding: Sendable, Equatable {
    let managedAppleID: String
    let domain: String
    /// `mdm-byod` or `mdm-adde`.
    let mode: String
    /// iOS and iPadOS send `Authorization: Bearer` on every request; macOS's device channel does not.
    let bearerRequired: Bool

    init(managedAppleID: String, domain: String, mode: String, bearerRequired: Bool) {
        self.managedAppleID = managedAppleID
        self.domain = domain
        self.mode = mode
        self.bearerRequired = bearerRequired
    }

    init?(_ row: Row) {
        guard let user = row.string("managed_apple_id"), let domain = row.string("account_domain") else { return nil }
        self.init(managedAppleID: user, domain: domain, mode: row.string("enrollment_mode") ?? "",
                  bearerRequired: row.bool("bearer_required") ?? false)
    }
}

/// What the gateway knows about an identity that wants to Authenticate as an enrollment, read in one
/// round trip with the enrollment locked.
struct IdentityClaim: Sendable {
    /// The enrollment as it is, when it exists, and when its current identity was bound to it (first authenticated).
    let current: (fingerprint: String, status: EnrollmentStatus, boundAt: Date?)?
    /// The enrollment this identity authenticated first (an identity serves one enrollment for ever).
    let boundTo: String?
    /// When Orchard issued the identity: its profile's facts.
    let issued: IssuedIdentity?

    struct IssuedIdentity: Sendable {
        let profileIdentifier: String
        let serverCapabilities: String
        /// The device it was issued to, when Orchard knew it at issue time (a watch's verified UDID).
        let deviceID: String?
        let pairedPhone: String?
        var account: AccountBinding? = nil
        var issuedAt: Date? = nil
        /// It came from an enrollment link whose use its first Authenticate spends (`EnrollmentLinkStore.spend`).
        var linkUsePending = false
    }
}

/// All SQL on `enrollments` and `identity_bindings`. Called inside the transaction the request pipeline
/// opened, so every read-check-write of one request is atomic.
enum EnrollmentStore {
    static func exists(_ c: Connection, id: String) throws -> Bool {
        try !c.query("SELECT 1 FROM enrollments WHERE id = $1", [.text(id)]).isEmpty
    }

    /// The enrollment as the request finds it (nil when there is none), and the rows of `leading`, a statement sent
    /// after the read in the same round trip. Not locked: a tuple lock is a write of its own (measured: +0.07 ms of
    /// PostgreSQL per check-in), and the writes that depend on the binding repeat it in their WHERE clause
    /// (`tokenUpdate`), so a concurrent re-binding makes them no-ops.
    static func find(_ c: Connection, id: String, leading: (String, [SQLValue])?) throws -> (record: EnrollmentRecord?, leading: [Row]?) {
        let read = ("""
            SELECT identity_fingerprint, status, enrolled_at, profile_identifier, paired_with,
                   managed_apple_id, account_domain, enrollment_mode, bearer_required,
                   (SELECT a.state FROM ade_enrollments a WHERE a.udid = $1) AS ade_state,
                   last_seen_at IS NULL OR last_seen_at < now() - interval '\(lastSeenResolution) seconds' AS last_seen_due
            FROM enrollments WHERE id = $1
            """, [SQLValue.text(id)])
        let results = try c.queries(leading.map { [read, $0] } ?? [read])
        let leadingRows = leading == nil ? nil : results[1]
        guard let row = results[0].first else { return (nil, leadingRows) }
        return (EnrollmentRecord(id: id, identityFingerprint: row.string("identity_fingerprint") ?? "",
                                status: EnrollmentStatus(stored: row.string("status")), enrolledAt: row.date("enrolled_at"),
                                profileIdentifier: row.string("profile_identifier"), pairedWith: row.string("paired_with"),
                                adeState: row.string("ade_state").flatMap(ADESetupState.init(rawValue:)), account: AccountBinding(row),
                                lastSeenDue: row.bool("last_seen_due") ?? true), leadingRows)
    }

    /// The enrollment (locked), the identity's binding and what Orchard issued it with, in one round trip.
    static func claim(_ c: Connection, id: String, fingerprint: String) throws -> IdentityClaim {
        let row = try c.query("""
            SELECT e.identity_fingerprint, e.status, cb.bound_at AS current_bound_at, b.enrollment_id AS bound_to,
                   i.profile_identifier, i.server_capabilities, i.device_id, i.paired_phone, i.issued_at,
                   i.managed_apple_id, i.account_domain, i.enrollment_mode, i.bearer_required, i.link_use_pending
            FROM (SELECT 1) one
            LEFT JOIN (SELECT identity_fingerprint, status FROM enrollments WHERE id = $1 FOR UPDATE) e ON true
            LEFT JOIN identity_bindings cb ON cb.fingerprint = e.identity_fingerprint
            LEFT JOIN identity_bindings b ON b.fingerprint = $2
            LEFT JOIN issued_identities i ON i.fingerprint = $2
            """, [.text(id), .text(fingerprint)]).first
        let current = row?.string("identity_fingerprint").map {
            ($0, EnrollmentStatus(stored: row?.string("status")), row?.date("current_bound_at"))
        }
        let issued = row?.string("profile_identifier").map {
            IdentityClaim.IssuedIdentity(profileIdentifier: $0, serverCapabilities: row?.string("server_capabilities") ?? "",
                                         deviceID: row?.string("device_id"), pairedPhone: row?.string("paired_phone"),
                                         account: row.flatMap(AccountBinding.init), issuedAt: row?.date("issued_at"),
                                         linkUsePending: row?.bool("link_use_pending") == true)
        }
        return IdentityClaim(current: current, boundTo: row?.string("bound_to"), issued: issued)
    }

    /// The enrollment an identity is bound to (it authenticated it first), whether or not it is that enrollment's now.
    static func boundEnrollment(_ c: Connection, fingerprint: String) throws -> String? {
        try c.query("SELECT enrollment_id FROM identity_bindings WHERE fingerprint = $1", [.text(fingerprint)]).first?.string("enrollment_id")
    }

    /// Creates or refreshes the enrollment for an accepted Authenticate and binds the identity to it.
    /// A new identity for an existing enrollment starts it afresh: pending, and without the secrets the
    /// previous identity escrowed (bootstrap and unlock tokens) or its push token.
    static func authenticate(_ c: Connection, id: String, _ m: Authenticate, fingerprint: String, claim: IdentityClaim) throws {
        let kind = m.identity.udid == nil ? "user" : "device"
        let issued = claim.issued
        // Sent with the COMMIT (nothing reads it back in this transaction); a unique violation surfaces there.
        try c.queryAtCommit("""
            INSERT INTO enrollments (id, udid, enrollment_kind, status, identity_fingerprint, topic, serial_number,
                                     os_version, build_version, product_name, model, device_name,
                                     profile_identifier, server_capabilities, paired_with, supervised, last_seen_at,
                                     managed_apple_id, account_domain, enrollment_mode, bearer_required)
            VALUES ($1, $2, $3, '\(EnrollmentStatus.pending.rawValue)', $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14,
                    CASE WHEN $14::text IS NOT NULL THEN true END, now(), $15, $16, $17, $18)
            ON CONFLICT (id) DO UPDATE SET
                status = CASE WHEN enrollments.identity_fingerprint = EXCLUDED.identity_fingerprint
                               AND enrollments.status = '\(EnrollmentStatus.enrolled.rawValue)'
                              THEN '\(EnrollmentStatus.enrolled.rawValue)' ELSE '\(EnrollmentStatus.pending.rawValue)' END,
                sealed_bootstrap_token = CASE WHEN enrollments.identity_fingerprint = EXCLUDED.identity_fingerprint
                                              THEN enrollments.sealed_bootstrap_token END,
                sealed_unlock_token = CASE WHEN enrollments.identity_fingerprint = EXCLUDED.identity_fingerprint
                                           THEN enrollments.sealed_unlock_token END,
                push_token = CASE WHEN enrollments.identity_fingerprint = EXCLUDED.identity_fingerprint
                                  THEN enrollments.push_token END,
                identity_fingerprint = EXCLUDED.identity_fingerprint, topic = EXCLUDED.topic,
                serial_number = COALESCE(EXCLUDED.serial_number, enrollments.serial_number),
                os_version = COALESCE(EXCLUDED.os_version, enrollments.os_version),
                build_version = COALESCE(EXCLUDED.build_version, enrollments.build_version),
                product_name = COALESCE(EXCLUDED.product_name, enrollments.product_name),
                model = COALESCE(EXCLUDED.model, enrollments.model),
                device_name = COALESCE(EXCLUDED.device_name, enrollments.device_name),
                profile_identifier = COALESCE(EXCLUDED.profile_identifier, enrollments.profile_identifier),
                server_capabilities = COALESCE(EXCLUDED.server_capabilities, enrollments.server_capabilities),
                paired_with = COALESCE(EXCLUDED.paired_with, enrollments.paired_with),
                supervised = COALESCE(EXCLUDED.supervised, enrollments.supervised),
                managed_apple_id = EXCLUDED.managed_apple_id, account_domain = EXCLUDED.account_domain,
                enrollment_mode = EXCLUDED.enrollment_mode, bearer_required = EXCLUDED.bearer_required,
                last_seen_at = now()
            """, [.text(id), .optionalText(m.identity.udid), .text(kind), .text(fingerprint), .text(m.topic),
                  .optionalText(m.serialNumber), .optionalText(m.osVersion), .optionalText(m.buildVersion),
                  .optionalText(m.productName), .optionalText(m.model), .optionalText(m.deviceName),
                  .optionalText(issued?.profileIdentifier), .optionalText(issued?.serverCapabilities),
                  .optionalText(issued?.pairedPhone), .optionalText(issued?.account?.managedAppleID),
                  .optionalText(issued?.account?.domain), .optionalText(issued?.account?.mode), .bool(issued?.account?.bearerRequired ?? false)])
        if claim.boundTo == nil {
            try c.queryAtCommit("INSERT INTO identity_bindings (fingerprint, enrollment_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                                [.text(fingerprint), .text(id)])
        }
    }

    /// Records that the enrollment was seen; sent with the COMMIT (no round trip of its own).
    /// The serial number the device reported (Authenticate, DeviceInformation); nil when none yet.
    static func serialNumber(_ database: Database, id: String) async throws -> String? {
        try await database.query("SELECT serial_number FROM enrollments WHERE id = $1", [.text(id)]).first?.string("serial_number")
    }

    /// `last_seen_at` is written at most once per this many seconds by requests that write nothing else: a
    /// device's Idle with an empty queue is then a read-only transaction (no row version, no WAL flush to wait for).
    static let lastSeenResolution = 60

    static func touch(_ c: Connection, id: String) throws {
        try c.queryAtCommit("UPDATE enrollments SET last_seen_at = now() WHERE id = $1", [.text(id)])
    }

    /// Stores new push credentials, marks the enrollment enrolled and seen; sent with the COMMIT. Only while
    /// the enrollment is still bound to `fingerprint` and active (the authorization, repeated in the write).
    static func tokenUpdate(_ c: Connection, id: String, fingerprint: String, _ m: TokenUpdate, sealedUnlockToken: [UInt8]?) throws {
        try c.queryAtCommit("""
            UPDATE enrollments SET push_token = $2, push_magic = $3, topic = $4, push_token_invalid = false,
                sealed_unlock_token = COALESCE($5, sealed_unlock_token), awaiting_configuration = $6,
                status = '\(EnrollmentStatus.enrolled.rawValue)', enrolled_at = COALESCE(enrolled_at, now()),
                last_seen_at = now()
            WHERE id = $1 AND identity_fingerprint = $7
              AND status IN ('\(EnrollmentStatus.pending.rawValue)', '\(EnrollmentStatus.enrolled.rawValue)')
            """, [.text(id), .bytes(m.token), .text(m.pushMagic), .text(m.topic),
                  sealedUnlockToken.map(SQLValue.bytes) ?? .null, .bool(m.awaitingConfiguration), .text(fingerprint)])
    }

    /// These read or write only while the enrollment is bound to `fingerprint` (the authorization, repeated).
    static func setStatus(_ c: Connection, id: String, fingerprint: String, _ status: EnrollmentStatus) throws {
        try c.query("UPDATE enrollments SET status = $2 WHERE id = $1 AND identity_fingerprint = $3",
                    [.text(id), .text(status.rawValue), .text(fingerprint)])
    }

    static func setBootstrapToken(_ c: Connection, id: String, fingerprint: String, sealed: [UInt8]?) throws {
        try c.query("UPDATE enrollments SET sealed_bootstrap_token = $2 WHERE id = $1 AND identity_fingerprint = $3",
                    [.text(id), sealed.map(SQLValue.bytes) ?? .null, .text(fingerprint)])
    }

    static func bootstrapToken(_ c: Connection, id: String, fingerprint: String) throws -> [UInt8]? {
        try c.query("SELECT sealed_bootstrap_token FROM enrollments WHERE id = $1 AND identity_fingerprint = $2",
                    [.text(id), .text(fingerprint)]).first?.bytes("sealed_bootstrap_token")
    }

    /// The enrolled devices among `ids` that can be pushed: id, token and PushMagic.
    static func pushTargets(_ c: Connection, ids: [String]) throws -> [Row] {
        // One id is `id = $1`, which stays prepared, as in CommandQueue.enqueue (`= ANY` is planned on every call).
        try c.query("""
            SELECT id, push_token, push_magic FROM enrollments
            WHERE \(ids.count == 1 ? "id = $1" : "id = ANY($1::text[])") AND push_token IS NOT NULL AND NOT push_token_invalid
              AND status = '\(EnrollmentStatus.enrolled.rawValue)'
            """, [.text(ids.count == 1 ? ids[0] : postgresArray(ids))])
    }

    /// APNs said the token is no longer valid: no pushes until the device's next TokenUpdate.
    static func markPushTokenInvalid(_ c: Connection, id: String) throws {
        try c.query("UPDATE enrollments SET push_token_invalid = true WHERE id = $1", [.text(id)])
    }

    /// What a DeviceInformation answer reported, where it said anything.
    static func recordDeviceInformation(_ c: Connection, id: String, _ i: DeviceInformationResult) throws {
        try c.execute("""
            UPDATE enrollments SET serial_number = COALESCE($2, serial_number), os_version = COALESCE($3, os_version),
                build_version = COALESCE($4, build_version), product_name = COALESCE($5, product_name),
                model = COALESCE($6, model), device_name = COALESCE($7, device_name), supervised = COALESCE($8, supervised)
            WHERE id = $1
            """, [.text(id), .optionalText(i.serialNumber), .optionalText(i.osVersion), .optionalText(i.buildVersion),
                  .optionalText(i.productName), .optionalText(i.model), .optionalText(i.deviceName),
                  i.isSupervised.map(SQLValue.bool) ?? .null])
    }
}
