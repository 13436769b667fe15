import ArgumentParser
import Foundation

/// `orchardctl abm api …`: the Apple Business Manager API (OAuth 2 client credentials).
struct ABMAPICommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "api", abstract: "The Apple Business Manager API: API accounts, the organisation's inventory, bulk assignment.",
        subcommands: [Accounts.self, SetAccount.self, Inventory.self, Devices.self, Servers.self, Assign.self, Job.self], defaultSubcommand: Accounts.self)

    static let accountFields = [("id", "id"), ("client", "clientID"), ("key", "keyID"), ("scope", "scope"), ("credential", "credential"),
                                ("assertion expires", "assertionExpiresAt"), ("devices", "inventoryDevices"), ("inventory at", "inventoryAt")]

    struct Accounts: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "accounts", abstract: "Every API account (never its key).",
                                                        discussion: "Example:\n  orchardctl abm api accounts")
        @OptionGroup var global: Global
        func run() async throws {
            global.show(try await global.api().call(.GET, "/abm/api-accounts"), columns: ABMAPICommand.accountFields)
        }
    }

    struct SetAccount: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "set-account", abstract: "Create or replace an API account; Apple must give a token for it first.",
            discussion: """
                Examples:
                  orchardctl abm api set-account acme --client-id BUSINESSAPI.1a2b… --key-id 3c4d… --private-key acme.pem
                  orchardctl abm api set-account acme --client-id BUSINESSAPI.1a2b… --key-id 3c4d… --assertion assertion.jwt
                """)
        @OptionGroup var global: Global
        @Argument(help: "A name for the account.") var id: String
        @Option(help: "The API account's client id.") var clientID: String
        @Option(help: "The API account's key id.") var keyID: String
        @Option(help: "The private key (PEM) Apple Business Manager downloaded.") var privateKey: String?
        @Option(help: "Or a file holding a client assertion made elsewhere.") var assertion: String?
        @Option(help: "business.api (default) or school.api.") var scope: String?
        func run() async throws {
            var body: [String: Any] = ["clientID": clientID, "keyID": keyID]
            if let privateKey { body["privateKey"] = String(decoding: try readFile(privateKey), as: UTF8.self) }
            if let assertion { body["clientAssertion"] = String(decoding: try readFile(assertion), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) }
            if let scope { body["scope"] = scope }
            global.show(try await global.api().call(.PUT, "/abm/api-accounts/\(segment(id))", json: body), fields: ABMAPICommand.accountFields)
        }
    }

    struct Inventory: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Read the organisation's whole device inventory now.",
                                                        discussion: "Example:\n  orchardctl abm api inventory acme")
        @OptionGroup var global: Global
        @Argument(help: "The API account.") var id: String
        func run() async throws {
            global.show(try await global.api().call(.POST, "/abm/api-accounts/\(segment(id))/inventory/sync"),
                        fields: [("devices", "devices"), ("pages", "pages"), ("seconds", "seconds"), ("throttled", "throttled")])
        }
    }

    struct Devices: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The inventory as last read, by serial.",
                                                        discussion: "Example:\n  orchardctl abm api devices acme --after C02 --limit 50")
        @OptionGroup var global: Global
        @Argument(help: "The API account.") var id: String
        @Option(help: "Page after this serial.") var after: String?
        @Option(help: "At most this many (1–1000).") var limit = 100
        func run() async throws {
            var query = ["limit=\(limit)"]
            if let after { query.append("after=\(segment(after))") }
            global.show(try await global.api().call(.GET, "/abm/api-accounts/\(segment(id))/devices?" + query.joined(separator: "&")),
                        columns: [("serial", "serialNumber"), ("model", "model"), ("family", "productFamily"), ("part", "partNumber"),
                                  ("order", "orderNumber"), ("source", "purchaseSource"), ("status", "status")])
        }
    }

    struct Servers: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "mdm-servers", abstract: "The organisation's device management services.",
                                                        discussion: "Example:\n  orchardctl abm api mdm-servers acme")
        @OptionGroup var global: Global
        @Argument(help: "The API account.") var id: String
        func run() async throws {
            global.show(try await global.api().call(.GET, "/abm/api-accounts/\(segment(id))/mdm-servers"),
                        columns: [("id", "id"), ("name", "name"), ("type", "type")])
        }
    }

    struct Assign: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Assign (or unassign) devices to a device management service in bulk.",
            discussion: "Example:\n  orchardctl abm api assign acme --server 1F2E… C02AAA C02AAB\n  orchardctl abm api assign acme --server 1F2E… --unassign C02AAA")
        @OptionGroup var global: Global
        @Argument(help: "The API account.") var id: String
        @Option(help: "The device management service's id (see mdm-servers).") var server: String
        @Flag(help: "Unassign instead.") var unassign = false
        @Argument(help: "Serial numbers.") var serials: [String]
        func run() async throws {
            global.show(try await global.api().call(.POST, "/abm/api-accounts/\(segment(id))/assignments",
                                                    json: ["mdmServerID": server, "serials": serials, "action": unassign ? "unassign" : "assign"]),
                        fields: [("jobs", "activityIDs"), ("status", "status"), ("sub-status", "subStatus"), ("outcomes", "outcomes")])
        }
    }

    struct Job: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "How an assignment job went.",
                                                        discussion: "Example:\n  orchardctl abm api job acme 9b1d…")
        @OptionGroup var global: Global
        @Argument(help: "The API account.") var id: String
        @Argument(help: "The job's activity id.") var activity: String
        func run() async throws {
            global.show(try await global.api().call(.GET, "/abm/api-accounts/\(segment(id))/assignments/\(segment(activity))"),
                        fields: [("jobs", "activityIDs"), ("status", "status"), ("sub-status", "subStatus"), ("outcomes", "outcomes")])
        }
    }
}
