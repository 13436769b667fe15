/// A declarative-management request carried over check-in.
public struct DeclarativeManagementCheckin: Sendable, Equatable {
    public var identity: EnrollmentIdentity
    public var endpoint: String
    public var data: [UInt8]?

    init(_ r: PlistReader) throws {
        identity = try EnrollmentIdentity(r)
        endpoint = try r.string("Endpoint")
        data = try r.optionalData("Data")
    }
}
