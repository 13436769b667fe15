import ArgumentParser
import Foundation

struct PushCertificateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "push-certificate", abstract: "The MDM push certificate (APNs).",
        subcommands: [Show.self, Upload.self], defaultSubcommand: Show.self)

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Its topic and expiry.", discussion: "Example:\n  orchardctl push-certificate show")
        @OptionGroup var global: Global
        func run() async throws {
            global.show(try await global.api().call(.GET, "/push-certificate"),
                        fields: [("topic", "topic"), ("subject", "subject"), ("expires", "notAfter"), ("uploaded", "uploadedAt")])
        }
    }

    struct Upload: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Upload the push certificate: PEM certificate and key, or a PKCS#12 file.",
            discussion: "Examples:\n  orchardctl push-certificate upload --certificate push.pem --key push.key\n  orchardctl push-certificate upload --pkcs12 push.p12 --password secret")
        @OptionGroup var global: Global
        @Option(help: "PEM certificate file.") var certificate: String?
        @Option(help: "PEM private key file.") var key: String?
        @Option(help: "PKCS#12 file (instead of --certificate and --key).") var pkcs12: String?
        @Option(help: "The PKCS#12 file's password.") var password: String?

        func run() async throws {
            var body: [String: Any] = [:]
            if let pkcs12 {
                body["pkcs12"] = Data(try readFile(pkcs12)).base64EncodedString()
                if let password { body["password"] = password }
            } else if let certificate, let key {
                body["certificate"] = String(decoding: try readFile(certificate), as: UTF8.self)
                body["privateKey"] = String(decoding: try readFile(key), as: UTF8.self)
            } else {
                throw CtlError("give --certificate and --key, or --pkcs12")
            }
            global.show(try await global.api().call(.PUT, "/push-certificate", json: body), fields: [("topic", "topic"), ("expires", "notAfter")])
        }
    }
}

struct LinksCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "links", abstract: "Enrollment links (profile-based enrollment).",
        subcommands: [List.self, Create.self, Revoke.self], defaultSubcommand: List.self)

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Every link with its uses.", discussion: "Example:\n  orchardctl links list")
        @OptionGroup var global: Global
        func run() async throws {
            global.show(try await global.api().call(.GET, "/enrollment-links"),
                        columns: [("id", "id"), ("name", "name"), ("uses", "uses"), ("max", "maxUses"), ("pending", "pendingProfiles"),
                                  ("expires", "expiresAt"), ("revoked", "revoked")])
        }
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "A new link; its URL (with the token) is shown once.",
            discussion: "Example:\n  orchardctl links create --name \"Sales iPads\" --max-uses 20 --expires 2027-01-31T00:00:00Z")
        @OptionGroup var global: Global
        @Option(help: "A name for the link.") var name: String
        @Option(help: "How many devices may enroll with it (a use is spent when a device enrolls, not at the download).") var maxUses: Int?
        @Option(help: "When it stops working (ISO 8601).") var expires: String?
        func run() async throws {
            var body: [String: Any] = ["name": name]
            if let maxUses { body["maxUses"] = maxUses }
            if let expires { body["expiresAt"] = expires }
            global.show(try await global.api().call(.POST, "/enrollment-links", json: body), fields: [("id", "id"), ("url", "url")])
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke a link.", discussion: "Example:\n  orchardctl links revoke 3f2c…")
        @OptionGroup var global: Global
        @Argument(help: "The link's id.") var id: String
        func run() async throws {
            global.done(try await global.api().call(.DELETE, "/enrollment-links/\(segment(id))"), "revoked \(id)")
        }
    }
}

struct DevicesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "devices", abstract: "Enrolled devices, their commands and declarations.",
        subcommands: [List.self, Show.self, Commands.self, Declarations.self, AssignDeclarations.self, Command.self, Unenroll.self,
                      Profiles.self, ActivationLockBypass.self],
        defaultSubcommand: List.self)

    static let columns = [("id", "id"), ("status", "status"), ("ade", "adeState"), ("product", "productName"), ("os", "osVersion"), ("serial", "serialNumber"),
                          ("supervised", "supervised"), ("paired", "pairedWith"), ("account", "managedAppleID"), ("last seen", "lastSeenAt")]

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Enrolled devices by enrollment id (page on with --after), with their state.",
            discussion: "Examples:\n  orchardctl devices list\n  orchardctl devices list --status enrolled --managed-apple-id alice@example.com --json")
        @OptionGroup var global: Global
        @Option(help: "pending, enrolled, checked-out or unenrolled.") var status: String?
        @Option(help: "Only this Managed Apple Account's devices.") var managedAppleID: String?
        @Option(help: "At most this many (1–1000).") var limit = 100
        @Option(help: "Page after this enrollment id.") var after: String?
        func run() async throws {
            var query = ["limit=\(limit)"]
            if let status { query.append("status=\(segment(status))") }
            if let managedAppleID { query.append("managedAppleID=\(segment(managedAppleID))") }
            if let after { query.append("after=\(segment(after))") }
            global.show(try await global.api().call(.GET, "/devices?" + query.joined(separator: "&")), columns: DevicesCommand.columns)
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "One device and its state.", discussion: "Example:\n  orchardctl devices show 00008030-001A2B3C4D5E6F70")
        @OptionGroup var global: Global
        @Argument(help: "UDID, or EnrollmentID of a User Enrollment.") var id: String
        func run() async throws { global.show(try await global.api().call(.GET, "/devices/\(segment(id))")) }
    }

    struct Commands: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The device's recent commands and their results.",
                                                        discussion: "Example:\n  orchardctl devices commands 00008030-001A2B3C4D5E6F70")
        @OptionGroup var global: Global
        @Argument(help: "UDID or EnrollmentID.") var id: String
        func run() async throws {
            global.show(try await global.api().call(.GET, "/devices/\(segment(id))/commands"),
                        columns: [("uuid", "commandUUID"), ("type", "requestType"), ("status", "status"), ("by", "requestedBy"),
                                  ("queued", "queuedAt"), ("completed", "completedAt")])
        }
    }

    struct Declarations: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The declarations assigned to the device and its last status report.",
                                                        discussion: "Example:\n  orchardctl devices declarations 00008030-001A2B3C4D5E6F70")
        @OptionGroup var global: Global
        @Argument(help: "UDID or EnrollmentID.") var id: String
        func run() async throws {
            global.show(try await global.api().call(.GET, "/devices/\(segment(id))/declarations"),
                        fields: [("declarations", "identifiers"), ("status at", "lastStatusAt"), ("status", "lastStatusReport")])
        }
    }

    struct AssignDeclarations: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "assign-declarations", abstract: "Replace the declarations assigned to a device (it is told to synchronise).",
            discussion: "Example:\n  orchardctl devices assign-declarations 00008030-001A2B3C4D5E6F70 com.example.passcode com.example.wifi")
        @OptionGroup var global: Global
        @Argument(help: "UDID or EnrollmentID.") var id: String
        @Argument(help: "Declaration identifiers (none: remove all).") var identifiers: [String] = []
        func run() async throws {
            global.done(try await global.api().call(.PUT, "/devices/\(segment(id))/declarations", json: ["identifiers": identifiers]),
                        "\(id): \(identifiers.count) declaration(s) assigned")
        }
    }

    struct Command: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Queue a command for the device and push it.",
            discussion: """
                Types: DeviceInformation, DeviceLock, EraseDevice, ClearPasscode, RemoveProfile, Unenroll, InstallProfile,
                DeviceConfigured, DeclarativeManagement, Raw (a whole command plist). --file takes the request as JSON.
                Examples:
                  orchardctl devices command UDID --type DeviceLock --message "Return to IT" --phone "+1 555 0100"
                  orchardctl devices command UDID --type InstallProfile --profile wifi.mobileconfig
                  orchardctl devices command UDID --type Raw --plist command.plist
                  orchardctl devices command UDID --type EraseDevice --return-to-service
                """)
        @OptionGroup var global: Global
        @Argument(help: "UDID or EnrollmentID.") var id: String
        @OptionGroup var request: CommandRequestOptions
        func run() async throws {
            let answer = try await global.api().call(.POST, "/devices/\(segment(id))/commands", json: try request.body())
            global.show(answer, fields: [("command", "commandUUID"), ("type", "requestType"), ("queued for", "queuedFor")])
        }
    }

    struct Profiles: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "What the device last reported installed (queue --type ProfileList to refresh).",
            discussion: "Example:\n  orchardctl devices command WATCH-UDID --type ProfileList\n  orchardctl devices profiles WATCH-UDID")
        @OptionGroup var global: Global
        @Argument(help: "UDID or EnrollmentID.") var id: String
        func run() async throws {
            global.show(try await global.api().call(.GET, "/devices/\(segment(id))/profiles"),
                        columns: [("identifier", "identifier"), ("name", "displayName"), ("managed", "managed"), ("payloads", "payloadTypes")])
        }
    }

    struct ActivationLockBypass: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "activation-lock-bypass", abstract: "The codes that clear the device's Activation Lock (the read is recorded).",
            discussion: "Example:\n  orchardctl devices activation-lock-bypass 00008030-001A2B3C4D5E6F70")
        @OptionGroup var global: Global
        @Argument(help: "UDID.") var id: String
        func run() async throws {
            global.show(try await global.api().call(.GET, "/devices/\(segment(id))/activation-lock-bypass"),
                        fields: [("enrollment", "enrollmentID"), ("device's code", "deviceCode"), ("Orchard's code", "serverCode")])
        }
    }

    struct Unenroll: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove the MDM profile Orchard issued (the device unenrolls).",
                                                        discussion: "Example:\n  orchardctl devices unenroll 00008030-001A2B3C4D5E6F70")
        @OptionGroup var global: Global
        @Argument(help: "UDID or EnrollmentID.") var id: String
        func run() async throws {
            let answer = try await global.api().call(.POST, "/devices/\(segment(id))/commands", json: ["type": "Unenroll"])
            global.show(answer, fields: [("command", "commandUUID"), ("type", "requestType")])
        }
    }
}

/// A command request from flags, or from a JSON file (the API's CommandRequest).
struct CommandRequestOptions: ParsableArguments {
    @Option(help: "The command type.") var type: String?
    @Option(help: "DeviceLock: the message on the lock screen.") var message: String?
    @Option(help: "DeviceLock: a phone number on the lock screen.") var phone: String?
    @Flag(help: "EraseDevice: keep the cellular data plan.") var preserveDataPlan = false
    @Flag(help: "EraseDevice: erase and return to service (the device enrolls again by itself; iOS 26).") var returnToService = false
    @Option(help: "RemoveProfile: the profile's identifier.") var identifier: String?
    @Option(help: "InstallProfile: a .mobileconfig file.") var profile: String?
    @Option(parsing: .upToNextOption, help: "DeviceInformation: the queries.") var queries: [String] = []
    @Option(help: "Raw: a command plist file (with CommandUUID and Command).") var plist: String?
    @Option(help: "The whole request as a JSON file instead of the flags above.") var file: String?

    func body() throws -> [String: Any] {
        if let file { return try readJSONObject(file) }
        guard let type else { throw CtlError("give --type (or --file with the request as JSON)") }
        var body: [String: Any] = ["type": type]
        if let message { body["message"] = message }
        if let phone { body["phoneNumber"] = phone }
        if preserveDataPlan { body["preserveDataPlan"] = true }
        if returnToService { body["returnToService"] = true }
        if let identifier { body["identifier"] = identifier }
        if let profile { body["profile"] = Data(try readFile(profile)).base64EncodedString() }
        if !queries.isEmpty { body["queries"] = queries }
        if let plist { body["plist"] = Data(try readFile(plist)).base64EncodedString() }
        return body
    }
}

struct CommandsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "commands", abstract: "Queue one command for many devices.",
        discussion: "Example:\n  orchardctl commands send --device UDID1 --device UDID2 --type DeviceInformation",
        subcommands: [Send.self], defaultSubcommand: Send.self)

    struct Send: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Queue the command for every --device (at most 10,000).",
                                                        discussion: "Example:\n  orchardctl commands send --device UDID1 --device UDID2 --type DeviceLock")
        @OptionGroup var global: Global
        @Option(name: .customLong("device"), help: "An enrollment id (repeat the option).") var devices: [String] = []
        @OptionGroup var request: CommandRequestOptions
        func run() async throws {
            guard !devices.isEmpty else { throw CtlError("give at least one --device") }
            let answer = try await global.api().call(.POST, "/commands", json: ["enrollmentIDs": devices, "command": try request.body()])
            global.show(answer, fields: [("command", "commandUUID"), ("type", "requestType"), ("queued for", "queuedFor")])
        }
    }
}

struct DeclarationsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "declarations", abstract: "Declarative-management declarations.",
        subcommands: [List.self, Put.self, Delete.self], defaultSubcommand: List.self)

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Every declaration.", discussion: "Example:\n  orchardctl declarations list")
        @OptionGroup var global: Global
        func run() async throws {
            global.show(try await global.api().call(.GET, "/declarations"),
                        columns: [("identifier", "identifier"), ("type", "type"), ("token", "serverToken"), ("updated", "updatedAt")])
        }
    }

    struct Put: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create or replace a declaration from a JSON file of its payload.",
            discussion: "Example:\n  orchardctl declarations put com.example.passcode --type com.apple.configuration.passcode.settings --payload passcode.json")
        @OptionGroup var global: Global
        @Argument(help: "The declaration's identifier.") var identifier: String
        @Option(help: "Apple's declaration type.") var type: String
        @Option(help: "A JSON file holding the payload object.") var payload: String
        func run() async throws {
            let answer = try await global.api().call(.PUT, "/declarations/\(segment(identifier))",
                                                     json: ["type": type, "payload": try readJSONObject(payload)])
            global.done(answer, "saved \(identifier)")
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete a declaration.", discussion: "Example:\n  orchardctl declarations delete com.example.passcode")
        @OptionGroup var global: Global
        @Argument(help: "The declaration's identifier.") var identifier: String
        func run() async throws {
            global.done(try await global.api().call(.DELETE, "/declarations/\(segment(identifier))"), "deleted \(identifier)")
        }
    }
}

struct WatchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "watch", abstract: "Apple Watch enrollment through supervised iPhones, and the watch's payloads.",
        subcommands: [Show.self, Set.self, InstallProfile.self, Profiles.self], defaultSubcommand: Show.self)

    struct InstallProfile: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "install-profile",
            abstract: "Send a watch a configuration profile (Wi-Fi, cellular, passcode, restrictions, SCEP/ACME…).",
            discussion: """
                What watchOS does not allow, or allows only supervised, is refused naming Apple's rule; nothing is sent.
                Example:
                  orchardctl watch install-profile <watch udid> --profile wifi.mobileconfig
                """)
        @OptionGroup var global: Global
        @Argument(help: "The watch's enrollment id.") var id: String
        @Option(help: "A .mobileconfig file.") var profile: String
        func run() async throws {
            let answer = try await global.api().call(.POST, "/devices/\(segment(id))/commands",
                                                     json: ["type": "InstallProfile", "profile": Data(try readFile(profile)).base64EncodedString()])
            global.show(answer, fields: [("command", "commandUUID"), ("queued for", "queuedFor")])
        }
    }

    struct Profiles: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "What a watch last reported installed (send it ProfileList to refresh).",
            discussion: "Example:\n  orchardctl watch profiles <watch udid>")
        @OptionGroup var global: Global
        @Argument(help: "The watch's enrollment id.") var id: String
        func run() async throws {
            global.show(try await global.api().call(.GET, "/devices/\(segment(id))/profiles"),
                        columns: [("identifier", "identifier"), ("name", "displayName"), ("managed", "managed"), ("payloads", "payloadTypes")])
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The mode and each iPhone's eligibility.", discussion: "Example:\n  orchardctl watch show")
        @OptionGroup var global: Global
        func run() async throws {
            let answer = try await global.api().call(.GET, "/watch-enrollment")
            if global.json { return printJSON(answer.json ?? [:]) }
            print("mode: \(Table.text(answer.object["mode"]))   profile URL: \(Table.text(answer.object["enrollmentProfileURL"]))")
            Table.print(answer.object["phones"] as? [[String: Any]] ?? [],
                        columns: [("iphone", "enrollmentID"), ("on", "on"), ("not eligible because", "notEligibleBecause")])
        }
    }

    struct Set: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Turn watch enrollment on for all supervised iPhones, for chosen ones, or off.",
            discussion: "Examples:\n  orchardctl watch set --mode all-supervised\n  orchardctl watch set --mode selected --iphone UDID1 --iphone UDID2")
        @OptionGroup var global: Global
        @Option(help: "off, all-supervised or selected.") var mode: String
        @Option(name: .customLong("iphone"), help: "With --mode selected: an iPhone's enrollment id (repeat).") var iphones: [String] = []
        @Option(help: "PEM file: the TLS chain of the enrollment profile URL, pinned by the watch.") var anchors: String?
        func run() async throws {
            var body: [String: Any] = ["mode": mode]
            if !iphones.isEmpty { body["enrollmentIDs"] = iphones }
            if let anchors { body["anchorCertificatesPEM"] = String(decoding: try readFile(anchors), as: UTF8.self) }
            let answer = try await global.api().call(.PUT, "/watch-enrollment", json: body)
            global.done(answer, "watch enrollment: \(Table.text(answer.object["mode"]))")
        }
    }
}
