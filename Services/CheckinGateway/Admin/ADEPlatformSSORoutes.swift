import Foundation
import Hummingbird
import OrchardMessaging
import OrchardStorage

/// `/admin/v1/ade/profiles/{id}/platform-sso`: an ADE profile's Platform SSO requirement (macOS 26), kept by the gateway
/// as setup items are. PUT checks the details (https URLs, the fallback, the domain) before anything is stored.
struct ADEPlatformSSORoutes: Sendable {
    let database: Database
    let outbox: OutboxPublisher
    let accounts: AccountAuthorization

    func add(to admin: RouterGroup<GatewayContext>) {
        admin.put("ade/profiles/:id/platform-sso") { request, context -> ADEPlatformSSO in
            let profileID = try context.parameters.require("id", as: UUID.self).uuidString.lowercased()
            let input = try await request.decode(as: ADEPlatformSSO.self, context: context)
            guard try await accounts.describe(input.domain, correlationID: context.correlationID) != nil else {
                throw refuse(.badRequest, "domain \(input.domain.prefix(253)) is not a Managed Apple Account domain of this organisation (its OpenID Connect provider signs the tokens)")
            }
            let text = String(decoding: try JSONEncoder().encode(input), as: UTF8.self)
            try await database.transaction { c in
                guard let requiresSignIn = try ADEStore.profileRequiresSignIn(c, profileID: profileID) else {
                    throw refuse(.notFound, "no ADE profile \(profileID)")
                }
                try input.check(requiresSignIn: requiresSignIn)
                try ADEStore.savePlatformSSO(c, profileID: profileID, settings: text, actor: context.adminKey!.actor)
                var journal = Journal(correlationID: context.correlationID)
                journal.activity(actor: context.adminKey!.actor, "ade.platform-sso.saved", device: nil,
                                 detail: "profile \(profileID): Platform SSO with \(input.domain)'s provider, fallback \(input.fallback)")
                try journal.write(c)
            }
            outbox.notify()
            return input
        }
        admin.get("ade/profiles/:id/platform-sso") { _, context -> ADEPlatformSSO in
            let profileID = try context.parameters.require("id", as: UUID.self).uuidString.lowercased()
            guard let text = try await ADEStore.platformSSO(database, profileID: profileID),
                  let settings = try? JSONDecoder().decode(ADEPlatformSSO.self, from: Data(text.utf8)) else {
                throw refuse(.notFound, "profile \(profileID) does not require Platform SSO")
            }
            return settings
        }
        admin.delete("ade/profiles/:id/platform-sso") { _, context -> Response in
            let profileID = try context.parameters.require("id", as: UUID.self).uuidString.lowercased()
            let deleted = try await database.transaction { c -> Bool in
                guard try ADEStore.deletePlatformSSO(c, profileID: profileID) else { return false }
                var journal = Journal(correlationID: context.correlationID)
                journal.activity(actor: context.adminKey!.actor, "ade.platform-sso.removed", device: nil, detail: "profile \(profileID)")
                try journal.write(c)
                return true
            }
            guard deleted else { throw refuse(.notFound, "profile \(profileID) does not require Platform SSO") }
            outbox.notify()
            return emptyResponse(.noContent)
        }
    }
}
