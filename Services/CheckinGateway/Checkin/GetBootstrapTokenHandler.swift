import AppleProtocol
import OrchardCrypto
import OrchardStorage

/// `GetBootstrapToken` (macOS): answers the escrowed token, or an empty dictionary when there is none.
struct GetBootstrapTokenHandler: DeviceMessageHandler {
    let secrets: SecretBox

    func apply(_ m: GetBootstrapToken, to e: AuthorizedEnrollment, in c: Connection, journal: inout Journal) throws -> [UInt8]? {
        try EnrollmentStore.bootstrapToken(c, id: e.id, fingerprint: e.credential.fingerprint)
    }

    func respond(_ m: GetBootstrapToken, to e: AuthorizedEnrollment, applied sealed: [UInt8]?,
                 correlationID: String) async throws -> DeviceAnswer {
        var body: [String: PlistValue] = [:]
        if let sealed { body["BootstrapToken"] = .data(try secrets.open(sealed, context: "bootstrap/\(e.id)")) }
        return DeviceAnswer(response: bytesResponse(Plist.xml(body), contentType: "application/xml"))
    }
}
