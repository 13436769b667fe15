import ArgumentParser
import Foundation

/// `orchardctl apps`: Apps and Books content tokens and app assignments, iPhone first.
struct AppsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "apps", abstract: "App assignments (iPhone first, then the watch) and Apps and Books content tokens.",
        subcommands: [List.self, Show.self, Assign.self, Remove.self, DeviceApps.self, Tokens.self, UploadToken.self],
        defaultSubcommand: List.self)

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Every app assignment, with how many installs are in each state.",
                                                        discussion: "Example:\n  orchardctl apps list")
        @OptionGroup var global: Global
        func run() async throws {
            let answer = try await global.api().call(.GET, "/apps/assignments")
            if global.json { return printJSON(answer.json ?? [:]) }
            let rows = (answer.object["items"] as? [[String: Any]] ?? []).map { item -> [String: Any] in
                var row = item
                row["states"] = (item["states"] as? [String: Int] ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
                return row
            }
            Table.print(rows, columns: [("id", "id"), ("name", "name"), ("app", "adamId"), ("deployment", "watchDeployment"),
                                        ("licences", "contentToken"), ("installs", "states")])
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "One assignment: each device's install, its state and why.",
                                                        discussion: "Example:\n  orchardctl apps show 3f2c…")
        @OptionGroup var global: Global
        @Argument(help: "The assignment's id.") var id: String
        func run() async throws {
            let answer = try await global.api().call(.GET, "/apps/assignments/\(segment(id))")
            if global.json { return printJSON(answer.json ?? [:]) }
            print("app \(Table.text((answer.object["adamId"] as? String) ?? (answer.object["watchManifestURL"] as? String))) \(Table.text(answer.object["bundleId"])) (\(Table.text(answer.object["watchDeployment"])), "
                  + "details from \(Table.text(answer.object["detailsFrom"])), iPhone by \(Table.text(answer.object["iphoneInstall"])))")
            Table.print(answer.object["installs"] as? [[String: Any]] ?? [],
                        columns: [("device", "enrollmentID"), ("role", "role"), ("state", "state"), ("after", "after"), ("declaration", "declaration"),
                                  ("detail", "detail")])
        }
    }

    struct Assign: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Assign an App Store app (public or custom) to a watch, an iPhone with its watches, or a group.",
            discussion: """
                paired and dependent apps install on the iPhone first, then on the watch; standalone apps on the watch alone.
                With --content-token, Orchard reads the bundle ids and the deployment from Apple's app metadata (when it has a
                developer key); what you give must agree with Apple's. --iphone-install declaration sends the iPhone Apple's
                managed-app declaration (iOS 17.2+) instead of InstallApplication.
                Examples:
                  orchardctl apps assign --adam-id 361309726 --content-token hq --watch <watch udid>
                  orchardctl apps assign --adam-id 361309726 --bundle-id com.example.field --watch-bundle-id com.example.field.watchkitapp \\
                      --deployment paired --content-token hq --iphone-install declaration --watch <watch udid>
                  orchardctl apps assign --adam-id 987654321 --bundle-id com.example.timer.watchkitapp --deployment standalone --iphone <udid>
                  orchardctl apps assign --manifest-url https://apps.example.com/rota.plist --watch-manifest-url https://apps.example.com/rota-watch.plist \\
                      --bundle-id com.example.rota --watch-bundle-id com.example.rota.watchkitapp --deployment paired --watch <watch udid>
                """)
        @OptionGroup var global: Global
        @Option(name: .customLong("adam-id"), help: "The app's App Store id (none for an in-house app).") var adamID: String?
        @Option(name: .customLong("manifest-url"), help: "In-house: the iPhone app's manifest (https://).") var manifestURL: String?
        @Option(name: .customLong("watch-manifest-url"), help: "In-house: the watch app's manifest (https://).") var watchManifestURL: String?
        @Option(name: .customLong("bundle-id"), help: "The iPhone app's bundle identifier (a standalone app's: the watch app's); from Apple's metadata when left out.")
        var bundleID: String?
        @Option(name: .customLong("watch-bundle-id"), help: "The watch app's bundle identifier (paired, dependent); from Apple's metadata when left out.")
        var watchBundleID: String?
        @Option(help: "paired, dependent or standalone; from Apple's metadata when left out.") var deployment: String?
        @Option(name: .customLong("content-token"), help: "Licences (and Apple's app metadata) from this Apps and Books content token.") var contentToken: String?
        @Option(name: .customLong("iphone-install"), help: "command (InstallApplication, the default) or declaration (com.apple.configuration.app.managed).")
        var iphoneInstall: String?
        @Option(help: "A name shown in lists.") var name: String?
        @Option(help: "A watch's enrollment id.") var watch: String?
        @Option(help: "An iPhone's enrollment id (its enrolled watches get the app).") var iphone: String?
        @Option(name: .customLong("device"), help: "A group: watches and iPhones (repeat).") var devices: [String] = []
        func run() async throws {
            var target: [String: Any] = [:]
            if let watch { target["watch"] = watch }
            if let iphone { target["iphone"] = iphone }
            if !devices.isEmpty { target["devices"] = devices }
            var body: [String: Any] = ["target": target]
            if let adamID { body["adamId"] = adamID }
            if let manifestURL { body["manifestURL"] = manifestURL }
            if let watchManifestURL { body["watchManifestURL"] = watchManifestURL }
            if let bundleID { body["bundleId"] = bundleID }
            if let deployment { body["watchDeployment"] = deployment }
            if let watchBundleID { body["watchBundleId"] = watchBundleID }
            if let contentToken { body["contentToken"] = contentToken }
            if let iphoneInstall { body["iphoneInstall"] = iphoneInstall }
            if let name { body["name"] = name }
            let answer = try await global.api().call(.POST, "/apps/assignments", json: body)
            if global.json { return printJSON(answer.json ?? [:]) }
            print("assignment \(Table.text(answer.object["id"]))")
            Table.print(answer.object["installs"] as? [[String: Any]] ?? [],
                        columns: [("device", "enrollmentID"), ("role", "role"), ("state", "state"), ("after", "after")])
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove an assignment (installed apps stay; nothing more is sent).",
                                                        discussion: "Example:\n  orchardctl apps remove 3f2c…")
        @OptionGroup var global: Global
        @Argument(help: "The assignment's id.") var id: String
        func run() async throws {
            global.done(try await global.api().call(.DELETE, "/apps/assignments/\(segment(id))"), "removed \(id)")
        }
    }

    struct DeviceApps: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "device", abstract: "One device's app installs.",
                                                        discussion: "Example:\n  orchardctl apps device <udid>")
        @OptionGroup var global: Global
        @Argument(help: "The enrollment id.") var id: String
        func run() async throws {
            global.show(try await global.api().call(.GET, "/devices/\(segment(id))/apps"),
                        columns: [("assignment", "assignmentID"), ("app", "adamId"), ("bundle", "bundleId"), ("role", "role"),
                                  ("state", "state"), ("detail", "detail")])
        }
    }

    struct Tokens: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Apps and Books content tokens (never the token itself).",
                                                        discussion: "Example:\n  orchardctl apps tokens")
        @OptionGroup var global: Global
        func run() async throws {
            global.show(try await global.api().call(.GET, "/apps/content-tokens"),
                        columns: [("name", "id"), ("organisation", "organization"), ("location", "location"), ("expires", "expiresAt")])
        }
    }

    struct UploadToken: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "upload-token", abstract: "Upload a content token (.vpptoken from Apple Business Manager).",
            discussion: "Example:\n  orchardctl apps upload-token hq --file HQ.vpptoken")
        @OptionGroup var global: Global
        @Argument(help: "A name for it.") var name: String
        @Option(help: "The .vpptoken file.") var file: String
        @Flag(help: "Take it over from another MDM server that uses it.") var takeOver = false
        func run() async throws {
            let token = String(decoding: try readFile(file), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            global.show(try await global.api().call(.PUT, "/apps/content-tokens/\(segment(name))", json: ["sToken": token, "takeOver": takeOver]),
                        fields: [("name", "id"), ("organisation", "organization"), ("location", "location"), ("expires", "expiresAt")])
        }
    }
}
