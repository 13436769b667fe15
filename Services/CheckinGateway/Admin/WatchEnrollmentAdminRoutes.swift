import OrchardCore
import AppleProtocol
import Foundation
import Hummingbird
import OrchardCrypto
import OrchardSchemas
import OrchardMessaging
import OrchardStorage

extension AdminRoutes {
    /// `/admin/v1/watch-enrollment`: which supervised iPhones may pair watches into management, and why others cannot.
    func addWatchEnrollmentRoutes(to admin: RouterGroup<GatewayContext>) {
        admin.put("watch-enrollment") { request, context -> WatchEnrollmentView in
            let input = try await request.decode(as: WatchEnrollmentInput.self, context: context)
            guard let mode = WatchEnrollmentSettings.Mode(rawValue: input.mode) else {
                throw refuse(.badRequest, "mode must be off, all-supervised or selected")
            }
            let outcome = try await watchEnrollment.save(mode: mode, selected: input.enrollmentIDs ?? [],
                                                         anchorsPEM: input.anchorCertificatesPEM,
                                                         actor: context.adminKey!.actor, correlationID: context.correlationID)
            outbox.notify()
            await pusher.push(outcome.push)
            return try await watchEnrollmentView()
        }
        admin.get("watch-enrollment") { _, _ -> WatchEnrollmentView in
            try await watchEnrollmentView()
        }
    }

    /// The settings, and for every iPhone whether watch enrollment is on or why it cannot be.
    func watchEnrollmentView() async throws -> WatchEnrollmentView {
        let settings = try await AdminQueries.watchSettings(database)
        let on = try await AdminQueries.watchEnabledPhones(database)
        let phones = try await AdminQueries.iPhones(database)
        return WatchEnrollmentView(
            mode: settings?.string("mode") ?? "off", enrollmentProfileURL: watchEnrollment.enrollmentProfileURL,
            hasAnchorCertificates: settings?.bool("anchors") ?? false,
            phones: phones.compactMap { r in
                r.string("id").map { .init(enrollmentID: $0, on: on.contains($0), notEligibleBecause: WatchEnrollmentSettings.ineligibility(r)) }
            })
    }
}
