import Foundation
import HTTPTypes
import Hummingbird
import OrchardCrypto
import OrchardSchemas

/// Who sent a device request, as the authentication method that recognised it established.
/// The fingerprint is what an enrollment is bound to.
struct DeviceCredential: Sendable {
    enum Method: String, Sendable {
        case mdmSignature = "Mdm-Signature"
        case clientCertificate = "client certificate"
    }

    let method: Method
    let certificate: Certificate
    let fingerprint: String
    /// Account-driven enrollment: the request's `Authorization: Bearer` token, and what user-enrollment-auth says of it.
    /// The authorizer requires a good one for the enrollment's Managed Apple Account when the enrollment needs it.
    var bearer: String? = nil
    var accountToken: ValidateAccountToken.Reply? = nil
    /// The user channel the request came on (macOS): the user's identifier; nil on the device channel. A user channel of
    /// an account-driven enrollment needs the bearer on every request, on a Mac too (REFERENCE §5.7).
    var user: String? = nil

    /// `fingerprint`: the certificate's SHA-256, as `DeviceTrust.trusted` computed it.
    init(method: Method, certificate: Certificate, fingerprint: String) {
        self.method = method
        self.certificate = certificate
        self.fingerprint = fingerprint
    }
}

/// One way a device proves who it is. Returns nil when the request carries nothing for this method, and
/// throws 401 when it does and the proof fails. It sees the raw body: nothing has been parsed yet.
protocol DeviceAuthenticator: Sendable {
    func authenticate(_ request: Request, body: [UInt8]) async throws -> DeviceCredential?
}

/// The authentication methods of the device endpoints, tried in order; the first that recognises the
/// request decides. The one place a new method (MachineInfo, a bearer token) is added.
struct DeviceAuthentication: Sendable {
    let methods: [any DeviceAuthenticator]

    func authenticate(_ request: Request, body: [UInt8]) async throws -> DeviceCredential {
        for method in methods {
            if let credential = try await method.authenticate(request, body: body) { return credential }
        }
        throw refuse(.unauthorized, "no device identity: Mdm-Signature header missing")
    }
}

/// `Mdm-Signature`: a detached CMS signature over the exact body by the device's identity
/// (the profile's `SignMessage`), chained to a trusted device CA.
struct MdmSignatureAuthenticator: DeviceAuthenticator {
    let trust: DeviceTrust
    /// The certificates devices send in `Mdm-Signature`, parsed once each.
    let signerCertificates = CertificateCache()

    func authenticate(_ request: Request, body: [UInt8]) async throws -> DeviceCredential? {
        guard let signature = request.headers[.mdmSignature] else { return nil }
        guard signature.utf8.count <= 32_768, let der = Data(base64Encoded: signature, options: .ignoreUnknownCharacters) else {
            throw refuse(.unauthorized, "Mdm-Signature is not base64")
        }
        // The signature over this exact body first (no trust decision yet), then who signed it.
        let signer: Certificate
        do { signer = try CMS.verifySignature(Array(der), detachedContent: body, cache: signerCertificates) } catch {
            throw refuse(.unauthorized, "Mdm-Signature does not verify over the body")
        }
        return DeviceCredential(method: .mdmSignature, certificate: signer, fingerprint: try await trust.trusted(signer))
    }
}

/// The client certificate of the device's TLS connection, forwarded by the TLS terminator in a header
/// (URL-encoded PEM), chained to a trusted device CA. Only when `ORCHARD_CLIENT_CERT_HEADER` names one.
struct ClientCertificateAuthenticator: DeviceAuthenticator {
    let trust: DeviceTrust
    let header: HTTPField.Name

    func authenticate(_ request: Request, body: [UInt8]) async throws -> DeviceCredential? {
        guard let value = request.headers[header] else { return nil }
        guard value.utf8.count <= 65_536, let pem = value.removingPercentEncoding,
              let cert = try? Certificate.parsePEM(Array(pem.utf8)).first else {
            throw refuse(.unauthorized, "client certificate header is not a PEM certificate")
        }
        return DeviceCredential(method: .clientCertificate, certificate: cert, fingerprint: try await trust.trusted(cert))
    }
}
