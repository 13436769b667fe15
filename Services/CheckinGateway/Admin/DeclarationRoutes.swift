import OrchardCore
import AppleProtocol
import Foundation
import Hummingbird
import OrchardCrypto
import OrchardSchemas
import OrchardMessaging
import OrchardStorage

extension AdminRoutes {
    /// `/admin/v1/declarations` and `/admin/v1/devices/{id}/declarations`: declarative management, and what each device is assigned and reported.
    func addDeclarationRoutes(to admin: RouterGroup<GatewayContext>) {
        admin.get("declarations") { _, _ -> Page<DeclarationView> in
            let rows = try await AdminQueries.declarations(database)
            return Page(items: rows.map {
                DeclarationView(identifier: $0.string("identifier") ?? "", type: $0.string("type") ?? "",
                                serverToken: $0.string("server_token") ?? "", updatedAt: isoDate($0.date("updated_at")),
                                payload: $0.string("payload") ?? "{}")
            })
        }
        admin.put("declarations/:identifier") { request, context -> Response in
            let identifier = try context.parameters.require("identifier")
            let input = try await request.decode(as: DeclarationInput.self, context: context)
            let devices = try await declarations.upsert(identifier: identifier, type: input.type, payload: input.payload.bytes,
                                                        actor: context.adminKey!.actor, correlationID: context.correlationID)
            await pusher.push(devices)
            return emptyResponse(.noContent)
        }
        admin.delete("declarations/:identifier") { _, context -> Response in
            let identifier = try context.parameters.require("identifier")
            return try await removal(context, "declaration.deleted", detail: identifier, missing: "no declaration \(identifier)") { c in
                try AdminQueries.deleteDeclaration(c, identifier: identifier)
            }
        }
        admin.put("devices/:id/declarations") { request, context -> Response in
            let id = try context.parameters.require("id")
            let input = try await request.decode(as: AssignmentInput.self, context: context)
            let devices = try await declarations.assign(input.identifiers, to: id, actor: context.adminKey!.actor,
                                                        correlationID: context.correlationID)
            await pusher.push(devices)
            return emptyResponse(.noContent)
        }
        admin.get("devices/:id/declarations") { _, context -> DeviceDeclarationsView in
            let id = try context.parameters.require("id")
            let assigned = try await AdminQueries.assignedDeclarations(database, to: id)
            let status = try await AdminQueries.declarationStatus(database, of: id)
            return DeviceDeclarationsView(identifiers: assigned, lastStatusReport: status?.string("report"),
                                          lastStatusAt: isoDate(status?.date("received_at")))
        }
    }
}
