import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdHTTP2
import NIOConcurrencyHelpers
import NIOSSL

/// A local stand-in for Apple's push service: HTTP/2 over TLS that requires a client certificate
/// from the given CA (as APNs requires the MDM push certificate). It records every push and answers
/// with what the test planned for that device token (200 by default). Only tests and a local trial use it.
public final class APNsStandIn: Sendable {
    public struct Push: Sendable {
        public let token: String
        public let topic: String?
        public let priority: String?
        public let magic: String?
    }

    private let state = NIOLockedValueBox<(pushes: [Push], plans: [String: [(Int, String)]])>(([], [:]))
    private let task = NIOLockedValueBox<Task<Void, any Error>?>(nil)

    public init() {}

    public func start(port: Int, certificatePEM: String, keyPEM: String, clientCAPEM: String) throws {
        var tls = TLSConfiguration.makeServerConfiguration(
            certificateChain: try NIOSSLCertificate.fromPEMFile(certificatePEM).map { .certificate($0) },
            privateKey: .privateKey(try NIOSSLPrivateKey(file: keyPEM, format: .pem)))
        tls.certificateVerification = .noHostnameVerification
        tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(clientCAPEM))
        let router = Router()
        router.post("3/device/:token") { request, context -> Response in
            let token = try context.parameters.require("token")
            var body = try await request.body.collect(upTo: 4096)
            let json = (try? JSONSerialization.jsonObject(with: Data(body.readBytes(length: body.readableBytes) ?? []))) as? [String: Any]
            let push = Push(token: token, topic: request.headers[HTTPField.Name("apns-topic")!],
                            priority: request.headers[HTTPField.Name("apns-priority")!], magic: json?["mdm"] as? String)
            let (status, reason) = self.state.withLockedValue { s -> (Int, String) in
                s.pushes.append(push)
                guard var plan = s.plans[token], !plan.isEmpty else { return (200, "") }
                let next = plan.removeFirst()
                s.plans[token] = plan
                return next
            }
            let bodyText = reason.isEmpty ? "" : #"{"reason":"\#(reason)"}"#
            return Response(status: .init(code: status), headers: [.contentType: "application/json"],
                            body: .init(byteBuffer: ByteBuffer(string: bodyText)))
        }
        let app = Application(router: router, server: try .http2Upgrade(tlsConfiguration: tls),
                              configuration: .init(address: .hostname("127.0.0.1", port: port)))
        task.withLockedValue { $0 = Task { try await app.run() } }
    }

    public func stop() { task.withLockedValue { $0?.cancel() } }

    /// The next answers for a device token, in order: (HTTP status, APNs reason).
    public func plan(token: String, _ answers: [(Int, String)]) {
        state.withLockedValue { $0.plans[token] = answers }
    }

    public func pushes(to token: String) -> [Push] {
        state.withLockedValue { $0.pushes.filter { $0.token == token } }
    }

    /// The pushes after the first `after` ones, and how many there are now: a simulator polls this to wake its devices.
    public func pushes(after: Int) -> (count: Int, pushes: [Push]) {
        state.withLockedValue { s in (s.pushes.count, Array(s.pushes.dropFirst(max(0, min(after, s.pushes.count))))) }
    }
}
