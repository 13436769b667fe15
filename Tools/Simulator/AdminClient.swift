import Foundation
import NIOHTTP1

/// Calls the admin API with an API key.
public struct AdminClient: Sendable {
    public let baseURL: String
    public let key: String

    public init(baseURL: String, key: String) {
        self.baseURL = baseURL
        self.key = key
    }

    public func call(_ method: HTTPMethod, _ path: String, json: Any? = nil) async throws -> HTTPResult {
        var headers = [("Authorization", "Bearer \(key)")]
        var body: [UInt8]?
        if let json {
            headers.append(("Content-Type", "application/json"))
            body = Array(try JSONSerialization.data(withJSONObject: json))
        }
        return try await http(method, "\(baseURL)/admin/v1\(path)", headers: headers, body: body)
    }

    /// Sends raw bytes (a file upload).
    public func call(_ method: HTTPMethod, _ path: String, body: [UInt8], contentType: String = "application/pkcs7-mime") async throws -> HTTPResult {
        try await http(method, "\(baseURL)/admin/v1\(path)", headers: [("Authorization", "Bearer \(key)"), ("Content-Type", contentType)],
                       body: body)
    }

    /// Calls and expects 2xx; returns the JSON object.
    @discardableResult
    public func expect(_ method: HTTPMethod, _ path: String, json: Any? = nil) async throws -> [String: Any] {
        let result = try await call(method, path, json: json)
        guard (200..<300).contains(result.status) else {
            throw NSError(domain: "admin", code: result.status,
                          userInfo: [NSLocalizedDescriptionKey: "\(method) \(path) → \(result.status) \(result.text)"])
        }
        return result.body.isEmpty ? [:] : try result.json()
    }
}
