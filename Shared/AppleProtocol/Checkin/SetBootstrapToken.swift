/// Escrows (or, when empty, deletes) the bootstrap token. macOS.
public struct SetBootstrapToken: Sendable, Equatable {
    public var identity: EnrollmentIdentity
    public var bootstrapToken: [UInt8]?
    public var awaitingConfiguration: Bool

    init(_ r: PlistReader) throws {
        identity = try EnrollmentIdentity(r)
        bootstrapToken = try r.optionalData("BootstrapToken")
        awaitingConfiguration = try r.optionalBool("AwaitingConfiguration") ?? false
    }
}
