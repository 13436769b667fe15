import Foundation
import Hummingbird
import OrchardMessaging
import OrchardSchemas

/// `/admin/v1/abm/api-accounts`: the Apple Business Manager API (abm-sync owns it): API accounts, the organisation's
/// inventory, its device management services, and bulk assignment jobs.
struct ABMAPIRoutes: Sendable {
    let requests: RequestClient
    let requestTimeout: Duration

    struct AccountInput: Decodable {
        let clientID: String
        let keyID: String
        let privateKey: String?
        let clientAssertion: String?
        let scope: String?
    }

    struct AssignmentInput: Decodable {
        let mdmServerID: String
        let serials: [String]
        /// `assign` (default) or `unassign`.
        let action: String?
    }

    func add(to admin: RouterGroup<GatewayContext>) {
        admin.put("abm/api-accounts/:id") { request, context -> ABMAPIAccountView in
            let input = try await request.decode(as: AccountInput.self, context: context)
            return try await requests.request(
                SaveABMAPIAccount(id: try context.parameters.require("id"), clientID: input.clientID, keyID: input.keyID,
                                  privateKeyPEM: input.privateKey, clientAssertion: input.clientAssertion, scope: input.scope,
                                  actor: context.adminKey!.actor),
                timeout: max(requestTimeout, .seconds(30)), correlationID: context.correlationID)
        }
        admin.get("abm/api-accounts") { _, context -> ListABMAPIAccounts.Reply in
            try await requests.request(ListABMAPIAccounts(), timeout: requestTimeout, correlationID: context.correlationID)
        }
        admin.post("abm/api-accounts/:id/inventory/sync") { _, context -> SyncABMInventory.Reply in
            try await requests.request(SyncABMInventory(accountID: try context.parameters.require("id"), actor: context.adminKey!.actor),
                                       timeout: max(requestTimeout, .seconds(120)), correlationID: context.correlationID)
        }
        admin.get("abm/api-accounts/:id/devices") { request, context -> ListABMInventory.Reply in
            let q = request.uri.queryParameters
            return try await requests.request(
                ListABMInventory(accountID: try context.parameters.require("id"), after: q["after"].map(String.init) ?? "", limit: try pageLimit(q["limit"])),
                timeout: requestTimeout, correlationID: context.correlationID)
        }
        admin.get("abm/api-accounts/:id/mdm-servers") { _, context -> ListABMServers.Reply in
            try await requests.request(ListABMServers(accountID: try context.parameters.require("id")), timeout: max(requestTimeout, .seconds(30)),
                                       correlationID: context.correlationID)
        }
        admin.post("abm/api-accounts/:id/assignments") { request, context -> ABMAssignmentJob.Reply in
            let input = try await request.decode(as: AssignmentInput.self, context: context)
            guard ["assign", "unassign"].contains(input.action ?? "assign") else { throw refuse(.badRequest, "action must be assign or unassign") }
            return try await requests.request(
                ABMAssignmentJob(accountID: try context.parameters.require("id"), mdmServerID: input.mdmServerID, serials: input.serials,
                                 unassign: input.action == "unassign", actor: context.adminKey!.actor),
                timeout: max(requestTimeout, .seconds(120)), correlationID: context.correlationID)
        }
        admin.get("abm/api-accounts/:id/assignments/:activity") { _, context -> ABMAssignmentJob.Reply in
            try await requests.request(
                ABMAssignmentJob(accountID: try context.parameters.require("id"), activityID: try context.parameters.require("activity"),
                                 actor: context.adminKey!.actor),
                timeout: max(requestTimeout, .seconds(30)), correlationID: context.correlationID)
        }
    }
}

extension ABMAPIAccountView: ResponseEncodable {}
extension ListABMAPIAccounts.Reply: ResponseEncodable {}
extension SyncABMInventory.Reply: ResponseEncodable {}
extension ListABMInventory.Reply: ResponseEncodable {}
extension ListABMServers.Reply: ResponseEncodable {}
extension ABMAssignmentJob.Reply: ResponseEncodable {}
