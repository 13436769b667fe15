import AsyncHTTPClient
import Foundation
import XCTest
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

/// Sends one request with the shared AsyncHTTPClient (keep-alive connections).
public func http(_ method: HTTPMethod, _ url: String, headers: [(String, String)] = [], body: [UInt8]? = nil,
                 timeout: TimeAmount = .seconds(30)) async throws -> HTTPResult {
    var request = HTTPClientRequest(url: url)
    request.method = method
    for (name, value) in headers { request.headers.add(name: name, value: value) }
    if let body { request.body = .bytes(ByteBuffer(bytes: body)) }
    let response = try await HTTPClient.shared.execute(request, timeout: timeout)
    var buffer = try await response.body.collect(upTo: 16 << 20)
    var headerMap: [String: String] = [:]
    for (name, value) in response.headers { headerMap[name.lowercased()] = value }
    return HTTPResult(status: Int(response.status.code), headers: headerMap, body: buffer.readBytes(length: buffer.readableBytes) ?? [])
}

/// Settings the test scripts export (Deploy/test.sh).
public enum TestEnvironment {
    /// The variable's value; fails the test with how to run it when the variable is missing.
    public static func require(_ name: String) throws -> String {
        guard let value = ProcessInfo.processInfo.environment[name], !value.isEmpty else {
            XCTFail("\(name) is not set: run the tests with ./Deploy/test.sh")
            throw XCTSkip("no test stack")
        }
        return value
    }
}

/// XCTUnwrap without an autoclosure, so its argument may `await`.
public func unwrap<T>(_ value: T?, _ message: String = "", file: StaticString = #filePath, line: UInt = #line) throws -> T {
    guard let value else {
        throw NSError(domain: "test", code: 3, userInfo: [NSLocalizedDescriptionKey: "unexpected nil \(message) at \(file):\(line)"])
    }
    return value
}
