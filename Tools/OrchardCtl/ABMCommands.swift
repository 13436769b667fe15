import ArgumentParser
import Foundation

struct ABMCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "abm", abstract: "Apple Business Manager: server tokens, ADE profiles, the device mirror.",
        subcommands: [Tokens.self, Profiles.self, Devices.self, ABMAPICommand.self])

    static let tokenFields = [("id", "id"), ("name", "name"), ("state", "state"), ("organization", "organization"), ("server", "serverName"),
                              ("days left", "daysLeft"), ("expires", "accessTokenExpiry"), ("devices", "devices"),
                              ("default profile", "defaultProfileID"), ("last sync", "lastSyncAt"), ("last sync error", "lastSyncError"),
                              ("last error", "lastError"), ("certificate sha256", "certificateSHA256"), ("staged certificate", "stagedCertificateSHA256")]

    struct Tokens: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Server tokens (one per MDM server in ABM).",
            subcommands: [List.self, Create.self, Upload.self, Check.self, Sync.self, RotateKey.self], defaultSubcommand: List.self)

        struct List: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Every server token with its health.",
                                                            discussion: "Examples:\n  orchardctl abm tokens list\n  orchardctl abm tokens list --json")
            @OptionGroup var global: Global
            func run() async throws {
                global.show(try await global.api().call(.GET, "/abm/tokens"),
                            columns: [("id", "id"), ("name", "name"), ("state", "state"), ("organization", "organization"), ("days left", "daysLeft"),
                                      ("devices", "devices"), ("last sync", "lastSyncAt"), ("error", "lastError")])
            }
        }

        struct Create: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "A new server-token entry; writes the certificate to upload to the MDM server in ABM.",
                discussion: "Example:\n  orchardctl abm tokens create --name \"Acme ABM\" --certificate-out acme-abm.pem")
            @OptionGroup var global: Global
            @Option(help: "A name for the entry.") var name: String
            @Option(help: "Where to write the PEM certificate for ABM.") var certificateOut: String
            func run() async throws {
                let answer = try await global.api().call(.POST, "/abm/tokens", json: ["name": name])
                try write(answer.object["certificatePEM"], to: certificateOut)
                if global.json { return printJSON(answer.json ?? [:]) }
                print("created \(Table.text(answer.object["id"])); upload \(certificateOut) to the MDM server in Apple Business Manager,")
                print("then: orchardctl abm tokens upload \(Table.text(answer.object["id"])) --p7m <downloaded .p7m>")
            }
        }

        struct Upload: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Upload ABM's server token (.p7m) for an entry (also a renewal).",
                                                            discussion: "Example:\n  orchardctl abm tokens upload 6b1e… --p7m Acme_Token.p7m")
            @OptionGroup var global: Global
            @Argument(help: "The entry's id.") var id: String
            @Option(help: "The .p7m file downloaded from ABM.") var p7m: String
            func run() async throws {
                let answer = try await global.api().call(.PUT, "/abm/tokens/\(segment(id))/server-token", body: try readFile(p7m),
                                                         contentType: "application/pkcs7-mime")
                global.show(answer, fields: ABMCommand.tokenFields)
            }
        }

        struct Check: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Call ABM with the token (GET /account) and show its health.",
                                                            discussion: "Example:\n  orchardctl abm tokens check 6b1e…")
            @OptionGroup var global: Global
            @Argument(help: "The entry's id.") var id: String
            func run() async throws {
                global.show(try await global.api().call(.POST, "/abm/tokens/\(segment(id))/check"), fields: ABMCommand.tokenFields)
            }
        }

        struct Sync: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Sync the token's devices now.",
                                                            discussion: "Examples:\n  orchardctl abm tokens sync 6b1e…\n  orchardctl abm tokens sync 6b1e… --full")
            @OptionGroup var global: Global
            @Argument(help: "The entry's id.") var id: String
            @Flag(help: "Start again with a full fetch, diffed against the mirror.") var full = false
            func run() async throws {
                let answer = try await global.api().call(.POST, "/abm/tokens/\(segment(id))/sync\(full ? "?fullFetch=true" : "")")
                global.show(answer, fields: [("mode", "mode"), ("pages", "pages"), ("added", "added"), ("modified", "modified"),
                                             ("deleted", "deleted"), ("devices", "devices"), ("assigned", "assigned"),
                                             ("assignment error", "assignmentError")])
            }
        }

        struct RotateKey: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                commandName: "rotate-key", abstract: "Stage a new key pair; writes its certificate to upload to ABM.",
                discussion: "Example:\n  orchardctl abm tokens rotate-key 6b1e… --certificate-out acme-abm-2027.pem")
            @OptionGroup var global: Global
            @Argument(help: "The entry's id.") var id: String
            @Option(help: "Where to write the staged PEM certificate.") var certificateOut: String
            func run() async throws {
                let answer = try await global.api().call(.POST, "/abm/tokens/\(segment(id))/rotate-key")
                try write(answer.object["stagedCertificatePEM"], to: certificateOut)
                global.done(answer, "staged a new key; upload \(certificateOut) to the MDM server in ABM, then upload its new .p7m")
            }
        }
    }

    struct Profiles: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "ADE profiles (defined with ABM, validated first as ABM would).",
            subcommands: [List.self, Define.self, Default.self, Assign.self], defaultSubcommand: List.self)

        struct List: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Every ADE profile.", discussion: "Example:\n  orchardctl abm profiles list")
            @OptionGroup var global: Global
            func run() async throws {
                global.show(try await global.api().call(.GET, "/abm/profiles"),
                            columns: [("id", "id"), ("name", "name"), ("token", "tokenID"), ("profile uuid", "profileUUID"),
                                      ("default", "isDefault"), ("sign-in", "requiresSignIn"), ("defined", "definedAt")])
            }
        }

        struct Define: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Define a profile from Apple's profile JSON (a file such as seed 002's).",
                discussion: "Example:\n  orchardctl abm profiles define 6b1e… --file ade-profile.json --default --minimum-os iOS=18.0 --minimum-os macOS=15.0")
            @OptionGroup var global: Global
            @Argument(help: "The server token's id.") var token: String
            @Option(help: "Apple's profile JSON (profile_name, is_supervised, skip_setup_items, …).") var file: String
            @Flag(help: "Make it the token's default (new devices get it).") var `default` = false
            @Flag(name: .customLong("sign-in"), help: "Devices sign in on Orchard's page before they get the profile.") var signIn = false
            @Option(help: "PLATFORM=VERSION below which devices are asked to update (repeat).") var minimumOS: [String] = []
            func run() async throws {
                var body: [String: Any] = ["profile": try readJSONObject(file), "default": self.default]
                if signIn { body["signIn"] = true }
                if !minimumOS.isEmpty { body["minimumOS"] = try pairs(minimumOS, option: "--minimum-os") }
                let answer = try await global.api().call(.POST, "/abm/tokens/\(segment(token))/profiles", json: body)
                global.show(answer, fields: [("id", "id"), ("name", "name"), ("profile uuid", "profileUUID"), ("default", "isDefault"),
                                             ("sign-in", "requiresSignIn")])
                // Taken, but worth a look (a skip key Orchard does not know yet, a key only ABM fills): on stderr, so --json stays clean.
                for warning in answer.object["warnings"] as? [String] ?? [] {
                    FileHandle.standardError.write(Data("warning: \(warning)\n".utf8))
                }
            }
        }

        struct Default: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Make a profile its token's default and assign it where due.",
                                                            discussion: "Example:\n  orchardctl abm profiles default 1c9a…")
            @OptionGroup var global: Global
            @Argument(help: "The profile's id.") var id: String
            func run() async throws {
                let answer = try await global.api().call(.POST, "/abm/profiles/\(segment(id))/default")
                ABMCommand.showOutcomes(answer, global)
            }
        }

        struct Assign: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Assign a profile to chosen serials.",
                                                            discussion: "Example:\n  orchardctl abm profiles assign 1c9a… --serial C02XYZ --serial F17ABC")
            @OptionGroup var global: Global
            @Argument(help: "The profile's id.") var id: String
            @Option(name: .customLong("serial"), help: "A serial number (repeat).") var serials: [String] = []
            func run() async throws {
                guard !serials.isEmpty else { throw CtlError("give at least one --serial") }
                ABMCommand.showOutcomes(try await global.api().call(.POST, "/abm/profiles/\(segment(id))/assign", json: ["serials": serials]), global)
            }
        }
    }

    struct Devices: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The mirror of devices ABM assigned to Orchard.",
            subcommands: [List.self, Check.self, RemoveProfile.self, ActivationLock.self, Disown.self], defaultSubcommand: List.self)

        struct List: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Devices by serial with their assignment.",
                                                            discussion: "Example:\n  orchardctl abm devices list --token 6b1e… --limit 50")
            @OptionGroup var global: Global
            @Option(help: "Only this token's devices.") var token: String?
            @Option(help: "Page after this serial.") var after: String?
            @Option(help: "At most this many (1–1000).") var limit = 100
            func run() async throws {
                var query = ["limit=\(limit)"]
                if let token { query.append("tokenId=\(segment(token))") }
                if let after { query.append("after=\(segment(after))") }
                global.show(try await global.api().call(.GET, "/abm/devices?" + query.joined(separator: "&")),
                            columns: [("serial", "serialNumber"), ("model", "model"), ("profile status", "profileStatus"),
                                      ("assignment", "assignment"), ("outcome", "lastOutcome"), ("retry after", "retryAfter"), ("released", "released"),
                                      ("migration deadline", "migrationDeadline")])
            }
        }

        struct Check: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Ask ABM about chosen serials (POST /devices).",
                                                            discussion: "Example:\n  orchardctl abm devices check 6b1e… --serial C02XYZ")
            @OptionGroup var global: Global
            @Argument(help: "The server token's id.") var token: String
            @Option(name: .customLong("serial"), help: "A serial number (repeat).") var serials: [String] = []
            func run() async throws {
                guard !serials.isEmpty else { throw CtlError("give at least one --serial") }
                ABMCommand.showDevices(try await global.api().call(.POST, "/abm/tokens/\(segment(token))/devices/check", json: ["serials": serials]), global)
            }
        }

        struct RemoveProfile: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                commandName: "remove-profile",
                abstract: "Remove the ADE profile from serials at ABM (DELETE /profile/devices); the default is not assigned to them again.",
                discussion: "Example:\n  orchardctl abm devices remove-profile 6b1e… --serial C02XYZ\nAssigning a profile to them later (abm profiles assign) undoes it.")
            @OptionGroup var global: Global
            @Argument(help: "The server token's id.") var token: String
            @Option(name: .customLong("serial"), help: "A serial number (repeat).") var serials: [String] = []
            func run() async throws {
                guard !serials.isEmpty else { throw CtlError("give at least one --serial") }
                ABMCommand.showDevices(try await global.api().call(.POST, "/abm/tokens/\(segment(token))/devices/remove-profile",
                                                                   json: ["serials": serials]), global)
            }
        }

        struct ActivationLock: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                commandName: "activation-lock",
                abstract: "Escrow supervised devices' bypass codes with ABM (POST /device/activationlock); per-serial outcomes.",
                discussion: "Example:\n  orchardctl abm devices activation-lock 6b1e… --serial C02XYZ --message \"Property of Acme\"")
            @OptionGroup var global: Global
            @Argument(help: "The server token's id.") var token: String
            @Option(name: .customLong("serial"), help: "A serial number (repeat).") var serials: [String] = []
            @Option(help: "The message the locked device shows.") var message: String?
            func run() async throws {
                guard !serials.isEmpty else { throw CtlError("give at least one --serial") }
                var body: [String: Any] = ["serials": serials]
                if let message { body["lostMessage"] = message }
                ABMCommand.showDevices(try await global.api().call(.POST, "/abm/tokens/\(segment(token))/devices/activation-lock", json: body), global)
            }
        }

        struct Disown: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Release serials from the organisation in ABM (irreversible).",
                                                            discussion: "Example:\n  orchardctl abm devices disown 6b1e… --serial C02XYZ --yes")
            @OptionGroup var global: Global
            @Argument(help: "The server token's id.") var token: String
            @Option(name: .customLong("serial"), help: "A serial number (repeat).") var serials: [String] = []
            @Flag(help: "Confirm: disowned devices leave the organisation for good.") var yes = false
            func run() async throws {
                guard !serials.isEmpty else { throw CtlError("give at least one --serial") }
                guard yes else { throw CtlError("disowning is irreversible: add --yes") }
                ABMCommand.showDevices(try await global.api().call(.POST, "/abm/tokens/\(segment(token))/devices/disown", json: ["serials": serials]), global)
            }
        }
    }

    static func showOutcomes(_ answer: AdminAPI.Answer, _ global: Global) {
        if global.json { return printJSON(answer.json ?? [:]) }
        let outcomes = answer.object["outcomes"] as? [String: Any] ?? [:]
        Table.print(outcomes.keys.sorted().map { ["serial": $0, "outcome": outcomes[$0] ?? ""] }, columns: [("serial", "serial"), ("outcome", "outcome")])
    }

    /// ABM's per-serial answer, which the API passes on as JSON text.
    static func showDevices(_ answer: AdminAPI.Answer, _ global: Global) {
        let text = answer.object["devices"] as? String ?? "{}"
        let devices = (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] ?? [:]
        if global.json { return printJSON(devices) }
        Table.print(devices.keys.sorted().map { serial in
            var row = (devices[serial] as? [String: Any]) ?? ["response_status": devices[serial] ?? ""]
            row["serial"] = serial
            return row
        }, columns: [("serial", "serial"), ("status", "response_status"), ("profile status", "profile_status"), ("pushed", "profile_push_time")])
    }
}

private func write(_ pem: Any?, to path: String) throws {
    guard let pem = pem as? String, !pem.isEmpty else { throw CtlError("the answer has no certificate") }
    guard FileManager.default.createFile(atPath: path, contents: Data(pem.utf8)) else { throw CtlError("cannot write \(path)") }
}

struct ADECommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ade", abstract: "Automated Device Enrollment as the gateway sees it: devices, sign-in accounts, setup items.",
        subcommands: [Devices.self, Migrations.self, AllowReenrollment.self, Accounts.self, Setup.self, PlatformSSO.self, ReturnToService.self])

    struct Devices: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Each ADE device's state (assigned → … → released).",
                                                        discussion: "Example:\n  orchardctl ade devices")
        @OptionGroup var global: Global
        @Option(help: "Page after this serial.") var after: String?
        @Option(help: "At most this many (1–1000).") var limit = 100
        func run() async throws {
            var query = ["limit=\(limit)"]
            if let after { query.append("after=\(segment(after))") }
            global.show(try await global.api().call(.GET, "/ade/devices?" + query.joined(separator: "&")),
                        columns: [("serial", "serialNumber"), ("state", "state"), ("udid", "udid"), ("profile", "profileName"),
                                  ("model", "model"), ("since", "stateSince"), ("reason", "reason")])
        }
    }

    struct Migrations: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Devices migrating here from another MDM server: deadline, state, setup items left, overdue.",
            discussion: "Example:\n  orchardctl ade migrations")
        @OptionGroup var global: Global
        @Option(help: "At most this many (1–1000).") var limit = 100
        func run() async throws {
            global.show(try await global.api().call(.GET, "/ade/migrations?limit=\(limit)"),
                        columns: [("serial", "serialNumber"), ("deadline", "deadline"), ("days left", "daysLeft"), ("overdue", "overdue"),
                                  ("state", "state"), ("profile", "profileName"), ("waits", "awaitsDeviceConfigured"),
                                  ("setup open", "setupOpen"), ("failed", "setupFailed")])
        }
    }

    struct AllowReenrollment: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "allow-reenrollment", abstract: "Let an enrolled serial re-enroll once without ABM showing a new profile push (24 h).",
            discussion: "Example:\n  orchardctl ade allow-reenrollment C02XYZ123")
        @OptionGroup var global: Global
        @Argument(help: "The serial number.") var serial: String
        func run() async throws {
            global.show(try await global.api().call(.POST, "/ade/devices/\(segment(serial))/allow-reenrollment"),
                        fields: [("serial", "serialNumber"), ("allowed by", "allowedBy"), ("until", "expiresAt")])
        }
    }

    struct Accounts: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Local accounts of the ADE sign-in page.", subcommands: [List.self, Set.self, Delete.self], defaultSubcommand: List.self)

        struct List: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Every account.", discussion: "Example:\n  orchardctl ade accounts list")
            @OptionGroup var global: Global
            func run() async throws {
                global.show(try await global.api().call(.GET, "/ade/accounts"), columns: [("user", "username"), ("disabled", "disabled"), ("locked", "locked")])
            }
        }

        struct Set: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Create or change an account (a new password ends its lock).",
                discussion: "Example:\n  orchardctl ade accounts set jane@acme.example --password-file jane.txt")
            @OptionGroup var global: Global
            @Argument(help: "The user name.") var username: String
            @Option(help: "A file holding the password (12 characters or more).") var passwordFile: String
            @Flag(help: "The account may not sign in.") var disabled = false
            func run() async throws {
                let password = String(decoding: try readFile(passwordFile), as: UTF8.self).trimmingCharacters(in: .newlines)
                global.show(try await global.api().call(.PUT, "/ade/accounts/\(segment(username))", json: ["password": password, "disabled": disabled]),
                            fields: [("user", "username"), ("disabled", "disabled")])
            }
        }

        struct Delete: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Delete an account.", discussion: "Example:\n  orchardctl ade accounts delete jane@acme.example")
            @OptionGroup var global: Global
            @Argument(help: "The user name.") var username: String
            func run() async throws {
                global.done(try await global.api().call(.DELETE, "/ade/accounts/\(segment(username))"), "deleted \(username)")
            }
        }
    }

    struct Setup: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "An ADE profile's setup items (commands and declarations before DeviceConfigured), from a JSON file.",
            discussion: """
                The file: {"commands": [{"type": "InstallProfile", "profile": "<base64>"}], "declarations": ["com.example.passcode"]}
                Example:
                  orchardctl ade setup 1c9a… --file setup.json
                """)
        @OptionGroup var global: Global
        @Argument(help: "The ADE profile's id.") var profile: String
        @Option(help: "The setup items as JSON.") var file: String
        func run() async throws {
            global.show(try await global.api().call(.PUT, "/ade/profiles/\(segment(profile))/setup", json: try readJSONObject(file)),
                        fields: [("profile", "profileID"), ("commands", "commands"), ("declarations", "declarations")])
        }
    }

    struct ReturnToService: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "return-to-service",
            abstract: "Return to Service settings of an ADE profile (iOS 26): the Wi-Fi profile its devices install after erasing.",
            discussion: """
                Examples:
                  orchardctl ade return-to-service 1c9a… --wifi-profile store-wifi.mobileconfig
                  orchardctl ade return-to-service 1c9a… --ethernet          (no Wi-Fi profile)
                  orchardctl ade return-to-service 1c9a…                     (show)
                  orchardctl ade return-to-service 1c9a… --remove
                Then: orchardctl devices command UDID --type EraseDevice --return-to-service
                """)
        @OptionGroup var global: Global
        @Argument(help: "The ADE profile's id.") var profile: String
        @Option(help: "A .mobileconfig with a com.apple.wifi.managed payload.") var wifiProfile: String?
        @Flag(help: "Devices have Ethernet: no Wi-Fi profile.") var ethernet = false
        @Flag(help: "Remove the settings.") var remove = false
        func run() async throws {
            let path = "/ade/profiles/\(segment(profile))/return-to-service"
            let fields = [("profile", "profileID"), ("Wi-Fi profile", "wifiProfile"), ("by", "updatedBy"), ("at", "updatedAt")]
            if remove { return global.done(try await global.api().call(.DELETE, path), "\(profile): no Return to Service settings") }
            if let wifiProfile {
                return global.show(try await global.api().call(.PUT, path, json: ["wifiProfile": Data(try readFile(wifiProfile)).base64EncodedString()]),
                                   fields: fields)
            }
            if ethernet { return global.show(try await global.api().call(.PUT, path, json: [String: Any]()), fields: fields) }
            global.show(try await global.api().call(.GET, path), fields: fields)
        }
    }

    struct PlatformSSO: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "platform-sso",
            abstract: "Require Platform SSO during Setup Assistant (macOS 26) for an ADE profile's Macs; show or remove it.",
            discussion: """
                Examples:
                  orchardctl ade platform-sso 1c9a… --profile-url https://idp.example.com/psso.mobileconfig \\
                      --manifest-url https://idp.example.com/app.plist --auth-url https://idp.example.com/authenticate \\
                      --domain corp.example.com --fallback refuse
                  orchardctl ade platform-sso 1c9a…            (show)
                  orchardctl ade platform-sso 1c9a… --remove
                """)
        @OptionGroup var global: Global
        @Argument(help: "The ADE profile's id.") var profile: String
        @Option(help: "https URL of the profile with the SSO extension's com.apple.extensiblesso payload.") var profileURL: String?
        @Option(help: "https URL of the SSO app's package manifest.") var manifestURL: String?
        @Option(help: "https URL where the identity provider's authentication starts.") var authURL: String?
        @Option(help: "The Managed Apple Account domain whose OpenID Connect provider issues the tokens.") var domain: String?
        @Option(help: "What a Mac that cannot do Platform SSO gets: sign-in (the profile's sign-in page) or refuse.") var fallback = "refuse"
        @Flag(help: "Remove the requirement.") var remove = false
        func run() async throws {
            let path = "/ade/profiles/\(segment(profile))/platform-sso"
            let fields = [("profile URL", "profileURL"), ("manifest URL", "manifestURL"), ("auth URL", "authURL"), ("domain", "domain"),
                          ("fallback", "fallback")]
            if remove { return global.done(try await global.api().call(.DELETE, path), "\(profile): Platform SSO no longer required") }
            guard let profileURL, let manifestURL, let authURL, let domain else {
                guard [self.profileURL, self.manifestURL, self.authURL, self.domain].allSatisfy({ $0 == nil }) else {
                    throw CtlError("give --profile-url, --manifest-url, --auth-url and --domain together")
                }
                return global.show(try await global.api().call(.GET, path), fields: fields)
            }
            global.show(try await global.api().call(.PUT, path, json: ["profileURL": profileURL, "manifestURL": manifestURL, "authURL": authURL,
                                                                        "domain": domain, "fallback": fallback]), fields: fields)
        }
    }
}
