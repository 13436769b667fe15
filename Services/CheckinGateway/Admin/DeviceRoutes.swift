import OrchardCore
import AppleProtocol
import Foundation
import Hummingbird
import OrchardCrypto
import OrchardSchemas
import OrchardMessaging
import OrchardStorage

extension AdminRoutes {
    /// `/admin/v1/devices`: the enrollments, paged and filtered, and one with its user channels.
    func addDeviceRoutes(to admin: RouterGroup<GatewayContext>) {
        admin.get("devices") { request, _ -> Page<DeviceView> in
            let status = request.uri.queryParameters["status"].map(String.init)
            let limit = try pageLimit(request.uri.queryParameters["limit"])
            let after = request.uri.queryParameters["after"].map(String.init) ?? ""
            let rows = try await AdminQueries.devices(database, status: status, managedAppleID: request.uri.queryParameters["managedAppleID"].map(String.init),
                                                      after: after, limit: limit)
            return Page(items: rows.map(DeviceView.init))
        }
        admin.get("devices/:id") { _, context -> DeviceView in
            try await device(context.parameters.require("id"))
        }
    }

    func device(_ id: String) async throws -> DeviceView {
        guard let row = try await AdminQueries.device(database, id: id) else {
            throw refuse(.notFound, "no enrollment \(id)")
        }
        var view = DeviceView(row)
        let channels = try await UserChannelStore.channels(database, enrollmentID: id)
        if !channels.isEmpty { view.userChannels = channels.map(DeviceView.UserChannelView.init) }
        return view
    }
}
