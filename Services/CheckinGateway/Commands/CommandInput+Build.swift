import AppleProtocol
import Foundation
import Hummingbird

extension CommandInput {
    /// The command an admin (or an ADE profile's setup items) asked for; 400 when it is incomplete.
    func command() throws -> MDMCommand {
        let input = self
        switch input.type {
        case "DeviceInformation": return .deviceInformation(queries: input.queries ?? MDMCommand.standardQueries)
        case "DeviceLock": return .deviceLock(message: input.message, phoneNumber: input.phoneNumber)
        case "EraseDevice": return .eraseDevice(preserveDataPlan: input.preserveDataPlan ?? false)
        case "DeviceConfigured": return .deviceConfigured()
        case "ActivationLockBypassCode": return MDMCommand(requestType: "ActivationLockBypassCode", parameters: [:])
        case "ProfileList": return MDMCommand(requestType: "ProfileList", parameters: ["ManagedOnly": .bool(false)])
        case "DeclarativeManagement": return .declarativeManagement(tokens: nil)
        case "RemoveProfile":
            guard let identifier = input.identifier, !identifier.isEmpty else { throw refuse(.badRequest, "RemoveProfile needs identifier") }
            return .removeProfile(identifier: identifier)
        case "InstallProfile":
            guard let text = input.profile, let data = Data(base64Encoded: text), !data.isEmpty else {
                throw refuse(.badRequest, "InstallProfile needs profile (base64)")
            }
            return .installProfile(Array(data))
        case "Raw":
            guard let text = input.plist, let data = Data(base64Encoded: text) else { throw refuse(.badRequest, "Raw needs plist (base64)") }
            do { return try MDMCommand(plist: Array(data)) } catch { throw refuse(.badRequest, "Raw plist: \(error)") }
        default:
            throw refuse(.badRequest, "unknown command type \(input.type.prefix(64))")
        }
    }
}
