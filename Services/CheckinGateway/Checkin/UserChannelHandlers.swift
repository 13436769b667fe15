import AppleProtocol
import Hummingbird
import OrchardStorage

/// `TokenUpdate` on a Mac's user channel: the user's push credentials, kept apart from the device's (one row per user);
/// it neither enrolls the device nor queues anything. The pipeline has already required the bearer when the enrollment
/// is account-driven.
struct UserTokenUpdateHandler: DeviceMessageHandler {
    let topic: PushTopicCheck

    func check(_ m: TokenUpdate) async throws { try await topic.check(m.topic) }

    func apply(_ m: TokenUpdate, to e: AuthorizedEnrollment, in c: Connection, journal: inout Journal) throws {
        let user = m.identity.userChannel ?? ""
        switch try UserChannelStore.tokenUpdate(c, enrollmentID: e.id, user: user, m) {
        case .registered:
            let name = m.identity.userShortName.map { "\($0) (\(user))" } ?? user
            let account = e.record?.account.map { ", \($0.managedAppleID)" } ?? ""
            journal.activity(actor: "device:\(e.id)", "user-channel.registered", device: e.id, detail: "user \(name)\(account)")
        case .updated:
            break
        case .full:
            throw refuse(.forbidden, "enrollment \(e.id) already has \(UserChannelStore.limitPerEnrollment) user channels")
        }
    }
}

/// The command channel of a Mac's user channel. Orchard queues no user-channel commands, so every request (Idle, or a
/// result for a command it never sent there) is answered with an empty body once authorized; a user channel that never
/// sent its TokenUpdate is told to (401: the device sends TokenUpdate again).
struct UserCommandChannelHandler: DeviceMessageHandler {
    func apply(_ result: CommandResult, to e: AuthorizedEnrollment, in c: Connection, journal: inout Journal) throws {
        guard try UserChannelStore.touch(c, enrollmentID: e.id, user: result.identity.userChannel ?? "") else {
            throw refuse(.unauthorized, "no user channel \(result.identity.userChannel ?? "") for enrollment \(e.id): TokenUpdate first")
        }
    }
}
