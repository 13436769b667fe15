import Foundation
import OrchardCore
import Hummingbird
import OrchardSchemas
import OrchardStorage

/// JSON shapes of the admin API (docs/openapi.yaml). Dates are ISO 8601 strings.
func isoDate(_ date: Date?) -> String? {
    date.map(ISO8601.string(from:))
}

struct EnrollmentLinkInput: Decodable {
    let name: String
    let expiresAt: Date?
    let maxUses: Int?
}

struct EnrollmentLinkCreated: ResponseEncodable {
    let id: String
    let url: String
    let token: String
}

struct EnrollmentLinkView: ResponseEncodable {
    let id: String, name: String, createdBy: String, createdAt: String?, expiresAt: String?
    /// `uses`: devices enrolled with the link's profiles; `pendingProfiles`: downloads under way and profiles
    /// delivered but not yet enrolled with (each ends within an hour).
    let maxUses: Int?, uses: Int, pendingProfiles: Int, revoked: Bool

    init(_ r: Row) {
        id = r.string("id") ?? ""; name = r.string("name") ?? ""; createdBy = r.string("created_by") ?? ""
        createdAt = isoDate(r.date("created_at")); expiresAt = isoDate(r.date("expires_at"))
        maxUses = r.int("max_uses"); uses = r.int("uses") ?? 0
        pendingProfiles = r.int("outstanding") ?? 0; revoked = !r.isNull("revoked_at")
    }
}

struct DeviceView: ResponseEncodable {
    let id: String, udid: String?, kind: String, status: String, supervised: Bool?
    let serialNumber: String?, osVersion: String?, buildVersion: String?, productName: String?, model: String?, deviceName: String?
    let pushTokenValid: Bool, hasUnlockToken: Bool, awaitingConfiguration: Bool
    let createdAt: String?, enrolledAt: String?, lastSeenAt: String?
    let pairedWith: [String]
    /// Account-driven enrollment: the Managed Apple Account and `mdm-byod` (a User Enrollment: no UDID, no serial) or `mdm-adde`.
    let managedAppleID: String?, enrollmentMode: String?
    /// Automated Device Enrollment: where the device is (`profile pushed`, `setting up`, `released`, …).
    let adeState: String?
    /// ABM no longer lists the device for this server (moved to another MDM server, or disowned): it may still check in
    /// until it enrolls elsewhere; its CheckOut may never come.
    var leftABMAt: String? = nil
    /// A Mac's user channels (one device only: `GET /devices/{id}`).
    var userChannels: [UserChannelView]? = nil

    struct UserChannelView: Codable, Sendable {
        let userID: String, shortName: String?, longName: String?, registeredAt: String?, lastSeenAt: String?
        init(_ r: Row) {
            userID = r.string("user_id") ?? ""; shortName = r.string("short_name"); longName = r.string("long_name")
            registeredAt = isoDate(r.date("created_at")); lastSeenAt = isoDate(r.date("last_seen_at"))
        }
    }

    init(_ r: Row) {
        id = r.string("id") ?? ""; udid = r.string("udid"); kind = r.string("enrollment_kind") ?? ""
        status = r.string("status") ?? ""; supervised = r.bool("supervised"); serialNumber = r.string("serial_number")
        osVersion = r.string("os_version"); buildVersion = r.string("build_version"); productName = r.string("product_name")
        model = r.string("model"); deviceName = r.string("device_name"); pushTokenValid = r.bool("push_ok") ?? false
        hasUnlockToken = r.bool("has_unlock") ?? false; awaitingConfiguration = r.bool("awaiting_configuration") ?? false
        createdAt = isoDate(r.date("created_at")); enrolledAt = isoDate(r.date("enrolled_at")); lastSeenAt = isoDate(r.date("last_seen_at"))
        var pairs = parseTextArray(r.string("paired_children"))
        if let parent = r.string("paired_with") { pairs.insert(parent, at: 0) }
        pairedWith = pairs
        managedAppleID = r.string("managed_apple_id"); enrollmentMode = r.string("enrollment_mode")
        adeState = r.string("ade_state")
        leftABMAt = isoDate(r.date("left_abm_at"))
    }
}

struct BulkCommandInput: Decodable {
    let enrollmentIDs: [String]
    let command: CommandInput
}

struct CommandQueued: ResponseEncodable {
    let commandUUID: String
    let requestType: String
    let queuedFor: [String]
    /// Only when the request became several commands (a DeviceInformation with the default queries for User
    /// Enrollments and other enrollments at once): each command and whom it was queued for.
    var commands: [Part]? = nil

    struct Part: Encodable, Sendable {
        let commandUUID: String
        let queuedFor: [String]
    }
}

struct CommandView: ResponseEncodable {
    let commandUUID: String, requestType: String, status: String, requestedBy: String
    let queuedAt: String?, sentAt: String?, completedAt: String?, result: String?

    init(_ r: Row) {
        commandUUID = r.string("command_uuid") ?? ""; requestType = r.string("request_type") ?? ""; status = r.string("status") ?? ""
        requestedBy = r.string("requested_by") ?? ""; queuedAt = isoDate(r.date("queued_at")); sentAt = isoDate(r.date("sent_at"))
        completedAt = isoDate(r.date("completed_at")); result = r.bytes("result").map { String(decoding: $0, as: UTF8.self) }
    }
}

struct DeclarationInput: Decodable {
    let type: String
    let payload: JSONObject
}

/// An arbitrary JSON object, kept as its bytes.
struct JSONObject: Decodable {
    let bytes: [UInt8]
    init(from decoder: any Decoder) throws {
        let value = try AnyJSON(from: decoder)
        guard case .object = value else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "payload must be a JSON object"))
        }
        bytes = Array(try JSONSerialization.data(withJSONObject: value.foundation, options: [.sortedKeys, .withoutEscapingSlashes]))
    }
}

struct DeclarationView: ResponseEncodable {
    let identifier: String, type: String, serverToken: String, updatedAt: String?, payload: String
}

struct AssignmentInput: Decodable { let identifiers: [String] }

struct DeviceDeclarationsView: ResponseEncodable {
    let identifiers: [String]
    let lastStatusReport: String?
    let lastStatusAt: String?
}

struct PushCertificateInput: Decodable {
    let certificate: String?
    let privateKey: String?
    let pkcs12: String?
    let password: String?
}

struct PushCertificateView: ResponseEncodable {
    let topic: String
    let notAfter: String?
    let subject: String
    let uploadedAt: String?
}

struct ActivityView: ResponseEncodable {
    let id: String, occurredAt: String?, actor: String, action: String, deviceID: String?, relatedDeviceIDs: [String]
    let outcome: String, detail: String?, service: String, correlationID: String?

    init(_ r: Row) {
        id = r.string("id") ?? ""; occurredAt = isoDate(r.date("occurred_at")); actor = r.string("actor") ?? ""
        action = r.string("action") ?? ""; deviceID = r.string("device_id")
        relatedDeviceIDs = (try? JSONDecoder().decode([String].self, from: Data((r.string("related_device_ids") ?? "[]").utf8))) ?? []
        outcome = r.string("outcome") ?? ""; detail = r.string("detail"); service = r.string("service") ?? ""
        correlationID = r.string("correlation_id")
    }
}

struct APIKeyInput: Decodable { let name: String; let scopes: [String] }
struct APIKeyCreated: ResponseEncodable { let id: String; let name: String; let key: String; let scopes: [String] }
struct APIKeyView: ResponseEncodable { let id: String; let name: String; let scopes: [String]; let createdAt: String?; let revoked: Bool }

struct Page<Item: Encodable & Sendable>: ResponseEncodable {
    let items: [Item]
}

/// Reads PostgreSQL's text form of a text[] (`{a,b}`); our identifiers never need quoting.
func parseTextArray(_ text: String?) -> [String] {
    guard let text, text.count > 2 else { return [] }
    return text.dropFirst().dropLast().split(separator: ",").map { $0.trimmingCharacters(in: CharacterSet(charactersIn: "\"")) }
}

struct WatchEnrollmentInput: Decodable {
    let mode: String
    let enrollmentIDs: [String]?
    let anchorCertificatesPEM: String?
}

struct WatchEnrollmentView: ResponseEncodable {
    struct Phone: Encodable, Sendable { let enrollmentID: String; let on: Bool; let notEligibleBecause: String? }
    let mode: String
    let enrollmentProfileURL: String
    let hasAnchorCertificates: Bool
    let phones: [Phone]
}

struct ABMTokenInput: Decodable { let name: String }

/// `POST /abm/tokens/{id}/profiles`: Apple's ADE profile JSON, Orchard's minimum OS, and whether new devices get it.
struct ADEProfileInput: Decodable {
    let profile: JSONObject
    let minimumOS: [String: String]?
    let `default`: Bool?
    /// The device shows Orchard's sign-in page (`configuration_web_url` = /mdm/ade/sign-in) before its profile.
    let signIn: Bool?
}

struct ADEAccountInput: Decodable {
    let password: String
    let disabled: Bool?
}

struct ADEReenrollmentAllowance: ResponseEncodable {
    let serialNumber: String
    let allowedBy: String
    let expiresAt: String
}

struct ADEAccountView: ResponseEncodable {
    let username: String
    let disabled: Bool
    let locked: Bool
}

struct SerialsInput: Decodable { let serials: [String] }


struct ADESetupInput: Decodable {
    let commands: [CommandInput]?
    let declarations: [String]?
}

struct ADESetupView: ResponseEncodable {
    let profileID: String
    let commands: [String]
    let declarations: [String]
}

/// An ABM device as the gateway sees it: `unassigned`, `assigned`, `profile pushed`, `enrolled`, `setting up`,
/// `released` or `failed` (with the reason), or `released by ABM`.
struct ADEDeviceView: ResponseEncodable {
    let serialNumber: String, tokenID: String, state: String
    let reason: String?, udid: String?, profileUUID: String?, profileName: String?, profileStatus: String?
    let model: String?, os: String?, deviceFamily: String?, stateSince: String?
    /// Migrating here from another MDM server: ABM's deadline.
    let migrationDeadline: String?

    init(_ r: Row) {
        migrationDeadline = isoDate(r.date("migration_deadline"))
        serialNumber = r.string("serial_number") ?? ""; tokenID = r.string("token_id") ?? ""; state = r.string("state") ?? ""
        reason = r.string("reason"); udid = r.string("udid"); profileUUID = r.string("profile_uuid"); profileName = r.string("profile_name")
        profileStatus = r.string("profile_status"); model = r.string("model"); os = r.string("os"); deviceFamily = r.string("device_family")
        stateSince = isoDate(r.date("state_since"))
    }
}

/// A device migrating here from another MDM server (`GET /ade/migrations`).
struct ADEMigrationView: ResponseEncodable {
    let serialNumber: String, deadline: String?, state: String, udid: String?, model: String?, profileName: String?
    /// Whether its profile waits for DeviceConfigured (a migration needs it: the device is in use).
    let awaitsDeviceConfigured: Bool
    let setupDone: Int, setupFailed: Int, setupOpen: Int
    /// The deadline passed and Orchard has not released the device.
    let overdue: Bool
    let daysLeft: Int?

    init(_ r: Row) {
        serialNumber = r.string("serial_number") ?? ""; deadline = isoDate(r.date("migration_deadline")); state = r.string("state") ?? ""
        udid = r.string("udid"); model = r.string("model"); profileName = r.string("profile_name")
        awaitsDeviceConfigured = r.bool("await_device_configured") ?? false
        setupDone = r.int("done") ?? 0; setupFailed = r.int("failed") ?? 0; setupOpen = r.int("open") ?? 0
        overdue = r.bool("overdue") ?? false
        daysLeft = r.date("migration_deadline").map { Int(($0.timeIntervalSinceNow / 86400).rounded(.down)) }
    }
}

struct ManagedDomainInput: Decodable {
    let mode: String
    let directory: String?
    let ldap: LDAPDirectorySettings?
    let authentication: String?
    let oidc: OIDCProviderSettings?
    let minimumOS: [String: String]?
    let enrollmentSSO: EnrollmentSSOSettings?
}
