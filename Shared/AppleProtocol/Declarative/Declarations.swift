import Foundation
import OrchardCore

/// A declaration as served to a device: `{Type, Identifier, ServerToken, Payload}` (JSON).
public struct Declaration: Sendable, Equatable {
    public enum Kind: String, Sendable, CaseIterable {
        case activation, configuration, asset, management
    }

    public var type: String
    public var identifier: String
    public var serverToken: String
    /// The `Payload` object, as JSON bytes.
    public var payload: [UInt8]

    public init(type: String, identifier: String, serverToken: String, payload: [UInt8]) {
        self.type = type
        self.identifier = identifier
        self.serverToken = serverToken
        self.payload = payload
    }

    /// Which endpoint family serves it, from its type prefix (`com.apple.configuration.…`).
    public var kind: Kind? { Declaration.kind(ofType: type) }

    public static func kind(ofType type: String) -> Kind? {
        let parts = type.split(separator: ".")
        guard parts.count >= 3, parts[0] == "com", parts[1] == "apple" || !parts[1].isEmpty else { return nil }
        return Kind(rawValue: String(parts[2]))
    }

    public var json: [UInt8] {
        let payloadObject = (try? JSONSerialization.jsonObject(with: Data(payload))) ?? [String: Any]()
        let object: [String: Any] = ["Type": type, "Identifier": identifier, "ServerToken": serverToken, "Payload": payloadObject]
        return Array(try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]))
    }
}

/// `tokens` endpoint: `{"SyncTokens":{"DeclarationsToken":…,"Timestamp":…}}`.
public struct TokensResponse: Sendable, Equatable {
    public var declarationsToken: String
    public var timestamp: Date

    public init(declarationsToken: String, timestamp: Date) {
        self.declarationsToken = declarationsToken
        self.timestamp = timestamp
    }

    public var json: [UInt8] {
        let object: [String: Any] = ["SyncTokens": ["DeclarationsToken": declarationsToken,
                                                    "Timestamp": ISO8601.string(from: timestamp)]]
        return Array(try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]))
    }
}

/// `declaration-items` endpoint: the identifiers and server tokens of a device's declarations, by kind.
public struct DeclarationItemsResponse: Sendable, Equatable {
    public var declarations: [Declaration]
    public var declarationsToken: String

    public init(declarations: [Declaration], declarationsToken: String) {
        self.declarations = declarations
        self.declarationsToken = declarationsToken
    }

    public var json: [UInt8] {
        var groups: [String: [[String: String]]] = ["Activations": [], "Configurations": [], "Assets": [], "Management": []]
        let names: [Declaration.Kind: String] = [.activation: "Activations", .configuration: "Configurations",
                                                 .asset: "Assets", .management: "Management"]
        for d in declarations.sorted(by: { $0.identifier < $1.identifier }) {
            guard let kind = d.kind, let name = names[kind] else { continue }
            groups[name, default: []].append(["Identifier": d.identifier, "ServerToken": d.serverToken])
        }
        let object: [String: Any] = ["Declarations": groups, "DeclarationsToken": declarationsToken]
        return Array(try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]))
    }
}

/// A device's `status` report: kept whole, with its shape checked.
public struct StatusReport: Sendable, Equatable {
    public var json: [UInt8]
    public var fullReport: Bool

    public static func parse(_ bytes: [UInt8]) throws -> StatusReport {
        guard let object = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any] else {
            throw PlistError("status report is not a JSON object")
        }
        guard object["StatusItems"] is [String: Any] else { throw PlistError("status report lacks StatusItems") }
        if let errors = object["Errors"], !(errors is [Any]) { throw PlistError("status report Errors must be an array") }
        return StatusReport(json: bytes, fullReport: object["FullReport"] as? Bool ?? false)
    }
}
