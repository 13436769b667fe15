/// Check-in messages that name a `Topic` must name this server's push topic (when one is installed).
struct PushTopicCheck: Sendable {
    let pushTopic: @Sendable () async throws -> String?

    func check(_ topic: String) async throws {
        if let expected = try await pushTopic(), expected != topic {
            throw refuse(.forbidden, "Topic \(topic.prefix(80)) is not this server's push topic")
        }
    }
}
