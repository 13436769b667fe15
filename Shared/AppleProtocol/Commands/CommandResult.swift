/// A device's message on the command channel (`PUT` ServerURL, `application/x-apple-aspen-mdm`):
/// `Idle`, or the result of the command it ran.
public struct CommandResult: Sendable, Equatable {
    public enum Status: String, Sendable {
        case idle = "Idle", acknowledged = "Acknowledged", error = "Error"
        case commandFormatError = "CommandFormatError", notNow = "NotNow"
    }

    public static let contentType = "application/x-apple-aspen-mdm"

    public var identity: EnrollmentIdentity
    public var status: Status
    public var commandUUID: String?
    public var errorChain: [[String: PlistValue]]
    /// The whole message, stored as the command's result.
    public var values: [String: PlistValue]

    public static func parse(_ body: [UInt8]) throws -> CommandResult {
        let values = try Plist.parseDictionary(body)
        let r = PlistReader(values)
        let statusText = try r.string("Status")
        guard let status = Status(rawValue: statusText) else { throw PlistError("unknown Status \(statusText.prefix(32))") }
        let uuid = try r.optionalString("CommandUUID")
        if status != .idle && uuid == nil { throw PlistError("\(statusText) without CommandUUID") }
        let chain = values["ErrorChain"]?.array?.compactMap(\.dictionary) ?? []
        return CommandResult(identity: try EnrollmentIdentity(r), status: status, commandUUID: uuid,
                             errorChain: chain, values: values)
    }
}
