import AppleProtocol
import OrchardCrypto
import OrchardStorage

/// `SetBootstrapToken` (macOS): escrows the bootstrap token sealed with the key-encryption key, or
/// deletes it when the token is empty.
struct SetBootstrapTokenHandler: DeviceMessageHandler {
    let secrets: SecretBox

    func apply(_ m: SetBootstrapToken, to e: AuthorizedEnrollment, in c: Connection, journal: inout Journal) throws {
        let sealed = try m.bootstrapToken.flatMap { $0.isEmpty ? nil : try secrets.seal($0, context: "bootstrap/\(e.id)") }
        try EnrollmentStore.setBootstrapToken(c, id: e.id, fingerprint: e.credential.fingerprint, sealed: sealed)
        journal.activity(actor: "device:\(e.id)", sealed == nil ? "bootstrap-token.deleted" : "bootstrap-token.escrowed", device: e.id)
    }
}
