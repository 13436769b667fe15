import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

extension HTTPField.Name {
    static let mdmSignature = HTTPField.Name("Mdm-Signature")!
    static let retryAfter = HTTPField.Name("Retry-After")!
}

/// A 4xx/5xx answer with a clear message (Hummingbird renders `{"error":{"message":…}}`).
func refuse(_ status: HTTPResponse.Status, _ message: String) -> HTTPError {
    HTTPError(status, message: message)
}

func bytesResponse(_ bytes: [UInt8], contentType: String, status: HTTPResponse.Status = .ok) -> Response {
    Response(status: status, headers: [.contentType: contentType], body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
}

func emptyResponse(_ status: HTTPResponse.Status = .ok) -> Response {
    Response(status: status, headers: [.contentLength: "0"])
}

/// 503 with Retry-After, for when another service did not answer in time.
func busyResponse(_ message: String) -> Response {
    Response(status: .serviceUnavailable, headers: [.contentType: "application/json", .retryAfter: "5"],
             body: .init(byteBuffer: ByteBuffer(string: #"{"error":{"message":"\#(message)"}}"#)))
}

extension Request {
    /// The body, refused with 413 beyond `limit` bytes.
    func bodyBytes(limit: Int) async throws -> [UInt8] {
        do {
            var buffer = try await body.collect(upTo: limit)
            return buffer.readBytes(length: buffer.readableBytes) ?? []
        } catch is NIOTooManyBytesError {
            throw refuse(.contentTooLarge, "body larger than \(limit) bytes")
        }
    }
}
