import AppleProtocol
import Foundation
import Hummingbird
import OrchardCrypto

/// A command as an admin (or an ADE profile's setup items) names it.
struct CommandInput: Codable {
    let type: String
    let message: String?
    let phoneNumber: String?
    let preserveDataPlan: Bool?
    /// EraseDevice: erase and return to service (iOS, visionOS 26; the device's ADE profile needs Return to Service settings).
    let returnToService: Bool?
    let identifier: String?
    let profile: String?
    let queries: [String]?
    let plist: String?
}

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

/// A profile as an admin gives it (InstallProfile, Return to Service's Wi-Fi profile): its plist (the content of a signed
/// profile, the signature not checked here: the device checks it).
enum ProfileContent {
    static func plist(_ bytes: [UInt8]) throws -> [String: PlistValue] {
        var content = bytes
        if bytes.first == 0x30, let verified = try? CMS.verify(bytes, roots: []) { content = verified.content }
        do { return try Plist.parseDictionary(content) } catch {
            throw refuse(.badRequest, "InstallProfile: the profile is not a property list (or a signed one): \(error)")
        }
    }
}
