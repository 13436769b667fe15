import OrchardCore
import AppleProtocol
import Foundation
import Hummingbird
import OrchardCrypto
import OrchardSchemas
import OrchardMessaging
import OrchardStorage

extension AdminRoutes {
    /// `/admin/v1/devices/{id}/commands` and `/admin/v1/commands`: commands queued for one device or many, and each device's command history.
    func addCommandRoutes(to admin: RouterGroup<GatewayContext>) {
        admin.get("devices/:id/commands") { _, context -> Page<CommandView> in
            let id = try context.parameters.require("id")
            let rows = try await AdminQueries.commands(database, of: id)
            return Page(items: rows.map(CommandView.init))
        }
        admin.post("devices/:id/commands") { request, context -> CommandQueued in
            let id = try context.parameters.require("id")
            let input = try await request.decode(as: CommandInput.self, context: context)
            return try await enqueue(input, for: [id], context: context)
        }
        admin.post("commands") { request, context -> CommandQueued in
            let input = try await request.decode(as: BulkCommandInput.self, context: context)
            guard !input.enrollmentIDs.isEmpty, input.enrollmentIDs.count <= 10_000 else {
                throw refuse(.badRequest, "enrollmentIDs must list 1 to 10000 enrollments")
            }
            return try await enqueue(input.command, for: input.enrollmentIDs, context: context)
        }
    }

    /// Builds the command an admin asked for, queues it and pushes the devices.
    func enqueue(_ input: CommandInput, for ids: [String], context: GatewayContext) async throws -> CommandQueued {
        let actor = context.adminKey!.actor
        // Erase and return to service: each device's own configuration; a profile it will need is built before the
        // transaction that grants its re-enrollment and queues the command.
        var returnProfiles: [String: ReturnToServiceConfiguration] = [:]
        if input.type == "EraseDevice" && input.returnToService == true {
            guard ids.count <= 100 else { throw refuse(.badRequest, "erase and return to service: at most 100 devices at a time") }
            for id in ids {
                let prepared = try await database.transaction { c in
                    try returnToService.prepare(c, enrollmentID: id, actor: actor, requireBootstrapToken: true, grant: false)
                }
                returnProfiles[id] = try await returnToService.complete(prepared, udid: id, correlationID: context.correlationID)
            }
        }
        let prebuilt = returnProfiles
        let queued = try await database.transaction { c -> (MDMCommand, [String], [CommandQueued.Part]) in
            var journal = Journal(correlationID: context.correlationID)
            var queued: [String] = []
            var last: MDMCommand?
            var parts: [CommandQueued.Part] = []
            // ClearPasscode and Unenroll depend on each device's own data, so each gets its own command.
            if !prebuilt.isEmpty {
                for id in ids {
                    // Read again in this transaction (and the re-enrollment granted): what the device gets is what holds now.
                    var configuration = try returnToService.prepare(c, enrollmentID: id, actor: actor, requireBootstrapToken: true).configuration
                    configuration.mdmProfile = prebuilt[id]?.mdmProfile
                    let command = MDMCommand.eraseDevice(preserveDataPlan: input.preserveDataPlan ?? false, returnToService: configuration)
                    let these = try CommandQueue.enqueue(c, command, enrollmentIDs: [id], requestedBy: actor, journal: &journal)
                    queued += these
                    last = command
                    journal.activity(actor: actor, "ade.return-to-service.erase-queued", device: id,
                                     detail: "EraseDevice with Return to Service: Wi-Fi profile \(configuration.wifiProfile == nil ? "none" : "sent"), "
                                        + "MDM profile \(configuration.mdmProfile == nil ? "not needed" : "sent"), bootstrap token sent")
                }
            } else if input.type == "ClearPasscode" || input.type == "Unenroll" {
                for id in ids {
                    let command = try perDeviceCommand(c, input.type, enrollmentID: id)
                    queued += try CommandQueue.enqueue(c, command, enrollmentIDs: [id], requestedBy: actor, journal: &journal)
                    last = command
                }
            } else if input.type == "DeviceInformation" && input.queries == nil {
                // The default queries include UDID, SerialNumber and IMEI, which Apple's schema forbids asking a User
                // Enrollment: those get the same queries without them, as a command of their own.
                let userEnrollments = Set(try AdminQueries.userEnrollments(c, among: ids).keys)
                let groups = [(ids.filter { !userEnrollments.contains($0) }, MDMCommand.standardQueries),
                              (ids.filter { userEnrollments.contains($0) }, MDMCommand.userEnrollmentQueries)]
                for (group, queries) in groups where !group.isEmpty {
                    let command = MDMCommand.deviceInformation(queries: queries)
                    let these = try CommandQueue.enqueue(c, command, enrollmentIDs: group, requestedBy: actor, journal: &journal)
                    guard !these.isEmpty else { continue }
                    queued += these
                    last = command
                    parts.append(CommandQueued.Part(commandUUID: command.commandUUID, queuedFor: these))
                }
            } else {
                let command = try input.command()
                if input.type == "InstallProfile", let bytes = input.profile.flatMap({ Data(base64Encoded: $0) }).map(Array.init) {
                    // A watch takes only the payloads and keys Apple's schemas allow on watchOS (and its supervision allows).
                    let watches = try AdminQueries.watches(c, among: ids)
                    if !watches.isEmpty {
                        let profile = try ProfileContent.plist(bytes)
                        for (id, supervised) in watches.sorted(by: { $0.key < $1.key }) {
                            let problems = WatchOSRules.problems(profile: profile, supervised: supervised)
                            guard problems.isEmpty else {
                                throw refuse(.badRequest, "InstallProfile to the watch \(id)\(supervised ? "" : " (not supervised)"): "
                                             + problems.joined(separator: "; ") + "; nothing was queued")
                            }
                        }
                    }
                }
                if input.type == "DeviceInformation", let queries = input.queries {
                    // Named queries Apple's schema forbids for a User Enrollment are refused, not sent to be refused there.
                    for (id, product) in try AdminQueries.userEnrollments(c, among: ids).sorted(by: { $0.key < $1.key }) {
                        let os = UserEnrollmentQueries.os(productName: product)
                        let refused = UserEnrollmentQueries.refused(queries, os: os)
                        guard refused.isEmpty else {
                            throw refuse(.badRequest, "DeviceInformation: Apple does not allow asking a User Enrollment (\(id), \(os ?? "any OS")) for "
                                         + "\(refused.joined(separator: ", ")) (information.device.yaml, userenrollment: forbidden); nothing was queued")
                        }
                    }
                }
                queued = try CommandQueue.enqueue(c, command, enrollmentIDs: ids, requestedBy: actor, journal: &journal)
                last = command
            }
            guard let command = last, !queued.isEmpty else {
                throw refuse(.notFound, "none of the enrollments exists or is enrolled")
            }
            try journal.write(c)
            return (command, queued, parts)
        }
        outbox.notify()
        await pusher.push(queued.1)
        // One command, or (DeviceInformation split between User Enrollments and others) the first, with every part listed.
        let first = queued.2.first
        return CommandQueued(commandUUID: first?.commandUUID ?? queued.0.commandUUID, requestType: queued.0.requestType,
                             queuedFor: queued.1, commands: queued.2.count > 1 ? queued.2 : nil)
    }

    func perDeviceCommand(_ c: Connection, _ type: String, enrollmentID: String) throws -> MDMCommand {
        guard let row = try AdminQueries.commandInputs(c, of: enrollmentID) else {
            throw refuse(.notFound, "no enrollment \(enrollmentID)")
        }
        if type == "Unenroll" {
            guard let identifier = row.string("profile_identifier") else {
                throw refuse(.conflict, "enrollment \(enrollmentID) was not enrolled with an Orchard profile; send RemoveProfile with its identifier")
            }
            return .removeProfile(identifier: identifier)
        }
        guard let sealed = row.bytes("sealed_unlock_token") else {
            throw refuse(.conflict, "enrollment \(enrollmentID) sent no UnlockToken; ClearPasscode needs one")
        }
        return .clearPasscode(unlockToken: try secrets.open(sealed, context: "unlock/\(enrollmentID)"))
    }
}
