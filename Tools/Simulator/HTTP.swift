import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
/// An HTTP answer as tests look at it.
public struct HTTPResult: Sendable {
    public let status: Int
    public let headers: [String: String]
    public let body: [UInt8]

    public var text: String { String(decoding: body, as: UTF8.self) }

    public func json() throws -> [String: Any] {
        guard let object = try JSONSerialization.jsonObject(with: Data(body)) as? [String: Any] else {
            throw NSError(domain: "test", code: 1, userInfo: [NSLocalizedDescriptionKey: "not a JSON object: \(text)"])
        }
        return object
    }
}

/// The client every simulated device and test request shares (keep-alive connections, 64 a host); a connection that
/// cannot be made is retried for 5 s, not for the whole request's time.
let simulatorHTTPClient: HTTPClient = {
    var configuration = HTTPClient.Configuration()
    configuration.timeout.connect = .seconds(5)
    configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = 64
    return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
}()

/// Sends one request (keep-alive connections).
public func http(_ method: HTTPMethod, _ url: String, headers: [(String, String)] = [], body: [UInt8]? = nil,
                 timeout: TimeAmount = .seconds(30)) async throws -> HTTPResult {
    var request = HTTPClientRequest(url: url)
    request.method = method
    for (name, value) in headers { request.headers.add(name: name, value: value) }
    if let body { request.body = .bytes(ByteBuffer(bytes: body)) }
    let response = try await simulatorHTTPClient.execute(request, timeout: timeout)
    var buffer = try await response.body.collect(upTo: 16 << 20)
    var headerMap: [String: String] = [:]
    for (name, value) in response.headers { headerMap[name.lowercased()] = value }
    return HTTPResult(status: Int(response.status.code), headers: headerMap, body: buffer.readBytes(length: buffer.readableBytes) ?? [])
}

