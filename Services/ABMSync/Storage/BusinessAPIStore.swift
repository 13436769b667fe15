import Foundation
import OrchardSchemas
import OrchardStorage

/// Every statement on the Apple Business Manager API's tables: API accounts, the organisation's inventory, jobs.
enum BusinessAPIStore {
    struct Account: Sendable {
        let id: String, clientID: String, keyID: String, scope: String
        let sealedKey: [UInt8]?, sealedAssertion: [UInt8]?
        let view: ABMAPIAccountView
    }

    private static let accountColumns = """
        a.id, a.client_id, a.key_id, a.scope, a.sealed_key, a.sealed_assertion, a.assertion_expires_at, a.created_at, a.inventory_at,
        (SELECT count(*)::int FROM abm_org_devices d WHERE d.account_id = a.id) AS devices
        """

    private static func account(_ r: Row) -> Account {
        let id = r.string("id") ?? ""
        return Account(id: id, clientID: r.string("client_id") ?? "", keyID: r.string("key_id") ?? "", scope: r.string("scope") ?? "",
                       sealedKey: r.bytes("sealed_key"), sealedAssertion: r.bytes("sealed_assertion"),
                       view: ABMAPIAccountView(id: id, clientID: r.string("client_id") ?? "", keyID: r.string("key_id") ?? "",
                                               scope: r.string("scope") ?? "", credential: r.isNull("sealed_key") ? "assertion" : "key",
                                               assertionExpiresAt: r.date("assertion_expires_at"), createdAt: r.date("created_at") ?? Date(),
                                               inventoryDevices: r.int("devices") ?? 0, inventoryAt: r.date("inventory_at")))
    }

    static func account(_ database: Database, id: String) async throws -> Account? {
        try await database.query("SELECT \(accountColumns) FROM abm_api_accounts a WHERE a.id = $1", [.text(id)]).first.map(account)
    }

    static func accounts(_ database: Database) async throws -> [Account] {
        try await database.query("SELECT \(accountColumns) FROM abm_api_accounts a ORDER BY a.id").map(account)
    }

    static func save(_ c: Connection, id: String, clientID: String, keyID: String, scope: String, sealedKey: [UInt8]?,
                     sealedAssertion: [UInt8]?, assertionExpiresAt: Date?, actor: String) throws {
        try c.query("""
            INSERT INTO abm_api_accounts (id, client_id, key_id, scope, sealed_key, sealed_assertion, assertion_expires_at, created_by)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
            ON CONFLICT (id) DO UPDATE SET client_id = EXCLUDED.client_id, key_id = EXCLUDED.key_id, scope = EXCLUDED.scope,
                sealed_key = EXCLUDED.sealed_key, sealed_assertion = EXCLUDED.sealed_assertion,
                assertion_expires_at = EXCLUDED.assertion_expires_at, created_by = EXCLUDED.created_by
            """, [.text(id), .text(clientID), .text(keyID), .text(scope), sealedKey.map(SQLValue.bytes) ?? .null,
                  sealedAssertion.map(SQLValue.bytes) ?? .null, assertionExpiresAt.map(SQLValue.timestamp) ?? .null, .text(actor)])
    }

    // MARK: Inventory

    /// One page of devices, upserted in one statement, stamped with the sync's generation.
    static func upsert(_ c: Connection, accountID: String, generation: Int64, devices: [ABMOrgDeviceView]) throws {
        guard !devices.isEmpty else { return }
        var rows: [String] = [], parameters: [SQLValue] = [.text(accountID), .int(generation)]
        for d in devices {
            let n = parameters.count
            rows.append("($1, " + (1...8).map { "$\(n + $0)" }.joined(separator: ", ") + ", $2, now())")
            parameters += [.text(d.serialNumber), .optionalText(d.model), .optionalText(d.productFamily), .optionalText(d.partNumber),
                           .optionalText(d.orderNumber), .optionalText(d.purchaseSource), .optionalText(d.status), .optionalText(d.addedToOrg)]
        }
        try c.query("""
            INSERT INTO abm_org_devices (account_id, serial_number, model, product_family, part_number, order_number, purchase_source,
                                         status, added_to_org, seen_generation, updated_at)
            VALUES \(rows.joined(separator: ", "))
            ON CONFLICT (account_id, serial_number) DO UPDATE SET model = EXCLUDED.model, product_family = EXCLUDED.product_family,
                part_number = EXCLUDED.part_number, order_number = EXCLUDED.order_number, purchase_source = EXCLUDED.purchase_source,
                status = EXCLUDED.status, added_to_org = EXCLUDED.added_to_org, seen_generation = EXCLUDED.seen_generation, updated_at = now()
            """, parameters)
    }

    /// After a complete read: devices the organisation no longer has are dropped from the copy; returns how many.
    static func finishInventory(_ c: Connection, accountID: String, generation: Int64) throws -> Int {
        let gone = try c.query("DELETE FROM abm_org_devices WHERE account_id = $1 AND seen_generation <> $2 RETURNING 1",
                               [.text(accountID), .int(generation)]).count
        try c.query("UPDATE abm_api_accounts SET inventory_at = now() WHERE id = $1", [.text(accountID)])
        return gone
    }

    static func inventory(_ database: Database, accountID: String, after: String, limit: Int) async throws -> [ABMOrgDeviceView] {
        try await database.query("""
            SELECT serial_number, model, product_family, part_number, order_number, purchase_source, status, added_to_org, updated_at
            FROM abm_org_devices WHERE account_id = $1 AND serial_number > $2 ORDER BY serial_number LIMIT $3
            """, [.text(accountID), .text(after), .int(limit)]).map {
            ABMOrgDeviceView(serialNumber: $0.string("serial_number") ?? "", model: $0.string("model"), productFamily: $0.string("product_family"),
                             partNumber: $0.string("part_number"), orderNumber: $0.string("order_number"),
                             purchaseSource: $0.string("purchase_source"), status: $0.string("status"), addedToOrg: $0.string("added_to_org"),
                             updatedAt: $0.date("updated_at") ?? Date())
        }
    }

    /// Which of `serials` the organisation's inventory has.
    static func known(_ database: Database, accountID: String, serials: [String]) async throws -> Set<String> {
        Set(try await database.query("SELECT serial_number FROM abm_org_devices WHERE account_id = $1 AND serial_number = ANY($2::text[])",
                                     [.text(accountID), .text(postgresArray(serials))]).compactMap { $0.string("serial_number") })
    }

    // MARK: Jobs

    static func recordJob(_ c: Connection, activityID: String, accountID: String, serverID: String, action: String, serials: [String],
                          status: String, actor: String) throws {
        try c.query("""
            INSERT INTO abm_api_jobs (activity_id, account_id, server_id, action, serials, status, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7)
            """, [.text(activityID), .text(accountID), .text(serverID), .text(action),
                  .text(String(decoding: try JSONEncoder().encode(serials), as: UTF8.self)), .text(status), .text(actor)])
    }

    static func job(_ database: Database, accountID: String, activityID: String) async throws -> (serials: [String], status: String)? {
        guard let row = try await database.query("SELECT serials, status FROM abm_api_jobs WHERE account_id = $1 AND activity_id = $2",
                                                 [.text(accountID), .text(activityID)]).first else { return nil }
        return ((try? JSONDecoder().decode([String].self, from: Data((row.string("serials") ?? "[]").utf8))) ?? [], row.string("status") ?? "")
    }

    static func updateJob(_ c: Connection, activityID: String, status: String, subStatus: String?) throws {
        try c.query("UPDATE abm_api_jobs SET status = $2, sub_status = $3, updated_at = now() WHERE activity_id = $1",
                    [.text(activityID), .text(status), .optionalText(subStatus)])
    }
}
