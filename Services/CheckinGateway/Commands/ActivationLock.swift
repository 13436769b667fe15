import AppleProtocol
import Foundation
import Hummingbird
import OrchardCrypto
import OrchardMessaging
import OrchardSchemas
import OrchardStorage

/// Activation Lock (Apple's "Creating and using bypass codes"): the device's bypass code, from its
/// ActivationLockBypassCode answer, is kept sealed; an admin escrows a code with ABM (`POST /device/activationlock`, by
/// abm-sync) for supervised devices — the device's own code, or one Orchard generates and keeps when the device reported
/// none — and may read both codes to clear a lock (each read is an activity entry).
struct ActivationLockObserver: CommandResultObserver {
    let secrets: SecretBox

    func commandFinished(_ result: CommandResult, requestType: String, enrollment: AuthorizedEnrollment, in c: Connection,
                         journal: inout Journal) throws -> [String] {
        guard requestType == "ActivationLockBypassCode", result.status == .acknowledged,
              let text = result.values["ActivationLockBypassCode"]?.string, !text.isEmpty else { return [] }
        guard let code = BypassCode(string: text) else {
            journal.activity(actor: "device:\(enrollment.id)", "activation-lock.code-malformed", device: enrollment.id, outcome: .refused,
                             detail: "the ActivationLockBypassCode answer is not a bypass code; the stored one is kept")
            return []
        }
        try ActivationLockStore.setDeviceCode(c, id: enrollment.id, sealed: try secrets.seal(code.bytes, context: "bypass/\(enrollment.id)"))
        journal.activity(actor: "device:\(enrollment.id)", "activation-lock.code-stored", device: enrollment.id, detail: "the device's bypass code, sealed")
        return []
    }
}

struct ActivationLockRoutes: Sendable {
    let database: Database
    let outbox: OutboxPublisher
    let requests: RequestClient
    let requestTimeout: Duration
    let secrets: SecretBox

    struct Input: Decodable {
        let serials: [String]
        let lostMessage: String?
    }

    struct CodesView: ResponseEncodable {
        let enrollmentID: String
        let deviceCode: String?
        let serverCode: String?
    }

    func add(to admin: RouterGroup<GatewayContext>) {
        // Escrows each supervised device's bypass code with ABM; per-serial outcomes.
        admin.post("abm/tokens/:id/devices/activation-lock") { request, context -> ABMDeviceAction.Reply in
            let input = try await request.decode(as: Input.self, context: context)
            guard (1...1000).contains(input.serials.count), input.serials.allSatisfy({ (1...64).contains($0.count) && !$0.containsControlCharacters }) else {
                throw refuse(.badRequest, "serials must list 1 to 1000 serial numbers")
            }
            let actor = context.adminKey!.actor
            let (keys, refused) = try await database.transaction { c -> ([String: String], [String: String]) in
                let targets = try ActivationLockStore.targets(c, serials: input.serials)
                var keys: [String: String] = [:], refused: [String: String] = [:]
                var journal = Journal(correlationID: context.correlationID)
                for serial in input.serials {
                    guard let target = targets[serial] else { refused[serial] = "NOT_ENROLLED"; continue }
                    guard target.supervised else { refused[serial] = "NOT_SUPERVISED"; continue }
                    let code: BypassCode
                    if let sealed = target.deviceCode ?? target.serverCode {
                        code = try BypassCode(bytes: try secrets.open(sealed, context: "bypass/\(target.id)"))
                    } else {
                        // The device reported none: Orchard's own code, kept, so the lock can be cleared with it later.
                        code = try BypassCode.generate()
                        try ActivationLockStore.setServerCode(c, id: target.id, sealed: try secrets.seal(code.bytes, context: "bypass/\(target.id)"))
                        journal.activity(actor: actor, "activation-lock.code-generated", device: target.id, detail: "serial \(serial): no code from the device")
                    }
                    keys[serial] = code.escrowKey
                }
                try journal.write(c)
                return (keys, refused)
            }
            outbox.notify()
            var outcomes = refused
            if !keys.isEmpty {
                let reply = try await requests.request(
                    ABMDeviceAction(tokenID: try context.parameters.require("id"), action: .activationLock, serials: keys.keys.sorted(), actor: actor,
                                    escrowKeys: keys, lostMessage: input.lostMessage),
                    timeout: max(requestTimeout, .seconds(60)), correlationID: context.correlationID)
                let answered = (try? JSONSerialization.jsonObject(with: Data(reply.devices.utf8))) as? [String: String] ?? [:]
                outcomes.merge(answered) { $1 }
            }
            return ABMDeviceAction.Reply(devices: String(decoding: try JSONSerialization.data(withJSONObject: outcomes, options: [.sortedKeys]), as: UTF8.self))
        }
        // The codes that clear a device's Activation Lock; reading them is recorded.
        admin.get("devices/:id/activation-lock-bypass") { _, context -> CodesView in
            let id = try context.parameters.require("id")
            guard let codes = try await ActivationLockStore.codes(database, id: id) else { throw refuse(.notFound, "no enrollment \(id)") }
            func open(_ sealed: [UInt8]?) throws -> String? { try sealed.map { try BypassCode(bytes: try secrets.open($0, context: "bypass/\(id)")).string } }
            let view = CodesView(enrollmentID: id, deviceCode: try open(codes.device), serverCode: try open(codes.server))
            var journal = Journal(correlationID: context.correlationID)
            journal.activity(actor: context.adminKey!.actor, "activation-lock.codes-read", device: id, detail: "bypass codes shown to \(context.adminKey!.actor)")
            try await journal.commit(to: database, outbox: outbox)
            return view
        }
    }
}
