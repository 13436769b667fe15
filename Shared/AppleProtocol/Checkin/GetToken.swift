/// Asks the server for a token of a service type (iOS 17+). The iPhone sends `com.apple.watch.pairing`
/// while a watch enrolls. https://developer.apple.com/documentation/devicemanagement/get-token
public struct GetToken: Sendable, Equatable {
    public static let watchPairing = "com.apple.watch.pairing"
    public static let managedAppleID = "com.apple.maid"

    public var identity: EnrollmentIdentity
    public var tokenServiceType: String
    public var securityToken: String?
    public var phoneUDID: String?
    public var watchUDID: String?

    init(_ r: PlistReader) throws {
        identity = try EnrollmentIdentity(r)
        tokenServiceType = try r.string("TokenServiceType")
        let parameters = PlistReader(try r.optionalDictionary("TokenParameters") ?? [:])
        securityToken = try parameters.optionalString("SecurityToken")
        phoneUDID = try parameters.optionalString("PhoneUDID")
        watchUDID = try parameters.optionalString("WatchUDID")
    }

    /// The response body: `{TokenData: <data>}`.
    public static func response(tokenData: [UInt8]) -> [UInt8] {
        Plist.xml(["TokenData": .data(tokenData)])
    }
}
