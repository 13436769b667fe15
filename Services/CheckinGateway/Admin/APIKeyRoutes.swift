import OrchardCore
import AppleProtocol
import Foundation
import Hummingbird
import OrchardCrypto
import OrchardSchemas
import OrchardMessaging
import OrchardStorage

extension AdminRoutes {
    /// `/admin/v1/api-keys`: the admin API's keys (only their hashes stored) and their scopes.
    func addAPIKeyRoutes(to admin: RouterGroup<GatewayContext>) {
        admin.post("api-keys") { request, context -> APIKeyCreated in
            let input = try await request.decode(as: APIKeyInput.self, context: context)
            guard !input.name.isEmpty, input.name.count <= 100 else { throw refuse(.badRequest, "name must be 1-100 characters") }
            guard !input.scopes.isEmpty, Set(input.scopes).isSubset(of: ["admin", "read"]) else {
                throw refuse(.badRequest, "scopes must be admin and/or read")
            }
            let key = "orchard_" + (try SecureRandom.token())
            let id = RandomUUID.lowercased()
            do {
                try await database.transaction { c in
                    try AdminQueries.createKey(c, id: id, name: input.name, keyHash: Digest.sha256(Array(key.utf8)), scopes: input.scopes)
                    try audit(c, context, "api-key.created", device: nil, detail: input.name)
                }
            } catch let error as PostgresError where error.isUniqueViolation {
                throw refuse(.conflict, "an API key named \(input.name) exists")
            }
            outbox.notify()
            return APIKeyCreated(id: id, name: input.name, key: key, scopes: input.scopes)
        }
        admin.get("api-keys") { _, _ -> Page<APIKeyView> in
            let rows = try await AdminQueries.keys(database)
            return Page(items: rows.map {
                APIKeyView(id: $0.string("id") ?? "", name: $0.string("name") ?? "",
                           scopes: ($0.string("scopes") ?? "").split(separator: ",").map(String.init),
                           createdAt: isoDate($0.date("created_at")), revoked: !$0.isNull("revoked_at"))
            })
        }
        admin.delete("api-keys/:id") { _, context -> Response in
            let id = try context.parameters.require("id", as: UUID.self).uuidString.lowercased()
            return try await removal(context, "api-key.revoked", detail: id, missing: "no active API key \(id)") { c in
                try AdminQueries.revokeKey(c, id: id)
            }
        }
    }
}
