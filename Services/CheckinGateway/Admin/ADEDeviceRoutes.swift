import OrchardCore
import AppleProtocol
import Foundation
import Hummingbird
import OrchardCrypto
import OrchardSchemas
import OrchardMessaging
import OrchardStorage

extension AdminRoutes {
    /// `/admin/v1/ade/devices` and `/admin/v1/ade/migrations`: ADE as the gateway sees it, and one re-enrollment allowed by hand.
    func addADEDeviceRoutes(to admin: RouterGroup<GatewayContext>) {
        // ADE as the gateway sees it: each device's state, and the setup items of each ADE profile.
        admin.get("ade/devices") { request, _ -> Page<ADEDeviceView> in
            let q = request.uri.queryParameters
            let rows = try await ADEStore.list(database, after: q["after"].map(String.init) ?? "", limit: try pageLimit(q["limit"]))
            return Page(items: rows.map(ADEDeviceView.init))
        }
        // Devices migrating here from another MDM server: deadline, state, setup items left, overdue.
        admin.get("ade/migrations") { request, _ -> Page<ADEMigrationView> in
            let rows = try await ADEStore.migrations(database, limit: try pageLimit(request.uri.queryParameters["limit"]))
            return Page(items: rows.map(ADEMigrationView.init))
        }
        // One re-enrollment of an enrolled serial without ABM showing a new profile push (a device wiped where Apple's
        // push is not seen, or a replaced logic board): spent by the next ADE enrollment of the serial, within 24 hours.
        admin.post("ade/devices/:serial/allow-reenrollment") { _, context -> ADEReenrollmentAllowance in
            let serial = try context.parameters.require("serial")
            guard (1...64).contains(serial.count), !serial.containsControlCharacters else {
                throw refuse(.badRequest, "a serial number is 1 to 64 characters")
            }
            guard try await ADEStore.assignment(database, serial: serial) != nil else {
                throw refuse(.notFound, "serial \(serial) is not an ADE device of this server (not in the copy of ABM's devices)")
            }
            let until = try await database.transaction { c -> Date in
                let until = try ADEStore.allowReenrollment(c, serial: serial, by: context.adminKey!.actor,
                                                           for: ADEReenrollment.allowanceLifetime)
                try audit(c, context, "ade.reenrollment.allowed", device: nil,
                          detail: "serial \(serial) may re-enroll once without a new profile push, until \(ISO8601.string(from: until))")
                return until
            }
            outbox.notify()
            return ADEReenrollmentAllowance(serialNumber: serial, allowedBy: context.adminKey!.actor, expiresAt: ISO8601.string(from: until))
        }
    }
}
