/// Sent when the MDM profile is removed (best effort).
public struct CheckOut: Sendable, Equatable {
    public var identity: EnrollmentIdentity
    public var topic: String

    init(_ r: PlistReader) throws {
        identity = try EnrollmentIdentity(r)
        topic = try r.string("Topic")
    }
}
