import AppleProtocol
import Foundation
import Hummingbird
import OrchardCrypto
import OrchardSchemas
import OrchardMessaging
import OrchardStorage

/// Declarations, their assignment to enrollments, and the DeclarativeManagement check-in endpoints.
struct DeclarationService: Sendable {
    let database: Database
    let outbox: OutboxPublisher
    let service: String

    // MARK: Device side

    func respond(to m: DeclarativeManagementCheckin, enrollmentID: String, correlationID: String) async throws -> Response {
        switch m.endpoint {
        case "tokens":
            let (items, updated) = try await assigned(enrollmentID)
            return bytesResponse(TokensResponse(declarationsToken: token(items), timestamp: updated).json,
                                 contentType: "application/json")
        case "declaration-items":
            let (items, _) = try await assigned(enrollmentID)
            return bytesResponse(DeclarationItemsResponse(declarations: items, declarationsToken: token(items)).json,
                                 contentType: "application/json")
        case "status":
            guard let data = m.data else { throw refuse(.badRequest, "status without Data") }
            let report = try StatusReport.parse(data)
            try await database.transaction { c in
                try c.query("""
                    INSERT INTO declaration_status (enrollment_id, report) VALUES ($1, $2)
                    ON CONFLICT (enrollment_id) DO UPDATE SET report = EXCLUDED.report, received_at = now()
                    """, [.text(enrollmentID), .text(String(decoding: report.json, as: UTF8.self))])
                var journal = Journal(correlationID: correlationID)
                journal.event(DeviceEvent(kind: .declarationStatusReported, enrollmentID: enrollmentID,
                                          details: ["fullReport": String(report.fullReport)]))
                journal.activity(actor: "device:\(enrollmentID)", "declaration-status.reported", device: enrollmentID)
                try journal.write(c)
            }
            outbox.notify()
            return emptyResponse(.noContent)
        case let endpoint where endpoint.hasPrefix("declaration/"):
            let parts = endpoint.split(separator: "/", omittingEmptySubsequences: false)
            guard parts.count == 3, Declaration.Kind(rawValue: String(parts[1])) != nil else {
                throw refuse(.badRequest, "malformed declaration endpoint")
            }
            let (items, _) = try await assigned(enrollmentID)
            guard let d = items.first(where: { $0.identifier == parts[2] && $0.kind?.rawValue == String(parts[1]) }) else {
                throw refuse(.notFound, "no such declaration for this device")
            }
            return bytesResponse(d.json, contentType: "application/json")
        default:
            throw refuse(.badRequest, "unknown DeclarativeManagement endpoint \(m.endpoint.prefix(64))")
        }
    }

    private func assigned(_ enrollmentID: String) async throws -> ([Declaration], Date) {
        let rows = try await database.query("""
            SELECT d.identifier, d.type, d.payload, d.server_token, d.updated_at
            FROM declaration_assignments a JOIN declarations d USING (identifier) WHERE a.enrollment_id = $1
            """, [.text(enrollmentID)])
        let items = rows.compactMap { r -> Declaration? in
            guard let id = r.string("identifier"), let type = r.string("type"), let token = r.string("server_token"),
                  let payload = r.string("payload") else { return nil }
            return Declaration(type: type, identifier: id, serverToken: token, payload: Array(payload.utf8))
        }
        let updated = rows.compactMap { $0.date("updated_at") }.max() ?? Date(timeIntervalSince1970: 0)
        return (items, updated)
    }

    /// Changes whenever the set of declarations or any of their contents changes.
    func token(_ items: [Declaration]) -> String {
        token(items.map { ($0.identifier, $0.serverToken) })
    }

    func token(_ pairs: [(identifier: String, serverToken: String)]) -> String {
        let text = pairs.map { "\($0.identifier):\($0.serverToken)" }.sorted().joined(separator: "\n")
        return String(Digest.sha256(Array(text.utf8)).hexString.prefix(32))
    }

    // MARK: Admin side

    /// Creates or replaces a declaration; the devices it is assigned to are told to synchronise.
    func upsert(identifier: String, type: String, payload: [UInt8], actor: String, correlationID: String) async throws -> [String] {
        guard identifier.utf8.count <= 64, !identifier.isEmpty,
              !identifier.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
            throw refuse(.badRequest, "Identifier must be 1-64 octets without control characters")
        }
        guard Declaration.kind(ofType: type) != nil else {
            throw refuse(.badRequest, "Type must look like com.apple.{activation|configuration|asset|management}.…")
        }
        guard (try? JSONSerialization.jsonObject(with: Data(payload))) is [String: Any] else {
            throw refuse(.badRequest, "Payload must be a JSON object")
        }
        let serverToken = String(Digest.sha256(Array(type.utf8) + [0] + payload).hexString.prefix(32))
        let devices = try await database.transaction { c -> [String] in
            try c.query("""
                INSERT INTO declarations (identifier, type, payload, server_token) VALUES ($1, $2, $3, $4)
                ON CONFLICT (identifier) DO UPDATE SET type = EXCLUDED.type, payload = EXCLUDED.payload,
                    server_token = EXCLUDED.server_token, updated_at = now()
                """, [.text(identifier), .text(type), .text(String(decoding: payload, as: UTF8.self)), .text(serverToken)])
            var journal = Journal(correlationID: correlationID)
            journal.activity(actor: actor, "declaration.saved", device: nil, detail: "\(type) \(identifier)")
            let devices = try c.query("SELECT enrollment_id FROM declaration_assignments WHERE identifier = $1",
                                      [.text(identifier)]).compactMap { $0.string("enrollment_id") }
            let queued = try syncCommands(c, devices, actor: actor, journal: &journal)
            try journal.write(c)
            return queued
        }
        outbox.notify()
        return devices
    }

    /// Replaces the declarations assigned to an enrollment and asks the device to synchronise.
    func assign(_ identifiers: [String], to enrollmentID: String, actor: String, correlationID: String) async throws -> [String] {
        let devices = try await database.transaction { c -> [String] in
            guard try !c.query("SELECT 1 FROM enrollments WHERE id = $1", [.text(enrollmentID)]).isEmpty else {
                throw refuse(.notFound, "no enrollment \(enrollmentID)")
            }
            let known = Set(try c.query("SELECT identifier FROM declarations WHERE identifier = ANY($1::text[])",
                                        [.text(postgresArray(identifiers))]).compactMap { $0.string("identifier") })
            if let missing = identifiers.first(where: { !known.contains($0) }) {
                throw refuse(.badRequest, "no declaration \(missing)")
            }
            try c.query("DELETE FROM declaration_assignments WHERE enrollment_id = $1", [.text(enrollmentID)])
            try c.query("""
                INSERT INTO declaration_assignments (enrollment_id, identifier) SELECT $1, unnest($2::text[])
                """, [.text(enrollmentID), .text(postgresArray(identifiers))])
            var journal = Journal(correlationID: correlationID)
            journal.activity(actor: actor, "declarations.assigned", device: enrollmentID, detail: identifiers.joined(separator: ", "))
            let queued = try syncCommands(c, [enrollmentID], actor: actor, journal: &journal)
            try journal.write(c)
            return queued
        }
        outbox.notify()
        return devices
    }

    /// Adds and removes declarations of one enrollment inside the caller's transaction, then queues the
    /// sync command; returns the enrollments to push.
    func change(_ c: Connection, add: [String], remove: [String], for enrollmentID: String, actor: String,
                journal: inout Journal) throws -> [String] {
        if !remove.isEmpty {
            try c.query("DELETE FROM declaration_assignments WHERE enrollment_id = $1 AND identifier = ANY($2::text[])",
                        [.text(enrollmentID), .text(postgresArray(remove))])
        }
        if !add.isEmpty {
            try c.query("INSERT INTO declaration_assignments SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING",
                        [.text(enrollmentID), .text(postgresArray(add))])
        }
        return try syncCommands(c, [enrollmentID], actor: actor, journal: &journal)
    }

    /// A DeclarativeManagement command carrying each device's new tokens.
    private func syncCommands(_ c: Connection, _ enrollmentIDs: [String], actor: String, journal: inout Journal) throws -> [String] {
        var queued: [String] = []
        for id in enrollmentIDs {
            let rows = try c.query("""
                SELECT d.identifier, d.server_token FROM declaration_assignments a JOIN declarations d USING (identifier)
                WHERE a.enrollment_id = $1
                """, [.text(id)])
            let pairs = rows.map { (identifier: $0.string("identifier") ?? "", serverToken: $0.string("server_token") ?? "") }
            let tokens = TokensResponse(declarationsToken: token(pairs), timestamp: Date()).json
            queued += try CommandQueue.enqueue(c, .declarativeManagement(tokens: tokens), enrollmentIDs: [id],
                                               requestedBy: actor, journal: &journal)
        }
        return queued
    }
}
