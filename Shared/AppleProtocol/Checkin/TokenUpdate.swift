/// Push credentials, sent after installation and whenever they change.
/// https://developer.apple.com/documentation/devicemanagement/token-update
public struct TokenUpdate: Sendable, Equatable {
    public var identity: EnrollmentIdentity
    public var topic: String
    public var token: [UInt8]
    public var pushMagic: String
    public var unlockToken: [UInt8]?
    public var awaitingConfiguration: Bool

    init(_ r: PlistReader) throws {
        identity = try EnrollmentIdentity(r)
        topic = try r.string("Topic")
        token = try r.data("Token")
        guard !token.isEmpty, token.count <= 256 else { throw PlistError("Token has an invalid length") }
        pushMagic = try r.string("PushMagic")
        unlockToken = try r.optionalData("UnlockToken")
        awaitingConfiguration = try r.optionalBool("AwaitingConfiguration") ?? false
    }
}
