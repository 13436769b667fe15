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

