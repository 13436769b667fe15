import OrchardCore
import AppleProtocol
import Foundation
import Hummingbird
import OrchardCrypto
import OrchardSchemas
import OrchardMessaging
import OrchardStorage

extension AdminRoutes {
    /// `/admin/v1/enrollment-links`: links that let a device enroll (count and expiry), revoked by id.
    func addEnrollmentLinkRoutes(to admin: RouterGroup<GatewayContext>) {
        admin.post("enrollment-links") { request, context -> EnrollmentLinkCreated in
            let input = try await request.decode(as: EnrollmentLinkInput.self, context: context)
            let made = try await links.create(name: input.name, expiresAt: input.expiresAt, maxUses: input.maxUses,
                                              actor: context.adminKey!.actor, correlationID: context.correlationID)
            return EnrollmentLinkCreated(id: made.id, url: made.url, token: made.token)
        }
        admin.get("enrollment-links") { _, _ -> Page<EnrollmentLinkView> in
            Page(items: try await AdminQueries.links(database).map(EnrollmentLinkView.init))
        }
        admin.delete("enrollment-links/:id") { _, context -> Response in
            let id = try context.parameters.require("id", as: UUID.self).uuidString.lowercased()
            return try await removal(context, "enrollment-link.revoked", detail: id, missing: "no active enrollment link \(id)") { c in
                try AdminQueries.revokeLink(c, id: id)
            }
        }
    }
}
