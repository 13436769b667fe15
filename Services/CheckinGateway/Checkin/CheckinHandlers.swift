/// The handler of each check-in message type (`PUT` CheckInURL), one file each in this folder.
struct CheckinHandlers: Sendable {
    let authenticate: AuthenticateHandler
    let tokenUpdate: TokenUpdateHandler
    let checkOut: CheckOutHandler
    let setBootstrapToken: SetBootstrapTokenHandler
    let getBootstrapToken: GetBootstrapTokenHandler
    let declarativeManagement: DeclarativeManagementHandler
    let getToken: GetTokenHandler
    let userAuthenticate: UserAuthenticateHandler
}

/// Check-in messages that name a `Topic` must name this server's push topic (when one is installed).
struct PushTopicCheck: Sendable {
    let pushTopic: @Sendable () async -> String?

    func check(_ topic: String) async throws {
        if let expected = await pushTopic(), expected != topic {
            throw refuse(.forbidden, "Topic \(topic.prefix(80)) is not this server's push topic")
        }
    }
}
