import AppleProtocol
import Foundation
import HTTPTypes
import Hummingbird
import OrchardCrypto

/// How a device that has no MDM identity yet proves who it is: its MachineInfo, CMS-signed by its
/// Apple-issued device identity (`ORCHARD_APPLE_DEVICE_ROOTS`), as the POST body or base64 in
/// `x-apple-aspen-deviceinfo` (a GET from a web view). Every entry of a device without an MDM identity authenticates
/// here, on the raw bytes, before anything is parsed or another service is asked: the Apple Watch's, ADE's and
/// account-driven enrollment's (`authenticate` for a body whose content has another shape).
/// Apple's device certificates may be expired and signed with SHA-1 (REFERENCE §4.7): chain and signature
/// are checked, validity dates are not — it identifies the device, it does not attest it.
struct MachineInfoAuthenticator: Sendable {
    let roots: [Certificate]

    static let header = HTTPField.Name("x-apple-aspen-deviceinfo")!

    enum Rejection: Error, CustomStringConvertible {
        case missing, malformed(String), untrusted
        /// A property list that is not signed at all (told apart where an entry answers it with a 400).
        case unsigned
        var description: String {
            switch self {
            case .missing: "send the signed MachineInfo as the POST body or in x-apple-aspen-deviceinfo"
            case .malformed(let why): "malformed MachineInfo: \(why)"
            case .untrusted: "MachineInfo is not signed by a trusted device identity"
            case .unsigned: "the MachineInfo must be CMS-signed by the device's identity"
            }
        }
        var status: HTTPResponse.Status {
            switch self {
            case .missing, .malformed, .unsigned: .badRequest
            case .untrusted: .forbidden
            }
        }
    }

    /// The signed MachineInfo of a request: the POST body, or the header of a GET.
    static func signedBytes(_ request: Request) async throws -> [UInt8] {
        if request.method == .get {
            guard let header = request.headers[Self.header], header.utf8.count < 96 * 1024,
                  let data = Data(base64Encoded: header, options: .ignoreUnknownCharacters), !data.isEmpty else {
                throw Rejection.missing
            }
            return Array(data)
        }
        let body = try await request.bodyBytes(limit: 64 * 1024)
        guard !body.isEmpty else { throw Rejection.missing }
        return body
    }

    func verify(_ signed: [UInt8]) throws -> MachineInfo {
        let verified = try authenticate(signed)
        do { return try MachineInfo.parse(verified.content) } catch { throw Rejection.malformed("\(error)") }
    }

    /// The signed content and its signer, once the signature and its chain are checked; `untrusted` otherwise, or
    /// `unsigned` (when `tellUnsigned`) for a plain property list.
    func authenticate(_ signed: [UInt8], tellUnsigned: Bool = false) throws -> VerifiedContent {
        do { return try CMS.verify(signed, roots: roots, checkValidityPeriods: false) } catch {
            if tellUnsigned, (try? CMS.verify(signed, roots: [], checkValidityPeriods: false)) == nil,
               (try? Plist.parseDictionary(signed)) != nil {
                throw Rejection.unsigned
            }
            throw Rejection.untrusted
        }
    }
}
