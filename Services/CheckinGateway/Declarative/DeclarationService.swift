import AppleProtocol
import Foundation
import OrchardCore
import Hummingbird
import OrchardCrypto
import OrchardSchemas
import OrchardMessaging
import OrchardStorage

/// Something that reads a device's declarative status report in the transaction that stores it.
protocol DeclarationStatusObserver: Sendable {
    func statusReported(_ c: Connection, enrollmentID: String, report: [UInt8], journal: inout Journal) throws
}

/// Declarations, their assignment to enrollments, and the DeclarativeManagement check-in endpoints.
struct DeclarationService: Sendable {
    let database: Database
    let outbox: OutboxPublisher
    let service: String
    /// Read each status report in the transaction that stores it (the app rollout's managed-app declarations).
    var statusObservers: [any DeclarationStatusObserver] = []

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
                try DeclarationStore.saveStatus(c, enrollmentID: enrollmentID, reportJSON: String(decoding: report.json, as: UTF8.self))
                var journal = Journal(correlationID: correlationID)
                for observer in statusObservers { try observer.statusReported(c, enrollmentID: enrollmentID, report: report.json, journal: &journal) }
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
        let stored = try await DeclarationStore.assigned(database, to: enrollmentID)
        let items = stored.map {
            Declaration(type: $0.type, identifier: $0.identifier, serverToken: $0.serverToken, payload: Array($0.payload.utf8))
        }
        let updated = stored.compactMap(\.updatedAt).max() ?? Date(timeIntervalSince1970: 0)
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
              !identifier.containsControlCharacters else {
            throw refuse(.badRequest, "Identifier must be 1-64 octets without control characters")
        }
        guard Declaration.kind(ofType: type) != nil else {
            throw refuse(.badRequest, "Type must look like com.apple.{activation|configuration|asset|management}.…")
        }
        guard (try? JSONSerialization.jsonObject(with: Data(payload))) is [String: Any] else {
            throw refuse(.badRequest, "Payload must be a JSON object")
        }
        let serverToken = Self.serverToken(type: type, payload: payload)
        let devices = try await database.transaction { c -> [String] in
            let devices = try DeclarationStore.upsert(c, identifier: identifier, type: type,
                                                      payload: String(decoding: payload, as: UTF8.self), serverToken: serverToken)
            // A change must still be what Apple's schemas allow on each watch it is assigned to (the transaction rolls back).
            let problems = try AdminQueries.watches(c, among: devices).sorted { $0.key < $1.key }.flatMap { watch, supervised in
                Self.watchProblems((type, String(decoding: payload, as: UTF8.self)), supervised: supervised).map { "watch \(watch): \($0)" }
            }
            guard problems.isEmpty else {
                throw refuse(.badRequest, "the declaration is assigned to watches that cannot take it this way: "
                             + "\(problems.prefix(5).joined(separator: "; ")); nothing was changed")
            }
            var journal = Journal(correlationID: correlationID)
            journal.activity(actor: actor, "declaration.saved", device: nil, detail: "\(type) \(identifier)")
            let queued = try syncCommands(c, devices, actor: actor, journal: &journal)
            try journal.write(c)
            return queued
        }
        outbox.notify()
        return devices
    }

    /// Creates or replaces a declaration Orchard itself writes, inside the caller's transaction (no sync: the caller assigns
    /// it and tells the devices).
    func save(_ c: Connection, identifier: String, type: String, payload: [UInt8]) throws {
        try DeclarationStore.put(c, identifier: identifier, type: type, payload: String(decoding: payload, as: UTF8.self),
                                 serverToken: Self.serverToken(type: type, payload: payload))
    }

    /// A declaration's server token: changes when its type or payload does.
    static func serverToken(type: String, payload: [UInt8]) -> String {
        String(Digest.sha256(Array(type.utf8) + [0] + payload).hexString.prefix(32))
    }

    /// What Apple's schemas say against this declaration on a watch: its type, its supervision, its payload's keys.
    static func watchProblems(_ d: (type: String, payload: String), supervised: Bool) -> [String] {
        let keys = ((try? JSONSerialization.jsonObject(with: Data(d.payload.utf8))) as? [String: Any])?.keys.map { $0 } ?? []
        return WatchOSRules.declarationProblems(type: d.type, payloadKeys: keys, supervised: supervised)
    }

    /// Replaces the declarations assigned to an enrollment and asks the device to synchronise.
    func assign(_ identifiers: [String], to enrollmentID: String, actor: String, correlationID: String) async throws -> [String] {
        let devices = try await database.transaction { c -> [String] in
            guard try EnrollmentStore.exists(c, id: enrollmentID) else {
                throw refuse(.notFound, "no enrollment \(enrollmentID)")
            }
            let definitions = try DeclarationStore.definitions(c, identifiers)
            if let missing = identifiers.first(where: { definitions[$0] == nil }) {
                throw refuse(.badRequest, "no declaration \(missing)")
            }
            // A watch takes only what Apple's schemas allow on watchOS (and what its supervision allows).
            if let supervised = try AdminQueries.watches(c, among: [enrollmentID])[enrollmentID] {
                let problems = identifiers.flatMap { id in
                    Self.watchProblems(definitions[id]!, supervised: supervised).map { "\(id): \($0)" }
                }
                guard problems.isEmpty else {
                    throw refuse(.badRequest, "these declarations cannot go to a watch: \(problems.joined(separator: "; ")); nothing was assigned")
                }
            }
            try DeclarationStore.replaceAssignments(c, of: enrollmentID, with: identifiers)
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
        try DeclarationStore.remove(c, remove, from: enrollmentID)
        try DeclarationStore.add(c, add, to: enrollmentID)
        return try syncCommands(c, [enrollmentID], actor: actor, journal: &journal)
    }

    /// A DeclarativeManagement command carrying each device's new tokens.
    /// Assigns declarations to a device (an ADE profile's setup items) and returns the DeclarativeManagement
    /// command that tells it to synchronise, for the caller to queue and follow.
    func assignForSetup(_ c: Connection, _ identifiers: [String], to enrollmentID: String) throws -> MDMCommand? {
        let known = try DeclarationStore.existing(c, identifiers).filter(identifiers.contains)
        guard !known.isEmpty else { return nil }
        try DeclarationStore.add(c, Array(known), to: enrollmentID)
        let tokens = TokensResponse(declarationsToken: token(try DeclarationStore.tokens(c, of: enrollmentID)), timestamp: Date()).json
        return .declarativeManagement(tokens: tokens)
    }

    private func syncCommands(_ c: Connection, _ enrollmentIDs: [String], actor: String, journal: inout Journal) throws -> [String] {
        var queued: [String] = []
        for id in enrollmentIDs {
            let tokens = TokensResponse(declarationsToken: token(try DeclarationStore.tokens(c, of: id)), timestamp: Date()).json
            queued += try CommandQueue.enqueue(c, .declarativeManagement(tokens: tokens), enrollmentIDs: [id],
                                               requestedBy: actor, journal: &journal)
        }
        return queued
    }
}
