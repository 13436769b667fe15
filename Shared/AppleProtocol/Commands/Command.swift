import Foundation
import OrchardCore

/// An MDM command: `{CommandUUID, Command: {RequestType, …}}`, as served on the command channel.
public struct MDMCommand: Sendable, Equatable {
    public var commandUUID: String
    public var requestType: String
    /// The keys of `Command` other than `RequestType`.
    public var parameters: [String: PlistValue]

    public init(requestType: String, parameters: [String: PlistValue] = [:], commandUUID: String = RandomUUID.uppercased()) {
        self.commandUUID = commandUUID
        self.requestType = requestType
        self.parameters = parameters
    }

    /// The command's plist.
    public var plist: [UInt8] {
        var command = parameters
        command["RequestType"] = .string(requestType)
        return Plist.xml(["CommandUUID": .string(commandUUID), "Command": .dictionary(command)])
    }

    /// Reads a command given as a full plist (`CommandUUID` + `Command`), for raw commands from the admin API.
    public init(plist bytes: [UInt8]) throws {
        let root = PlistReader(try Plist.parseDictionary(bytes))
        guard let command = try root.optionalDictionary("Command") else { throw PlistError("missing Command") }
        let reader = PlistReader(command)
        requestType = try reader.string("RequestType")
        commandUUID = try root.optionalString("CommandUUID") ?? RandomUUID.uppercased()
        parameters = command.filter { $0.key != "RequestType" }
    }
}

/// Typed builders for the commands Orchard sends itself.
extension MDMCommand {
    /// Queries a device's attributes; the answer updates the enrollment's record.
    public static func deviceInformation(queries: [String] = MDMCommand.standardQueries) -> MDMCommand {
        MDMCommand(requestType: "DeviceInformation", parameters: ["Queries": .array(queries.map(PlistValue.string))])
    }

    /// The standard queries a User Enrollment may be asked on any OS (Apple's schema forbids UDID, SerialNumber and IMEI there).
    public static var userEnrollmentQueries: [String] { standardQueries.filter { UserEnrollmentQueries.refused([$0], os: nil).isEmpty } }

    public static let standardQueries = [
        "UDID", "DeviceName", "OSVersion", "BuildVersion", "ModelName", "Model", "ProductName", "SerialNumber",
        "IsSupervised", "IsMultiUser", "IMEI",
    ]

    /// Installs a (possibly signed) configuration profile.
    public static func installProfile(_ profile: [UInt8]) -> MDMCommand {
        MDMCommand(requestType: "InstallProfile", parameters: ["Payload": .data(profile)])
    }

    /// Removes a profile by its `PayloadIdentifier`; the MDM profile's identifier unenrolls the device.
    public static func removeProfile(identifier: String) -> MDMCommand {
        MDMCommand(requestType: "RemoveProfile", parameters: ["Identifier": .string(identifier)])
    }

    public static func deviceLock(message: String? = nil, phoneNumber: String? = nil) -> MDMCommand {
        var p: [String: PlistValue] = [:]
        if let message { p["Message"] = .string(message) }
        if let phoneNumber { p["PhoneNumber"] = .string(phoneNumber) }
        return MDMCommand(requestType: "DeviceLock", parameters: p)
    }

    public static func eraseDevice(preserveDataPlan: Bool = false, returnToService: ReturnToServiceConfiguration? = nil) -> MDMCommand {
        var parameters: [String: PlistValue] = ["PreserveDataPlan": .bool(preserveDataPlan)]
        if let returnToService { parameters["ReturnToService"] = returnToService.dictionary }
        return MDMCommand(requestType: "EraseDevice", parameters: parameters)
    }

    /// Needs the UnlockToken the device sent in its TokenUpdate.
    public static func clearPasscode(unlockToken: [UInt8]) -> MDMCommand {
        MDMCommand(requestType: "ClearPasscode", parameters: ["UnlockToken": .data(unlockToken)])
    }

    /// Releases a device waiting in Setup Assistant (`AwaitingConfiguration`).
    public static func deviceConfigured() -> MDMCommand {
        MDMCommand(requestType: "DeviceConfigured")
    }

    /// Installs an App Store app (public or custom) by its store id, managed (removed with the MDM profile: flag 1). A
    /// watch is given the watch app's bundle identifier as `Identifier` (Apple: it differs from the iPhone app's).
    /// `licensed`: a device-assigned Apps and Books licence (`PurchaseMethod` 1), otherwise a free app (0).
    public static func installApplication(storeID: Int, identifier: String?, licensed: Bool) -> MDMCommand {
        var p: [String: PlistValue] = ["iTunesStoreID": .integer(storeID), "ManagementFlags": .integer(1),
                                       "Options": .dictionary(["PurchaseMethod": .integer(licensed ? 1 : 0)])]
        if let identifier { p["Identifier"] = .string(identifier) }
        return MDMCommand(requestType: "InstallApplication", parameters: p)
    }

    /// Asks whether these apps are installed (each item's `Installing` says whether it is still on its way): managed
    /// apps only, or any app with the identifier (one the system put there).
    public static func installedApplicationList(identifiers: [String], managedOnly: Bool = true) -> MDMCommand {
        MDMCommand(requestType: "InstalledApplicationList", parameters: [
            "Identifiers": .array(identifiers.map(PlistValue.string)), "ManagedAppsOnly": .bool(managedOnly)])
    }

    /// Installs an in-house app from its manifest (an `https://` URL of Apple's ManifestURL property list).
    public static func installApplication(manifestURL: String) -> MDMCommand {
        MDMCommand(requestType: "InstallApplication", parameters: ["ManifestURL": .string(manifestURL), "ManagementFlags": .integer(1)])
    }

    /// Turns declarative management on, or asks the device to synchronise declarations.
    public static func declarativeManagement(tokens: [UInt8]?) -> MDMCommand {
        MDMCommand(requestType: "DeclarativeManagement", parameters: tokens.map { ["Data": .data($0)] } ?? [:])
    }
}
