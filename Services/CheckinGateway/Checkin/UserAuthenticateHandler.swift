import AppleProtocol
import Hummingbird
import OrchardStorage

/// `UserAuthenticate` (macOS user channel): Orchard does not manage user channels and declines with
/// 410, which tells the device not to ask again.
struct UserAuthenticateHandler: DeviceMessageHandler {
    func apply(_ m: UserAuthenticate, to e: AuthorizedEnrollment, in c: Connection, journal: inout Journal) throws {}

    func respond(_ m: UserAuthenticate, to e: AuthorizedEnrollment, applied: Void, correlationID: String) async throws -> DeviceAnswer {
        DeviceAnswer(response: Response(status: .gone, headers: [.contentLength: "0"]))
    }
}
