import AppleProtocol
import Foundation
import Yams

/// One of Apple's device-management YAML schemas (Tests/Fixtures/apple-schemas, MIT, from
/// github.com/apple/device-management), used to check what Orchard reads and writes.
public struct AppleSchema {
    public struct Key {
        let name: String
        let type: String
        let required: Bool
        let subkeys: [Key]
        /// Platform name → `introduced` value for this key (after inheritance from the payload).
        let introduced: [String: String]
        /// Platform → `userenrollment.mode` (`required`: only user enrollments must send it).
        let userEnrollmentMode: [String: String]
        /// Platform → `devicechannel` (false: user channel only).
        let deviceChannel: [String: Bool]
    }

    public let payloadKeys: [Key]
    public let responseKeys: [Key]

    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/apple-schemas")

    /// Problems of a whole profile: the top level and each payload against its own schema.
    public static func profileProblems(_ profile: [String: PlistValue], platform: String) throws -> [String] {
        var found = problems(profile, try load("mdm/profiles/TopLevel.yaml").payloadKeys, platform: platform)
        let common = try load("mdm/profiles/CommonPayloadKeys.yaml").payloadKeys
        for payload in profile["PayloadContent"]?.array?.compactMap(\.dictionary) ?? [] {
            let type = payload["PayloadType"]?.string ?? "?"
            found += problems(payload, try load("mdm/profiles/\(type).yaml").payloadKeys + common, platform: platform, path: "\(type): ")
        }
        return found
    }

    /// Problems of a command's `Command` dictionary against its request type's schema.
    public static func commandProblems(_ command: MDMCommand, schema: String, platform: String) throws -> [String] {
        problems(command.parameters, try load("mdm/commands/\(schema).yaml").payloadKeys, platform: platform)
    }

    public static func load(_ path: String) throws -> AppleSchema {
        let text = try String(contentsOf: root.appendingPathComponent(path), encoding: .utf8)
        guard let yaml = try Yams.load(yaml: text) as? [String: Any] else { throw PlistError("bad schema \(path)") }
        let payloadOS = introduced((yaml["payload"] as? [String: Any])?["supportedOS"], inherited: [:])
        return AppleSchema(payloadKeys: keys(yaml["payloadkeys"], inherited: payloadOS),
                           responseKeys: keys(yaml["responsekeys"], inherited: payloadOS))
    }

    private static func introduced(_ supported: Any?, inherited: [String: String]) -> [String: String] {
        var result = inherited
        for (os, value) in (supported as? [String: Any]) ?? [:] {
            if let v = (value as? [String: Any])?["introduced"] { result[os] = "\(v)" }
        }
        return result
    }

    private static func keys(_ list: Any?, inherited: [String: String]) -> [Key] {
        ((list as? [[String: Any]]) ?? []).map { item in
            let os = introduced(item["supportedOS"], inherited: inherited)
            var modes: [String: String] = [:], channels: [String: Bool] = [:]
            for (platform, value) in (item["supportedOS"] as? [String: Any]) ?? [:] {
                let v = value as? [String: Any]
                if let mode = (v?["userenrollment"] as? [String: Any])?["mode"] { modes[platform] = "\(mode)" }
                if let channel = v?["devicechannel"] as? Bool { channels[platform] = channel }
            }
            return Key(name: "\(item["key"] ?? "")", type: "\(item["type"] ?? "<any>")",
                       required: "\(item["presence"] ?? "optional")" == "required",
                       subkeys: keys(item["subkeys"], inherited: os), introduced: os,
                       userEnrollmentMode: modes, deviceChannel: channels)
        }
    }

    /// Problems found in `values` against `keys`; empty when it conforms. With a platform, keys that are
    /// n/a there must be absent and only keys available there are required.
    public static func problems(_ values: [String: PlistValue], _ keys: [Key], platform: String? = nil,
                         path: String = "", allowUnknown: Bool = false) -> [String] {
        var found: [String] = []
        let known = Dictionary(keys.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        let wildcard = keys.first { $0.name == "ANY" || $0.name.hasPrefix("ANY") }
        for key in keys where key.required && key.name != "ANY" {
            if let platform {
                if key.introduced[platform] == "n/a" || key.userEnrollmentMode[platform] == "required"
                    || key.deviceChannel[platform] == false { continue }
            }
            if values[key.name] == nil { found.append("\(path)\(key.name) is required") }
        }
        for (name, value) in values {
            guard let key = known[name] ?? wildcard else {
                if !allowUnknown { found.append("\(path)\(name) is not in Apple's schema") }
                continue
            }
            if let platform, key.introduced[platform] == "n/a" {
                found.append("\(path)\(name) is not available on \(platform)")
            }
            found += check(value, key, platform: platform, path: "\(path)\(name).")
        }
        return found
    }

    private static func check(_ value: PlistValue, _ key: Key, platform: String?, path: String) -> [String] {
        let ok: Bool
        switch (key.type, value) {
        case ("<string>", .string), ("<integer>", .integer), ("<boolean>", .bool), ("<data>", .data),
             ("<date>", .date), ("<real>", .real), ("<real>", .integer), ("<any>", _): ok = true
        case ("<dictionary>", .dictionary(let d)):
            return key.subkeys.isEmpty ? [] : problems(d, key.subkeys, platform: platform, path: path)
        case ("<array>", .array(let items)):
            guard let itemKey = key.subkeys.first else { return [] }
            return items.flatMap { check($0, itemKey, platform: platform, path: path) }
        default: ok = false
        }
        return ok ? [] : ["\(path.dropLast()) should be \(key.type), is \(value)"]
    }
}

/// JSON converted to plist values, so JSON documents are checked by the same rules.
public func plistValue(json bytes: [UInt8]) throws -> PlistValue {
    func convert(_ o: Any) -> PlistValue {
        switch o {
        case let s as String: return .string(s)
        case let b as Bool where type(of: o) == Bool.self: return .bool(b)
        case let n as NSNumber:
            let t = String(cString: n.objCType)
            if t == "c" || t == "B" { return .bool(n.boolValue) }
            return t == "d" || t == "f" ? .real(n.doubleValue) : .integer(n.intValue)
        case let a as [Any]: return .array(a.map(convert))
        case let d as [String: Any]: return .dictionary(d.mapValues(convert))
        default: return .string("\(o)")
        }
    }
    return convert(try JSONSerialization.jsonObject(with: Data(bytes)))
}
