import Foundation
import OrchardStorage

/// The Activation Lock bypass codes of enrollments, sealed.
enum ActivationLockStore {
    /// The device's own code, from its ActivationLockBypassCode answer (kept until it reports a different, nonempty one).
    static func setDeviceCode(_ c: Connection, id: String, sealed: [UInt8]) throws {
        try c.execute("UPDATE enrollments SET sealed_device_bypass_code = $2 WHERE id = $1", [.text(id), .bytes(sealed)])
    }

    static func setServerCode(_ c: Connection, id: String, sealed: [UInt8]) throws {
        try c.execute("UPDATE enrollments SET sealed_server_bypass_code = $2 WHERE id = $1", [.text(id), .bytes(sealed)])
    }

    struct Target: Sendable {
        let id: String, serial: String, supervised: Bool, deviceCode: [UInt8]?, serverCode: [UInt8]?
    }

    /// The newest enrollment of each serial, with its codes.
    static func targets(_ c: Connection, serials: [String]) throws -> [String: Target] {
        var found: [String: Target] = [:]
        for row in try c.query("""
            SELECT DISTINCT ON (serial_number) id, serial_number, COALESCE(supervised, false) AS supervised,
                   sealed_device_bypass_code, sealed_server_bypass_code
            FROM enrollments WHERE serial_number = ANY($1::text[]) ORDER BY serial_number, created_at DESC
            """, [.text(postgresArray(serials))]) {
            guard let id = row.string("id"), let serial = row.string("serial_number") else { continue }
            found[serial] = Target(id: id, serial: serial, supervised: row.bool("supervised") ?? false,
                                   deviceCode: row.bytes("sealed_device_bypass_code"), serverCode: row.bytes("sealed_server_bypass_code"))
        }
        return found
    }

    static func codes(_ database: Database, id: String) async throws -> (device: [UInt8]?, server: [UInt8]?)? {
        guard let row = try await database.query("SELECT sealed_device_bypass_code, sealed_server_bypass_code FROM enrollments WHERE id = $1",
                                                 [.text(id)]).first else { return nil }
        return (row.bytes("sealed_device_bypass_code"), row.bytes("sealed_server_bypass_code"))
    }
}
