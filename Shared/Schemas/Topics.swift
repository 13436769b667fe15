/// Every Kafka topic Orchard uses, with its partition count. The local broker and the
/// container topic-creation step both create exactly this list.
public enum Topics {
    public struct Definition: Sendable {
        public let name: String
        public let partitions: Int
        public let purpose: String
    }

    public static let all: [Definition] = [
        .init(name: DeviceEvent.topic, partitions: 6,
              purpose: "enrolled, token updated, information updated, checked out, unenrolled"),
        .init(name: ABMDeviceEvent.topic, partitions: 6, purpose: "ABM device assignment changes"),
        .init(name: ADEProfileEvent.topic, partitions: 3, purpose: "ADE profiles defined with ABM"),
        .init(name: CreateABMToken.topic, partitions: 3, purpose: "admin requests to abm-sync (server tokens, ADE profiles, devices)"),
        .init(name: SaveManagedDomain.topic, partitions: 3, purpose: "admin requests to user-enrollment-auth (Managed Apple Account domains)"),
        .init(name: AccountTokenEvent.topic, partitions: 6, purpose: "account-driven access tokens issued and revoked (the gateway's copy)"),
        .init(name: ActivityRecorded.topic, partitions: 6, purpose: "the audit trail of every major step"),
        .init(name: "orchard.token-requests.v1", partitions: 6, purpose: "security and pairing token requests"),
        .init(name: BuildEnrollmentProfile.topic, partitions: 6, purpose: "enrollment profile build-and-sign requests"),
        .init(name: EnqueueCommand.topic, partitions: 6, purpose: "enqueue MDM commands for enrollments"),
        .init(name: "orchard.replies.v1", partitions: 12, purpose: "replies, one partition read per requester"),
        .init(name: "orchard.dead-letters.v1", partitions: 3, purpose: "messages no handler could apply"),
        .init(name: BenchEcho.topic, partitions: 6, purpose: "benchmark and integration-test requests"),
        .init(name: BenchEvent.topic, partitions: 6, purpose: "benchmark and integration-test events"),
    ]

    /// The consumer groups Orchard's services form (`orchard.<service>` by default, see ServiceRuntime.consumer).
    /// The local broker reads their committed offsets to say what a restart of it lost.
    public static let consumerGroups = [
        "orchard.checkin-gateway", "orchard.checkin-gateway.activity", "orchard.checkin-gateway.abm",
        "orchard.checkin-gateway.account-tokens", "orchard.token-service",
        "orchard.profile-signer", "orchard.abm-sync", "orchard.user-enrollment-auth",
    ]
}
