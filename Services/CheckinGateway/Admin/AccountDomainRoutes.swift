import OrchardCore
import AppleProtocol
import Foundation
import Hummingbird
import OrchardCrypto
import OrchardSchemas
import OrchardMessaging
import OrchardStorage

extension AdminRoutes {
    /// `/admin/v1/account-domains` and `/admin/v1/account-users`: Managed Apple Account domains (user-enrollment-auth owns them) and token revocation.
    func addAccountDomainRoutes(to admin: RouterGroup<GatewayContext>) {
        // Managed Apple Account domains (account-driven enrollment): user-enrollment-auth owns them.
        admin.put("account-domains/:domain") { request, context -> ManagedDomain in
            let input = try await request.decode(as: ManagedDomainInput.self, context: context)
            let saved = try await requests.request(
                SaveManagedDomain(domain: try context.parameters.require("domain"), mode: input.mode, directory: input.directory,
                                  ldap: input.ldap, authentication: input.authentication, oidc: input.oidc, minimumOS: input.minimumOS,
                                  enrollmentSSO: input.enrollmentSSO, actor: context.adminKey!.actor),
                timeout: requestTimeout, correlationID: context.correlationID)
            return await withABMRegistration([saved], correlationID: context.correlationID)[0]
        }
        // A Managed Apple Account's tokens: revoked, its devices' next requests are challenged (they sign in again).
        admin.post("account-users/:user/revoke-tokens") { _, context -> RevokeAccountTokens.Reply in
            // Percent-decoded: clients that encode "@" (%40) mean the same account.
            let raw = try context.parameters.require("user")
            let user = (raw.removingPercentEncoding ?? raw).lowercased()
            let reply = try await requests.request(RevokeAccountTokens(managedAppleID: user, actor: context.adminKey!.actor),
                                                   timeout: requestTimeout, correlationID: context.correlationID)
            // This gateway's copy and cache at once (the revocation events reach the copy too, a moment later).
            try await AccountTokenCopyStore.revoke(database, user: user, reason: "revoked by \(context.adminKey!.actor)")
            accounts.forget(user: user)
            return reply
        }
        admin.get("account-domains") { _, context -> ListManagedDomains.Reply in
            let reply = try await requests.request(ListManagedDomains(), timeout: requestTimeout, correlationID: context.correlationID)
            return ListManagedDomains.Reply(items: await withABMRegistration(reply.items, correlationID: context.correlationID))
        }
        admin.delete("account-domains/:domain") { _, context -> Response in
            _ = try await requests.request(DeleteManagedDomain(domain: try context.parameters.require("domain"), actor: context.adminKey!.actor),
                                           timeout: requestTimeout, correlationID: context.correlationID)
            return emptyResponse(.noContent)
        }
    }

    /// `registeredWithABM`: whether an ABM server token has the domains' discovery URL registered (abm-sync says; when
    /// it does not answer, the domains show as not registered).
    func withABMRegistration(_ domains: [ManagedDomain], correlationID: String) async -> [ManagedDomain] {
        guard let tokens = try? await requests.request(ListABMTokens(), timeout: requestTimeout, correlationID: correlationID) else {
            return domains
        }
        let registered = Set(tokens.items.filter { $0.discoveryRegisteredAt != nil }.compactMap(\.discoveryURL))
        return domains.map { var d = $0; d.registeredWithABM = d.discoveryURL.map(registered.contains) ?? false; return d }
    }
}
