/// macOS user-channel authentication; Orchard declines it (HTTP 410).
public struct UserAuthenticate: Sendable, Equatable {
    public var identity: EnrollmentIdentity
    init(_ r: PlistReader) throws { identity = try EnrollmentIdentity(r) }
}
