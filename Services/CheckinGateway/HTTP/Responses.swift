import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

extension HTTPField.Name {
    static let mdmSignature = HTTPField.Name("Mdm-Signature")!
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
