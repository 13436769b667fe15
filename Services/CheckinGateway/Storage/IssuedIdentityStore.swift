import OrchardStorage

/// The identities Orchard handed out in profiles, with what their profile said.
enum IssuedIdentityStore {
    static func record(_ c: Connection, fingerprint: String, linkID: String?, profileIdentifier: String, capabilities: [String],
                       deviceID: String?, pairedPhone: String?) throws {
        try c.query("""
            INSERT INTO issued_identities (fingerprint, link_id, profile_identifier, server_capabilities, device_id, paired_phone)
            VALUES ($1, $2::uuid, $3, $4, $5, $6) ON CONFLICT DO NOTHING
            """, [.text(fingerprint), .optionalText(linkID), .text(profileIdentifier), .text(capabilities.joined(separator: ",")),
                  .optionalText(deviceID), .optionalText(pairedPhone)])
    }
}
