import OrchardCore
import AppleProtocol
import Foundation
import Hummingbird
import OrchardCrypto
import OrchardSchemas
import OrchardMessaging
import OrchardStorage

extension AdminRoutes {
    /// `/admin/v1/push-certificate`: the APNs certificate the gateway pushes with.
    func addPushCertificateRoutes(to admin: RouterGroup<GatewayContext>) {
        admin.put("push-certificate") { request, context -> PushCertificateView in
            let input = try await request.decode(as: PushCertificateInput.self, context: context)
            let identity = try pushIdentity(input)
            let saved = try await pushCertificates.save(identity)
            await pusher.certificateChanged()
            try await database.transaction { c in
                try audit(c, context, "push-certificate.uploaded", device: nil, detail: "\(saved.topic), expires \(isoDate(saved.notAfter) ?? "")")
            }
            outbox.notify()
            return PushCertificateView(topic: saved.topic, notAfter: isoDate(saved.notAfter), subject: identity.certificate.subject,
                                       uploadedAt: isoDate(saved.uploadedAt))
        }
        admin.get("push-certificate") { _, _ -> PushCertificateView in
            guard let cert = try await pushCertificates.load() else { throw refuse(.notFound, "no push certificate uploaded") }
            return PushCertificateView(topic: cert.topic, notAfter: isoDate(cert.notAfter), subject: cert.identity.certificate.subject,
                                       uploadedAt: isoDate(cert.uploadedAt))
        }
    }

    func pushIdentity(_ input: PushCertificateInput) throws -> SigningIdentity {
        do {
            if let p12 = input.pkcs12 {
                guard let data = Data(base64Encoded: p12) else { throw refuse(.badRequest, "pkcs12 must be base64") }
                return try PKCS12.parse(Array(data), password: input.password ?? "")
            }
            guard let cert = input.certificate, let key = input.privateKey else {
                throw refuse(.badRequest, "send certificate and privateKey (PEM), or pkcs12 (base64) and password")
            }
            guard let certificate = try Certificate.parsePEM(Array(cert.utf8)).first else { throw refuse(.badRequest, "no certificate") }
            return try SigningIdentity(certificate: certificate, key: try PrivateKey(pem: Array(key.utf8)))
        } catch let error as CryptoError {
            throw refuse(.badRequest, "\(error)")
        }
    }
}
