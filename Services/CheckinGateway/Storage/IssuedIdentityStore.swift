import OrchardStorage

/// The identities Orchard handed out in profiles, with what their profile said.
enum IssuedIdentityStore {
    /// An identity from an enrollment link (`linkID`) is recorded with its link's use pending: its first Authenticate
    /// spends it (`EnrollmentLinkStore.spend`).
    static func record(_ c: Connection, fingerprint: String, linkID: String?, profileIdentifier: String, capabilities: [String],
                       deviceID: String?, pairedPhone: String?, account: AccountBinding? = nil) throws {
        try c.query("""
            INSERT INTO issued_identities (fingerprint, link_id, profile_identifier, server_capabilities, device_id, paired_phone,
                                           managed_apple_id, account_domain, enrollment_mode, bearer_required, link_use_pending)
            VALUES ($1, $2::uuid, $3, $4, $5, $6, $7, $8, $9, $10, $2::uuid IS NOT NULL) ON CONFLICT DO NOTHING
            """, [.text(fingerprint), .optionalText(linkID), .text(profileIdentifier), .text(capabilities.joined(separator: ",")),
                  .optionalText(deviceID), .optionalText(pairedPhone), .optionalText(account?.managedAppleID),
                  .optionalText(account?.domain), .optionalText(account?.mode), .bool(account?.bearerRequired ?? false)])
    }
}
