import OrchardStorage

/// The device CAs that issued identities in profiles this gateway served.
enum TrustedCAStore {
    static func add(_ database: Database, fingerprint: String, der: [UInt8]) async throws {
        try await database.query("INSERT INTO trusted_device_cas (fingerprint, certificate) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                                 [.text(fingerprint), .bytes(der)])
    }

    static func all(_ database: Database) async throws -> [[UInt8]] {
        try await database.query("SELECT certificate FROM trusted_device_cas").compactMap { $0.bytes("certificate") }
    }
}
