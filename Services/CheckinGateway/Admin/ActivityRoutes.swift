import OrchardCore
import AppleProtocol
import Foundation
import Hummingbird
import OrchardCrypto
import OrchardSchemas
import OrchardMessaging
import OrchardStorage

extension AdminRoutes {
    /// `/admin/v1/activity`: the activity log, by device or action.
    func addActivityRoutes(to admin: RouterGroup<GatewayContext>) {
        admin.get("activity") { request, _ -> Page<ActivityView> in
            let q = request.uri.queryParameters
            let limit = try pageLimit(q["limit"])
            let rows = try await AdminQueries.activity(database, deviceID: q["deviceID"].map(String.init),
                                                       action: q["action"].map(String.init), limit: limit)
            return Page(items: rows.map(ActivityView.init))
        }
    }
}
