import OrchardStorage

/// The identities Orchard handed out in profiles, with what their profile said.
enum IssuedIdentityStore {
    /// `linkUsePending`: the identity came from an enrollment link whose use its first Authenticate spends.
    static func record(_ c: Connection, fingerprint: String, linkID: String?, linkUsePending: Bool = false, profileIdentifier: String,
                       capabilities: [String], deviceID: String?, pairedPhone: String?, account: AccountBinding? = nil) throws {
        try c.query("""
            INSERT INTO issued_identities (fingerprint, link_id, profile_identifier, server_capabilities, device_id, paired_phone,
                                           managed_apple_id, account_domain, enrollment_mode, bearer_required, link_use_pending)
            VALUES ($1, $2::uuid, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT DO NOTHING
            """, [.text(fingerprint), .optionalText(linkID), .text(profileIdentifier), .text(capabilities.joined(separator: ",")),
                  .optionalText(deviceID), .optionalText(pairedPhone), .optionalText(account?.managedAppleID),
                  .optionalText(account?.domain), .optionalText(account?.mode), .bool(account?.bearerRequired ?? false), .bool(linkUsePending)])
    }
}
