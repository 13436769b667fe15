import OrchardCore
import AppleProtocol
import Foundation
import Hummingbird
import OrchardCrypto
import OrchardSchemas
import OrchardMessaging
import OrchardStorage

extension AdminRoutes {
    /// `/admin/v1/abm/profiles` and `/admin/v1/ade/profiles/{id}/setup`: ADE profiles (abm-sync defines and assigns them with ABM) and the setup items the gateway runs for each.
    func addADEProfileRoutes(to admin: RouterGroup<GatewayContext>) {
        // ADE profiles and the device mirror (abm-sync defines and assigns them with ABM).
        admin.post("abm/tokens/:id/profiles") { request, context -> ADEProfileView in
            let input = try await request.decode(as: ADEProfileInput.self, context: context)
            var profile = input.profile.bytes
            let object = (try? JSONSerialization.jsonObject(with: Data(profile))) as? [String: Any]
            if input.signIn == true, var object {
                if object["configuration_web_url"] == nil { object["configuration_web_url"] = adeSignInURL }
                if object["url"] == nil { object["url"] = adeEnrollmentURL }
                profile = Array(try JSONSerialization.data(withJSONObject: object))
            }
            // Whatever asked for it (signIn, or the page named by hand), a profile whose web view is the sign-in page
            // gets its profile only from that page's POST: the `url` then refuses.
            let webURL = ((try? JSONSerialization.jsonObject(with: Data(profile))) as? [String: Any])?["configuration_web_url"] as? String
            return try await requests.request(
                DefineADEProfile(tokenID: try context.parameters.require("id"), profile: Data(profile),
                                 minimumOS: input.minimumOS ?? [:], makeDefault: input.default ?? false,
                                 enrollmentURL: adeEnrollmentURL, actor: context.adminKey!.actor,
                                 requiresSignIn: webURL == adeSignInURL),
                timeout: max(requestTimeout, .seconds(30)), correlationID: context.correlationID)
        }
        admin.get("abm/profiles") { _, context -> ListADEProfiles.Reply in
            try await requests.request(ListADEProfiles(), timeout: requestTimeout, correlationID: context.correlationID)
        }
        admin.post("abm/profiles/:id/default") { _, context -> AssignADEProfile.Reply in
            try await requests.request(SetDefaultADEProfile(profileID: try context.parameters.require("id"), actor: context.adminKey!.actor),
                                       timeout: max(requestTimeout, .seconds(60)), correlationID: context.correlationID)
        }
        admin.post("abm/profiles/:id/assign") { request, context -> AssignADEProfile.Reply in
            let input = try await request.decode(as: SerialsInput.self, context: context)
            guard (1...100_000).contains(input.serials.count) else { throw refuse(.badRequest, "serials must list 1 to 100000 serial numbers") }
            return try await requests.request(
                AssignADEProfile(profileID: try context.parameters.require("id"), serials: input.serials, actor: context.adminKey!.actor),
                timeout: max(requestTimeout, .seconds(60)), correlationID: context.correlationID)
        }

        admin.put("ade/profiles/:id/setup") { request, context -> ADESetupView in
            let profileID = try context.parameters.require("id", as: UUID.self).uuidString.lowercased()
            let input = try await request.decode(as: ADESetupInput.self, context: context)
            let commands = input.commands ?? [], declarationIDs = input.declarations ?? []
            guard commands.count <= 100, declarationIDs.count <= 100 else {
                throw refuse(.badRequest, "at most 100 commands and 100 declarations")
            }
            for command in commands {
                guard !["ClearPasscode", "Unenroll", "EraseDevice", "DeviceConfigured"].contains(command.type) else {
                    throw refuse(.badRequest, "\(command.type) cannot be a setup item")
                }
                _ = try command.command()
            }
            let text = String(decoding: try JSONEncoder().encode(commands), as: UTF8.self)
            try await database.transaction { c in
                let known = try DeclarationStore.existing(c, declarationIDs)
                if let missing = declarationIDs.first(where: { !known.contains($0) }) { throw refuse(.badRequest, "no declaration \(missing)") }
                try ADEStore.saveSetupItems(c, profileID: profileID, commands: text, declarations: declarationIDs,
                                            actor: context.adminKey!.actor)
                try audit(c, context, "ade.setup-items.saved", device: nil,
                          detail: "profile \(profileID): \(commands.map(\.type).joined(separator: ", ")); declarations \(declarationIDs.joined(separator: ", "))")
            }
            outbox.notify()
            return ADESetupView(profileID: profileID, commands: commands.map(\.type), declarations: declarationIDs)
        }
    }
}
