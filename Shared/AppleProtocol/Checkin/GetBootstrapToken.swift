/// Asks for the escrowed bootstrap token.
public struct GetBootstrapToken: Sendable, Equatable {
    public var identity: EnrollmentIdentity
    init(_ r: PlistReader) throws { identity = try EnrollmentIdentity(r) }
}
