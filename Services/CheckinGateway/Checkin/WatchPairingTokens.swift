import AppleProtocol
import Foundation
import Hummingbird
import OrchardMessages
import OrchardMessaging
import OrchardStorage

/// The iPhone's `GetToken` for `com.apple.watch.pairing`: checks that the phone may pair a watch and
/// has token-service exchange the watch's security token for a pairing token bound to both devices.
struct WatchPairingTokens: Sendable {
    let database: Database
    let requests: RequestClient
    let requestTimeout: Duration

    func pairingToken(for m: GetToken, phone: AuthorizedEnrollment, correlationID: String) async throws -> [UInt8] {
        throw refuse(.forbidden, "watch enrollment is not turned on for \(phone.id)")
    }
}
