import Foundation
import OrchardCore
import OrchardMessaging
import OrchardSchemas
import OrchardStorage

/// Managed Apple Account domains (account-driven enrollment, item 1): which enrollment a domain's users get,
/// which directory signs them in, and the minimum OS per platform. Every change goes to the activity log.
struct ManagedDomains: Sendable {
    let database: Database
    let outbox: OutboxPublisher
    let service: String
    /// Where devices of every domain enroll (`BaseURL`).
    let baseURL: String

    /// Apple's minimums for account-driven enrollment with the flows Orchard serves (REFERENCE §5; seed 003).
    static let defaultMinimumOS = ["iOS": "18.2", "iPadOS": "18.2", "macOS": "15.2"]
    static let modes: Set<String> = ["mdm-byod", "mdm-adde"]

    func save(_ r: SaveManagedDomain, correlationID: String?) async throws -> ManagedDomain {
        let domain = try Self.canonical(r.domain)
        guard Self.modes.contains(r.mode) else {
            throw RequestRefused(code: "account-domain.mode", message: "mode must be mdm-byod (User Enrollment) or mdm-adde (Device Enrollment)")
        }
        let directory = r.directory ?? "local"
        guard directory == "local" else {
            throw RequestRefused(code: "account-domain.directory", message: "directory must be local (directories come with the sign-in)")
        }
        var minimum = Self.defaultMinimumOS
        for (platform, version) in r.minimumOS ?? [:] {
            guard Self.defaultMinimumOS.keys.contains(platform) else {
                throw RequestRefused(code: "account-domain.minimum-os", message: "minimumOS platforms are iOS, iPadOS and macOS, not \(platform.prefix(32))")
            }
            let parts = version.split(separator: ".", omittingEmptySubsequences: false)
            guard (1...3).contains(parts.count), parts.allSatisfy({ (1...4).contains($0.count) && $0.allSatisfy { $0.isASCII && $0.isNumber } }) else {
                throw RequestRefused(code: "account-domain.minimum-os", message: "minimumOS.\(platform) must be a version such as 18.2, not \(version.prefix(32))")
            }
            minimum[platform] = version
        }
        let minimumText = String(decoding: try JSONEncoder().encode(minimum), as: UTF8.self)
        let summary = minimum.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
        try await database.transaction { c in
            let inserted = try c.query("""
                INSERT INTO managed_domains (domain, mode, directory, minimum_os, created_by) VALUES ($1, $2, $3, $4, $5)
                ON CONFLICT (domain) DO UPDATE SET mode = EXCLUDED.mode, directory = EXCLUDED.directory,
                    minimum_os = EXCLUDED.minimum_os, updated_at = now()
                RETURNING (xmax = 0) AS inserted
                """, [.text(domain), .text(r.mode), .text(directory), .text(minimumText), .text(r.actor)]).first?.bool("inserted") ?? true
            try Outbox.append(activity(r.actor, inserted ? "account-domain.created" : "account-domain.changed",
                                       detail: "\(domain): \(r.mode), minimum \(summary)"),
                              correlationID: correlationID, on: c)
        }
        outbox.notify()
        guard let saved = try await find(domain) else { throw RequestRefused(code: "account-domain.unknown", message: "no domain \(domain)", httpStatus: 404) }
        return saved
    }

    func list() async throws -> [ManagedDomain] {
        try await database.query("SELECT domain, mode, directory, minimum_os, updated_at FROM managed_domains ORDER BY domain").map(view)
    }

    func delete(_ r: DeleteManagedDomain, correlationID: String?) async throws -> DeleteManagedDomain.Reply {
        let domain = try Self.canonical(r.domain)
        let deleted = try await database.transaction { c -> Bool in
            guard !(try c.query("DELETE FROM managed_domains WHERE domain = $1 RETURNING 1", [.text(domain)])).isEmpty else { return false }
            try Outbox.append(activity(r.actor, "account-domain.deleted", detail: domain), correlationID: correlationID, on: c)
            return true
        }
        guard deleted else { throw RequestRefused(code: "account-domain.unknown", message: "no domain \(domain)", httpStatus: 404) }
        outbox.notify()
        return .init(deleted: true)
    }

    func find(_ domain: String) async throws -> ManagedDomain? {
        try await database.query("SELECT domain, mode, directory, minimum_os, updated_at FROM managed_domains WHERE domain = $1",
                                 [.text(domain)]).first.map(view)
    }

    private func view(_ row: Row) -> ManagedDomain {
        ManagedDomain(domain: row.string("domain") ?? "", mode: row.string("mode") ?? "", directory: row.string("directory") ?? "local",
                      minimumOS: (try? JSONDecoder().decode([String: String].self, from: Data((row.string("minimum_os") ?? "{}").utf8))) ?? [:],
                      baseURL: baseURL, registeredWithABM: false, updatedAt: row.date("updated_at") ?? Date())
    }

    private func activity(_ actor: String, _ action: String, detail: String) -> ActivityRecorded {
        ActivityRecorded(actor: actor, action: action, deviceID: nil, relatedDeviceIDs: [], outcome: .succeeded, detail: detail, service: service)
    }

    /// A DNS name, lowercased: labels of letters, digits and hyphens, at least two of them, at most 253 characters.
    static func canonical(_ text: String) throws -> String {
        let domain = text.trimmingCharacters(in: .whitespaces).lowercased()
        let labels = domain.split(separator: ".", omittingEmptySubsequences: false)
        guard domain.count <= 253, labels.count >= 2, labels.allSatisfy({ label in
            (1...63).contains(label.count) && label.first != "-" && label.last != "-"
                && label.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }
        }) else {
            throw RequestRefused(code: "account-domain.name", message: "\(text.prefix(64)) is not a domain name (such as example.com)")
        }
        return domain
    }
}
