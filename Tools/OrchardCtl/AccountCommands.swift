import ArgumentParser
import Foundation

struct DomainsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "domains", abstract: "Managed Apple Account domains (account-driven enrollment).",
        subcommands: [List.self, Set.self, Delete.self], defaultSubcommand: List.self)

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Every domain.", discussion: "Example:\n  orchardctl domains list")
        @OptionGroup var global: Global
        func run() async throws {
            global.show(try await global.api().call(.GET, "/account-domains"),
                        columns: [("domain", "domain"), ("mode", "mode"), ("directory", "directory"), ("sign-in", "authentication"),
                                  ("oidc issuer", "oidc.issuer"), ("with ABM", "registeredWithABM"), ("base url", "baseURL")])
        }
    }

    struct Set: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create or change a domain: its mode and how its users sign in (LDAP or an OIDC provider), from flags or a JSON file.",
            discussion: """
                Examples:
                  orchardctl domains set byod.example.com --mode mdm-byod --ldap-url ldap://ldap.example.com \\
                      --base-dn ou=people,dc=example,dc=com --user-filter "(mail={user})" --disabled-filter "(employeeType=disabled)" \\
                      --bind-dn uid=orchard,ou=people,dc=example,dc=com --bind-password-file bind.txt
                  orchardctl domains set corp.example.com --mode mdm-adde --authentication apple-oauth2 \\
                      --oidc-issuer https://idp.example.com --oidc-client-id orchard
                  orchardctl domains set byod.example.com --mode mdm-byod --ldap-url ldap://ldap.example.com ... \\
                      --esso-app-store-id 1234567890 --esso-extension com.example.identity.sso --esso-url https://login.example.com \\
                      --esso-associated-domain authsrv:login.example.com
                  orchardctl domains set corp.example.com --file domain.json
                """)
        @OptionGroup var global: Global
        @Argument(help: "The domain (the part after @ of the accounts).") var domain: String
        @Option(help: "The whole request as JSON instead of the flags.") var file: String?
        @Option(help: "mdm-byod (User Enrollment) or mdm-adde (Device Enrollment).") var mode: String?
        @Option(help: "apple-as-web (default) or apple-oauth2.") var authentication: String?
        @Option(help: "ldap:// or ldaps:// URL of the directory.") var ldapURL: String?
        @Option(help: "Where users are searched.") var baseDN: String?
        @Option(help: "(mail={user}) or (userPrincipalName={user}).") var userFilter: String?
        @Option(help: "Entries that may not sign in, such as (employeeType=disabled).") var disabledFilter: String?
        @Option(help: "The search account's DN.") var bindDN: String?
        @Option(help: "A file holding the search account's password.") var bindPasswordFile: String?
        @Option(help: "PEM file on user-enrollment-auth's host trusted for ldaps.") var caFile: String?
        @Option(help: "An OpenID Connect provider's issuer (https).") var oidcIssuer: String?
        @Option(help: "The client id Orchard has at the provider.") var oidcClientID: String?
        @Option(help: "PLATFORM=VERSION minimum OS (repeat).") var minimumOS: [String] = []
        @Option(help: "Enrollment SSO: the identity app's App Store id.") var essoAppStoreID: Int?
        @Option(help: "Enrollment SSO: its SSO extension's bundle identifier.") var essoExtension: String?
        @Option(help: "Enrollment SSO: the extension's team identifier.") var essoTeam: String?
        @Option(help: "Enrollment SSO: an identity provider URL prefix the extension handles (Redirect; repeat).") var essoURL: [String] = []
        @Option(help: "Enrollment SSO: an associated domain, such as authsrv:login.example.com (repeat).") var essoAssociatedDomain: [String] = []

        func run() async throws {
            var body: [String: Any]
            if let file {
                body = try readJSONObject(file)
            } else {
                guard let mode else { throw CtlError("give --mode (mdm-byod or mdm-adde), or --file") }
                body = ["mode": mode]
                if let authentication { body["authentication"] = authentication }
                if let ldapURL {
                    guard let baseDN, let userFilter else { throw CtlError("--ldap-url needs --base-dn and --user-filter") }
                    var ldap: [String: Any] = ["url": ldapURL, "baseDN": baseDN, "userFilter": userFilter]
                    if let disabledFilter { ldap["disabledFilter"] = disabledFilter }
                    if let bindDN { ldap["bindDN"] = bindDN }
                    if let bindPasswordFile {
                        ldap["bindPassword"] = String(decoding: try readFile(bindPasswordFile), as: UTF8.self).trimmingCharacters(in: .newlines)
                    }
                    if let caFile { ldap["caFile"] = caFile }
                    body["ldap"] = ldap
                }
                if let oidcIssuer {
                    guard let oidcClientID else { throw CtlError("--oidc-issuer needs --oidc-client-id") }
                    body["oidc"] = ["issuer": oidcIssuer, "clientID": oidcClientID]
                }
                if !minimumOS.isEmpty { body["minimumOS"] = try pairs(minimumOS, option: "--minimum-os") }
                if let essoAppStoreID {
                    guard let essoExtension, !essoURL.isEmpty else { throw CtlError("--esso-app-store-id needs --esso-extension and --esso-url") }
                    var esso: [String: Any] = ["appStoreID": essoAppStoreID, "extensionIdentifier": essoExtension, "type": "Redirect", "urls": essoURL]
                    if let essoTeam { esso["teamIdentifier"] = essoTeam }
                    if !essoAssociatedDomain.isEmpty { esso["associatedDomains"] = essoAssociatedDomain }
                    body["enrollmentSSO"] = esso
                }
            }
            global.show(try await global.api().call(.PUT, "/account-domains/\(segment(domain))", json: body),
                        fields: [("domain", "domain"), ("mode", "mode"), ("directory", "directory"), ("sign-in", "authentication"),
                                 ("base url", "baseURL"), ("discovery url", "discoveryURL"), ("with ABM", "registeredWithABM"),
                                 ("enrollment SSO", "enrollmentSSOURL")])
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete a domain (its devices are told they are no longer enrolled).",
                                                        discussion: "Example:\n  orchardctl domains delete byod.example.com")
        @OptionGroup var global: Global
        @Argument(help: "The domain.") var domain: String
        func run() async throws {
            global.done(try await global.api().call(.DELETE, "/account-domains/\(segment(domain))"), "deleted \(domain)")
        }
    }
}

struct UsersCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "users", abstract: "Managed Apple Accounts.", subcommands: [RevokeTokens.self])

    struct RevokeTokens: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "revoke-tokens", abstract: "Revoke every token (and authorization code) of an account: its devices must sign in again.",
            discussion: "Example:\n  orchardctl users revoke-tokens alice@byod.example.com")
        @OptionGroup var global: Global
        @Argument(help: "The Managed Apple Account.") var user: String
        func run() async throws {
            let answer = try await global.api().call(.POST, "/account-users/\(segment(user))/revoke-tokens")
            global.done(answer, "\(user): \(Table.text(answer.object["revoked"])) token(s) revoked")
        }
    }
}

struct APIKeysCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "api-keys", abstract: "Admin API keys.", subcommands: [List.self, Create.self, Revoke.self], defaultSubcommand: List.self)

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Every key (never the keys themselves).", discussion: "Example:\n  orchardctl api-keys list")
        @OptionGroup var global: Global
        func run() async throws {
            global.show(try await global.api().call(.GET, "/api-keys"),
                        columns: [("id", "id"), ("name", "name"), ("scopes", "scopes"), ("created", "createdAt"), ("revoked", "revoked")])
        }
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "A new key; shown once.",
                                                        discussion: "Example:\n  orchardctl api-keys create --name monitoring --scope read")
        @OptionGroup var global: Global
        @Option(help: "A name for the key.") var name: String
        @Option(help: "admin or read (repeat for both).") var scope: [String] = ["read"]
        func run() async throws {
            global.show(try await global.api().call(.POST, "/api-keys", json: ["name": name, "scopes": scope]),
                        fields: [("id", "id"), ("name", "name"), ("scopes", "scopes"), ("key", "key")])
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke a key.", discussion: "Example:\n  orchardctl api-keys revoke 4d0f…")
        @OptionGroup var global: Global
        @Argument(help: "The key's id.") var id: String
        func run() async throws { global.done(try await global.api().call(.DELETE, "/api-keys/\(segment(id))"), "revoked \(id)") }
    }
}

struct ActivityCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "activity", abstract: "The activity log: every step of every flow, and every admin change.",
        discussion: "Examples:\n  orchardctl activity --limit 20\n  orchardctl activity --device 00008030-001A2B3C4D5E6F70\n  orchardctl activity --follow")
    @OptionGroup var global: Global
    @Option(help: "Only this device's entries.") var device: String?
    @Option(help: "Only this action (such as ade.enrolled).") var action: String?
    @Option(help: "At most this many (1–1000).") var limit = 50
    @Flag(help: "Keep printing new entries as they happen (Ctrl-C stops).") var follow = false

    func run() async throws {
        let api = try global.api()
        var query = ["limit=\(limit)"]
        if let device { query.append("deviceID=\(segment(device))") }
        if let action { query.append("action=\(segment(action))") }
        let path = "/activity?" + query.joined(separator: "&")
        var seen = Swift.Set<String>()
        var first = true
        repeat {
            let answer = try await api.call(.GET, path)
            let fresh = answer.items.filter { !seen.contains($0["id"] as? String ?? "") }.reversed()
            for entry in fresh { seen.insert(entry["id"] as? String ?? "") }
            if global.json {
                for entry in fresh { printJSON(entry) }
            } else if first {
                Table.print(Array(fresh), columns: Self.columns)
            } else {
                for entry in fresh { print(Self.columns.map { String(Table.text(Table.value(entry, $0.1)).prefix(80)) }.joined(separator: "  ")) }
            }
            first = false
            if follow { try await Task.sleep(for: .seconds(2)) }
        } while follow
    }

    static let columns = [("time", "occurredAt"), ("actor", "actor"), ("action", "action"), ("outcome", "outcome"), ("device", "deviceID"),
                          ("detail", "detail")]
}

struct HealthCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "health", abstract: "Whether each of the five services is up and ready (Kafka and PostgreSQL answer).",
        discussion: """
            Reads each service's /readyz: the config file's services, or the gateway's host with ports 8080–8084.
            Exits 1 when one is not ready. Example:
              orchardctl health
            """)
    @OptionGroup var global: Global

    func run() async throws {
        let settings = try Settings.resolve(url: global.url, key: global.apiKey)
        var rows: [[String: Any]] = []
        var allReady = true
        for (name, url) in settings.services {
            var row: [String: Any] = ["service": name, "url": url]
            do {
                let answer = try await AdminAPI.send(.GET, url + "/readyz", timeout: .seconds(5))
                row["ready"] = answer.status == 200
                row["detail"] = String(decoding: answer.body.prefix(120), as: UTF8.self)
                allReady = allReady && answer.status == 200
            } catch {
                row["ready"] = false
                row["detail"] = "\(error)"
                allReady = false
            }
            rows.append(row)
        }
        if global.json { printJSON(["services": rows]) } else { Table.print(rows, columns: [("service", "service"), ("ready", "ready"), ("url", "url"), ("detail", "detail")]) }
        if !allReady { throw CtlError("not every service is ready") }
    }
}
