import OrchardCore
import AppleProtocol
import Foundation
import Hummingbird
import OrchardCrypto
import OrchardSchemas
import OrchardMessaging
import OrchardStorage

extension AdminRoutes {
    /// `/admin/v1/abm/tokens` and `/admin/v1/abm/devices`: ABM server tokens and the device mirror (abm-sync owns them and writes their activity entries).
    func addABMTokenRoutes(to admin: RouterGroup<GatewayContext>) {
        // Apple Business Manager server tokens: abm-sync owns them (private keys and credentials); these
        // routes ask it over Kafka, and it writes the activity entries.
        admin.post("abm/tokens") { request, context -> ABMTokenHealth in
            let input = try await request.decode(as: ABMTokenInput.self, context: context)
            return try await requests.request(CreateABMToken(name: input.name, actor: context.adminKey!.actor),
                                              timeout: requestTimeout, correlationID: context.correlationID)
        }
        admin.post("abm/tokens/:id/check") { _, context -> ABMTokenHealth in
            try await requests.request(CheckABMToken(id: try context.parameters.require("id"), actor: context.adminKey!.actor),
                                       timeout: requestTimeout, correlationID: context.correlationID)
        }
        admin.post("abm/tokens/:id/sync") { request, context -> SyncABMToken.Reply in
            let full = request.uri.queryParameters["fullFetch"].map { $0 == "true" } ?? false
            // A sync of many pages outlasts a request: it goes on in abm-sync after a 503, and the next call sees it.
            return try await requests.request(SyncABMToken(id: try context.parameters.require("id"), actor: context.adminKey!.actor,
                                                           fullFetch: full),
                                              timeout: max(requestTimeout, .seconds(30)), correlationID: context.correlationID)
        }
        admin.post("abm/tokens/:id/rotate-key") { _, context -> ABMTokenHealth in
            try await requests.request(RotateABMTokenKey(id: try context.parameters.require("id"), actor: context.adminKey!.actor),
                                       timeout: requestTimeout, correlationID: context.correlationID)
        }
        admin.get("abm/tokens") { _, context -> ListABMTokens.Reply in
            try await requests.request(ListABMTokens(), timeout: requestTimeout, correlationID: context.correlationID)
        }
        admin.put("abm/tokens/:id/server-token") { request, context -> ABMTokenHealth in
            let id = try context.parameters.require("id")
            let p7m = try await request.bodyBytes(limit: 64 * 1024)
            return try await requests.request(UploadABMServerToken(id: id, p7m: Data(p7m), actor: context.adminKey!.actor),
                                              timeout: requestTimeout, correlationID: context.correlationID)
        }

        admin.get("abm/devices") { request, context -> ListABMDevices.Reply in
            let q = request.uri.queryParameters
            return try await requests.request(
                ListABMDevices(tokenID: q["tokenId"].map(String.init), after: q["after"].map(String.init) ?? "",
                               limit: try pageLimit(q["limit"])),
                timeout: requestTimeout, correlationID: context.correlationID)
        }
        admin.post("abm/tokens/:id/devices/check") { request, context -> ABMDeviceAction.Reply in
            try await deviceAction(.check, request, context)
        }
        admin.post("abm/tokens/:id/devices/disown") { request, context -> ABMDeviceAction.Reply in
            try await deviceAction(.disown, request, context)
        }
        admin.post("abm/tokens/:id/devices/remove-profile") { request, context -> ABMDeviceAction.Reply in
            try await deviceAction(.removeProfile, request, context)
        }
    }

    func deviceAction(_ action: ABMDeviceAction.Action, _ request: Request, _ context: GatewayContext) async throws
        -> ABMDeviceAction.Reply {
        let input = try await request.decode(as: SerialsInput.self, context: context)
        guard (1...1000).contains(input.serials.count) else { throw refuse(.badRequest, "serials must list 1 to 1000 serial numbers") }
        return try await requests.request(ABMDeviceAction(tokenID: try context.parameters.require("id"), action: action,
                                                          serials: input.serials, actor: context.adminKey!.actor),
                                          timeout: requestTimeout, correlationID: context.correlationID)
    }
}
