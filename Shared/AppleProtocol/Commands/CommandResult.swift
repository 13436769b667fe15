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
    /// The whole message.
    public var values: [String: PlistValue]
    /// The body as received.
    public var body: [UInt8]

    /// The message as the command's result is stored: the body itself when the device sent an XML document (UTF-8),
    /// otherwise `values` written out as XML, whose size `PlistLimits` bounds by the body's (a binary body's shared
    /// references are written once per place).
    public var stored: [UInt8] {
        !body.starts(with: BinaryPlistParser.magic) && String(validating: body, as: UTF8.self) != nil ? body : Plist.xml(values)
    }

    public static func parse(_ body: [UInt8]) throws -> CommandResult {
        let values = try Plist.parseDictionary(body)
        let r = PlistReader(values)
        let statusText = try r.string("Status")
        guard let status = Status(rawValue: statusText) else { throw PlistError("unknown Status \(statusText.prefix(32))") }
        let uuid = try r.optionalString("CommandUUID")
        if status != .idle && uuid == nil { throw PlistError("\(statusText) without CommandUUID") }
        let chain = values["ErrorChain"]?.array?.compactMap(\.dictionary) ?? []
        return CommandResult(identity: try EnrollmentIdentity(r), status: status, commandUUID: uuid,
                             errorChain: chain, values: values, body: body)
    }
}
