import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// A refusal or failure, said in one line: the server's own message and status, or why the server was not reached.
struct CtlError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Where the admin API is and the key to it: flags first, then `ORCHARD_URL` / `ORCHARD_API_KEY`, then the config file
/// (`ORCHARD_CONFIG`, else `.orchard/local/orchardctl.json` under the current folder, else
/// `~/.config/orchard/orchardctl.json`; `./Deploy/run-local.sh` writes both of the last two for the local stack).
struct Settings {
    let url: String
    let key: String
    /// Where the key came from, for a 401's hint ("--api-key", "ORCHARD_API_KEY" or the config file's path).
    let keySource: String
    /// Each service's base URL, for `health` (the config file's `services`; otherwise the gateway's host, ports 8080–8084).
    let services: [(String, String)]

    static let serviceNames = ["checkin-gateway", "token-service", "profile-signer", "abm-sync", "user-enrollment-auth"]

    static func resolve(url flagURL: String?, key flagKey: String?) throws -> Settings {
        let env = ProcessInfo.processInfo.environment
        let (file, path) = try configFile()
        guard var url = flagURL ?? env["ORCHARD_URL"] ?? file["url"] as? String else {
            throw CtlError("no server: give --url, set ORCHARD_URL, or start the local stack with ./Deploy/run-local.sh (it writes .orchard/local/orchardctl.json)")
        }
        while url.hasSuffix("/") { url.removeLast() }
        guard url.hasPrefix("http://") || url.hasPrefix("https://"), URL(string: url)?.host != nil else {
            throw CtlError("--url must be an http(s) URL such as http://127.0.0.1:8080, not \(url)")
        }
        guard let key = flagKey ?? env["ORCHARD_API_KEY"] ?? file["apiKey"] as? String, !key.isEmpty else {
            throw CtlError("no API key: give --api-key, set ORCHARD_API_KEY, or use the local stack's config file")
        }
        var services: [(String, String)] = []
        if let listed = file["services"] as? [String: String] {
            services = serviceNames.compactMap { name in listed[name].map { (name, $0) } }
        } else if let components = URLComponents(string: url), let host = components.host {
            let first = components.port ?? 8080
            services = serviceNames.enumerated().map { ($0.element, "\(components.scheme ?? "http")://\(host):\(first + $0.offset)") }
        }
        let keySource = flagKey != nil ? "--api-key" : env["ORCHARD_API_KEY"] != nil ? "ORCHARD_API_KEY" : "the apiKey in \(path ?? "the config file")"
        return Settings(url: url, key: key, keySource: keySource, services: services)
    }

    /// The first config file found, and its path.
    private static func configFile() throws -> ([String: Any], String?) {
        let env = ProcessInfo.processInfo.environment
        let candidates = env["ORCHARD_CONFIG"].map { [$0] }
            ?? [FileManager.default.currentDirectoryPath + "/.orchard/local/orchardctl.json",
                (env["HOME"] ?? "") + "/.config/orchard/orchardctl.json"]
        for path in candidates where FileManager.default.fileExists(atPath: path) {
            guard let data = FileManager.default.contents(atPath: path),
                  let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
                throw CtlError("\(path) is not a JSON object with url and apiKey")
            }
            return (object, path)
        }
        if let path = env["ORCHARD_CONFIG"] { throw CtlError("ORCHARD_CONFIG names \(path), which does not exist") }
        return ([:], nil)
    }
}

/// The admin API under `<url>/admin/v1`, and nothing else: orchardctl holds no server logic.
struct AdminAPI {
    let settings: Settings

    struct Answer {
        let status: Int
        let body: [UInt8]
        var json: Any? { body.isEmpty ? nil : try? JSONSerialization.jsonObject(with: Data(body)) }
        var object: [String: Any] { json as? [String: Any] ?? [:] }
        var items: [[String: Any]] { object["items"] as? [[String: Any]] ?? [] }
    }

    /// One call; a 2xx answer, or the server's refusal as a `CtlError` ("HTTP 404: no device X").
    func call(_ method: HTTPMethod, _ path: String, json: Any? = nil, body: [UInt8]? = nil, contentType: String? = nil) async throws -> Answer {
        var headers = [("Authorization", "Bearer \(settings.key)")]
        var payload = body
        if let json {
            payload = Array(try JSONSerialization.data(withJSONObject: json))
            headers.append(("Content-Type", "application/json"))
        } else if let contentType {
            headers.append(("Content-Type", contentType))
        }
        let answer = try await Self.send(method, settings.url + "/admin/v1" + path, headers: headers, body: payload)
        guard (200..<300).contains(answer.status) else {
            let message = ((answer.json as? [String: Any])?["error"] as? [String: Any])?["message"] as? String
                ?? String(decoding: answer.body.prefix(300), as: UTF8.self)
            let hint = answer.status == 401 ? " (check the API key: \(settings.keySource))" : answer.status == 503 && !message.contains("retry") ? " (retry shortly)" : ""
            throw CtlError("HTTP \(answer.status): \(message.isEmpty ? "no message" : message)\(hint)")
        }
        return answer
    }

    /// A server that is not there is said at once (no connection retries: a person runs the command again).
    static let client: HTTPClient = {
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool.retryConnectionEstablishment = false
        configuration.timeout.connect = .seconds(5)
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }()

    static func send(_ method: HTTPMethod, _ url: String, headers: [(String, String)] = [], body: [UInt8]? = nil,
                     timeout: TimeAmount = .seconds(90)) async throws -> Answer {
        var request = HTTPClientRequest(url: url)
        request.method = method
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body { request.body = .bytes(ByteBuffer(bytes: body)) }
        do {
            let response = try await Self.client.execute(request, timeout: timeout)
            var buffer = try await response.body.collect(upTo: 64 << 20)
            return Answer(status: Int(response.status.code), body: buffer.readBytes(length: buffer.readableBytes) ?? [])
        } catch let error as CtlError {
            throw error
        } catch {
            let server = URLComponents(string: url).map { "\($0.scheme ?? "http")://\($0.host ?? "")\($0.port.map { ":\($0)" } ?? "")" } ?? url
            throw CtlError("cannot reach \(server): \(Self.describe(error))")
        }
    }

    private static func describe(_ error: any Error) -> String {
        let text = "\(error)"
        if text.contains("connectionRefused") || text.contains("Connection refused") { return "connection refused (is it running?)" }
        if text.contains("deadlineExceeded") || text.contains("connectTimeout") { return "no answer in time" }
        return text.count > 200 ? String(text.prefix(200)) : text
    }
}
