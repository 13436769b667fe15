import AppleProtocol
import Foundation
import Hummingbird
import OrchardStorage

/// A device's ProfileList answer, kept (the last one replaces the one before) for `GET /devices/{id}/profiles`: what the
/// device says it has installed, a watch's included.
struct InstalledProfilesObserver: CommandResultObserver {
    struct Item: Codable, Sendable {
        let identifier: String, uuid: String?, displayName: String?, organization: String?, managed: Bool?, payloadTypes: [String]
    }

    func commandFinished(_ result: CommandResult, requestType: String, enrollment: AuthorizedEnrollment, in c: Connection,
                         journal: inout Journal) throws -> [String] {
        guard requestType == "ProfileList", result.status == .acknowledged, let list = result.values["ProfileList"]?.array else { return [] }
        let items = list.prefix(500).compactMap(\.dictionary).compactMap { p -> Item? in
            guard let id = p["PayloadIdentifier"]?.string else { return nil }
            func text(_ key: String) -> String? { p[key]?.string.map { String($0.prefix(200)) } }
            return Item(identifier: String(id.prefix(200)), uuid: text("PayloadUUID"), displayName: text("PayloadDisplayName"),
                        organization: text("PayloadOrganization"), managed: p["IsManaged"]?.bool,
                        payloadTypes: (p["PayloadContent"]?.array ?? []).prefix(100).compactMap { $0.dictionary?["PayloadType"]?.string })
        }
        try InstalledProfilesStore.save(c, id: enrollment.id, json: String(decoding: try JSONEncoder().encode(items), as: UTF8.self))
        return []
    }
}

struct InstalledProfilesRoutes: Sendable {
    let database: Database

    struct View: ResponseEncodable {
        let enrollmentID: String
        let reportedAt: String?
        let items: [InstalledProfilesObserver.Item]
    }

    func add(to admin: RouterGroup<GatewayContext>) {
        // What the device last reported installed (queue a ProfileList command to refresh it).
        admin.get("devices/:id/profiles") { _, context -> View in
            let id = try context.parameters.require("id")
            guard let stored = try await InstalledProfilesStore.load(database, id: id) else { throw refuse(.notFound, "no enrollment \(id)") }
            let items = stored.json.flatMap { try? JSONDecoder().decode([InstalledProfilesObserver.Item].self, from: Data($0.utf8)) } ?? []
            return View(enrollmentID: id, reportedAt: isoDate(stored.at), items: items)
        }
    }
}
