import OrchardCore
import AppleProtocol
import Foundation
import Hummingbird
import OrchardCrypto
import OrchardSchemas
import OrchardMessaging
import OrchardStorage

extension AdminRoutes {
    /// `/admin/v1/ade/accounts`: the accounts of the ADE sign-in page (their passwords hashed here).
    func addADEAccountRoutes(to admin: RouterGroup<GatewayContext>) {
        admin.put("ade/accounts/:username") { request, context -> ADEAccountView in
            let username = try context.parameters.require("username").trimmingCharacters(in: .whitespaces).lowercased()
            guard (1...200).contains(username.count), !username.containsControlCharacters else {
                throw refuse(.badRequest, "username must be 1-200 characters")
            }
            let input = try await request.decode(as: ADEAccountInput.self, context: context)
            guard (12...1024).contains(input.password.count) else { throw refuse(.badRequest, "password must be 12 to 1024 characters") }
            let hashed = try await passwords.hash(input.password)
            try await database.transaction { c in
                try ADEAccountStore.save(c, username: username, salt: hashed.salt, hash: hashed.hash, iterations: ADESignInRoutes.iterations,
                                         disabled: input.disabled ?? false)
                try audit(c, context, "ade.account.saved", device: nil, detail: "\(username)\(input.disabled == true ? " (disabled)" : "")")
            }
            outbox.notify()
            return ADEAccountView(username: username, disabled: input.disabled ?? false, locked: false)
        }
        admin.get("ade/accounts") { _, _ -> Page<ADEAccountView> in
            Page(items: try await ADEAccountStore.list(database).map { ADEAccountView(username: $0.username, disabled: $0.disabled, locked: $0.locked) })
        }
        admin.delete("ade/accounts/:username") { _, context -> Response in
            let username = try context.parameters.require("username").lowercased()
            return try await removal(context, "ade.account.deleted", detail: username, missing: "no account \(username.prefix(200))") { c in
                try ADEAccountStore.delete(c, username: username)
            }
        }
    }
}
