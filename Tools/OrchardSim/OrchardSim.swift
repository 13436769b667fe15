import ArgumentParser
import Foundation
import OrchardSimulator

/// orchard-sim: simulated iPhones, iPads, Macs and Apple Watches that speak the device protocol over HTTP to a running
/// Orchard stack, for every enrollment flow (docs/simulator.md).
@main
struct OrchardSim: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "orchard-sim",
        abstract: "Simulated Apple devices for every Orchard enrollment flow.",
        discussion: """
            Against the local stack (./Deploy/run-local.sh writes what the simulator needs to .orchard/local/orchardctl.json):
              orchard-sim demo                          one device per flow, each step printed
              orchard-sim load --flow ade --devices 500 --closed 16
              orchard-sim fleet --devices 10000 --interval 60
            """,
        subcommands: [Demo.self, Load.self, Fleet.self, Apps.self, APNs.self])

    static func main() async {
        var command: any ParsableCommand
        do {
            command = try parseAsRoot()
        } catch {
            exit(withError: error)
        }
        do {
            if var asyncCommand = command as? AsyncParsableCommand { try await asyncCommand.run() } else { try command.run() }
        } catch where String(reflecting: type(of: error)).hasPrefix("ArgumentParser.") {
            // Help, a completion script, an exit code: the parser's own way out.
            exit(withError: error)
        } catch {
            // Whatever went wrong, one line: the server's refusal, or why it could not be reached.
            FileHandle.standardError.write(Data("orchard-sim: \(describe(error))\n".utf8))
            Foundation.exit(1)
        }
    }
}

/// Where the stack is and what the simulator may use: flags, then environment, then the local stack's config file.
struct Connection: ParsableArguments {
    @Option(help: "The gateway's URL (default: ORCHARD_URL, then the config file).") var url: String?
    @Option(name: .customLong("api-key"), help: "An admin API key (default: ORCHARD_API_KEY, then the config file).") var apiKey: String?
    @Option(name: .customLong("auth-url"), help: "user-enrollment-auth's URL (default: the config file, or the gateway's port + 4).")
    var authURL: String?
    @Option(name: .customLong("apple-ca"), help: "A folder with the stand-in Apple device CA (apple-ca.pem, apple-ca.key).") var appleCA: String?
    @Option(name: .customLong("abm-standin"), help: "The ABM stand-in's URL.") var abmStandIn: String?
    @Option(name: .customLong("abm-consumer-key"), help: "The consumer key of a server token connected to the stand-in.") var abmConsumerKey: String?
    @Option(name: .customLong("byod-user"), help: "An account of a User Enrollment domain: user@domain:password.") var byodUser: String?
    @Option(name: .customLong("adde-user"), help: "An account of a Device Enrollment domain: user@domain:password.") var addeUser: String?
    @Option(help: "With an account such as bench{n}@byod.example.com: {n} takes the values 0000 … accounts-1 in turn.")
    var accounts = 1
    @Option(name: .customLong("push-feed"), help: "The APNs stand-in's feed of pushes (orchard-sim apns), to wake devices.") var pushFeed: String?

    func environment() throws -> SimulatorEnvironment {
        let env = ProcessInfo.processInfo.environment
        let file = try Self.configFile()
        let trial = file["trial"] as? [String: Any] ?? [:]
        guard var gateway = url ?? env["ORCHARD_URL"] ?? file["url"] as? String else {
            throw SimulatorError("no server: give --url, set ORCHARD_URL, or start the local stack with ./Deploy/run-local.sh")
        }
        while gateway.hasSuffix("/") { gateway.removeLast() }
        guard let key = apiKey ?? env["ORCHARD_API_KEY"] ?? file["apiKey"] as? String else {
            throw SimulatorError("no API key: give --api-key, set ORCHARD_API_KEY, or use the local stack's config file")
        }
        let services = file["services"] as? [String: String] ?? [:]
        let auth = authURL ?? services["user-enrollment-auth"] ?? URLComponents(string: gateway).flatMap { c in
            c.host.map { "\(c.scheme ?? "http")://\($0):\((c.port ?? 8080) + 4)" } } ?? gateway
        let ca = try (appleCA ?? trial["appleCA"] as? String).map(SimulatorEnvironment.appleCA(directory:))
        func account(_ flag: String?, _ name: String) throws -> (String, String)? {
            if let flag {
                guard let colon = flag.firstIndex(of: ":") else { throw SimulatorError("--\(name)-user takes user@domain:password") }
                return (String(flag[..<colon]), String(flag[flag.index(after: colon)...]))
            }
            guard let user = trial["\(name)User"] as? String, let password = trial["\(name)Password"] as? String else { return nil }
            return (user, password)
        }
        guard accounts >= 1 else { throw SimulatorError("--accounts must be at least 1") }
        var environment = SimulatorEnvironment(gateway: gateway, enrollmentAuth: auth, admin: AdminClient(baseURL: gateway, key: key),
                                               appleCA: ca, abmStandIn: abmStandIn ?? trial["abmStandIn"] as? String,
                                               abmConsumerKey: abmConsumerKey ?? trial["abmConsumerKey"] as? String,
                                               byodUser: try account(byodUser, "byod"), addeUser: try account(addeUser, "adde"),
                                               pushFeed: pushFeed ?? trial["pushFeed"] as? String)
        environment.accounts = accounts
        return environment
    }

    static func configFile() throws -> [String: Any] {
        let env = ProcessInfo.processInfo.environment
        let candidates = env["ORCHARD_CONFIG"].map { [$0] }
            ?? [FileManager.default.currentDirectoryPath + "/.orchard/local/orchardctl.json", (env["HOME"] ?? "") + "/.config/orchard/orchardctl.json"]
        for path in candidates where FileManager.default.fileExists(atPath: path) { return try SimulatorEnvironment.configFile(at: path) }
        return [:]
    }
}

enum Flow: String, ExpressibleByArgument, CaseIterable, Sendable {
    case link, ipad, mac, watch, ade, byod, adde

    var title: String {
        switch self {
        case .link: "Profile enrollment of an iPhone from an enrollment link"
        case .ipad: "Profile enrollment of an iPad from an enrollment link"
        case .mac: "Profile enrollment of a Mac from an enrollment link"
        case .watch: "An Apple Watch through its supervised iPhone"
        case .ade: "Automated Device Enrollment of a Mac (ABM stand-in)"
        case .byod: "Account-driven User Enrollment of a personal iPhone"
        case .adde: "Account-driven Device Enrollment of an organisation's iPhone"
        }
    }

    /// Runs the flow once; the devices it enrolled.
    func run(_ flows: EnrollmentFlows) async throws -> [SimulatedDevice] {
        switch self {
        case .link: [try await flows.enrollThroughLink(platform: "iOS")]
        case .ipad: [try await flows.enrollThroughLink(platform: "iOS", product: "iPad16,3")]
        case .mac: [try await flows.enrollThroughLink(platform: "macOS")]
        case .watch: { let (phone, watch) = $0; return [phone, watch] }(try await flows.enrollWatch())
        case .ade: [try await flows.enrollADE(platform: "macOS")]
        case .byod: [try await flows.enrollAccount(.byod)]
        case .adde: [try await flows.enrollAccount(.adde)]
        }
    }
}

struct Demo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "One device per flow, each step printed as it happens.",
        discussion: "Examples:\n  orchard-sim demo\n  orchard-sim demo --flow watch --flow ade")
    @OptionGroup var connection: Connection
    @Option(name: .customLong("flow"), help: "Only these flows (repeat): \(Flow.allCases.map(\.rawValue).joined(separator: ", ")).")
    var only: [Flow] = []

    func run() async throws {
        let environment = try connection.environment()
        let flows = try await EnrollmentFlows(environment: environment, narrator: Narrator(enabled: true))
        var summary: [(Flow, String)] = []
        for flow in only.isEmpty ? Flow.allCases : only {
            say("\n▶ \(flow.title)")
            do {
                let devices = try await flow.run(flows)
                // The bearer on every request: revoked, the device signs in again and carries on (REFERENCE §5.7).
                if flow == .byod, let device = devices.first { try await flows.revokeAndSignInAgain(device) }
                summary.append((flow, "enrolled: " + devices.map(\.label).joined(separator: ", ")))
            } catch {
                say("  ✗ \(error)")
                summary.append((flow, "failed: \(error)"))
            }
        }
        say("\nSummary")
        for (flow, outcome) in summary { say("  \(flow.rawValue.padding(toLength: 6, withPad: " ", startingAt: 0)) \(outcome)") }
        say("\nSee them: orchardctl devices list   ·   orchardctl ade devices   ·   orchardctl activity --limit 40")
        if summary.contains(where: { $0.1.hasPrefix("failed") }) { throw SimulatorError("a flow failed") }
    }
}

/// Written at once (the flows' narration is unbuffered too, so lines stay in order).
func say(_ text: String) { FileHandle.standardOutput.write(Data((text + "\n").utf8)) }

/// An error in one line: what a person can act on.
func describe(_ error: any Error) -> String {
    var text = "\(error)", hint = ""
    // The admin API's refusal (AdminClient.expect): "GET /path → 503 {…}".
    let refusal = error as NSError
    if refusal.domain == "admin" {
        text = refusal.localizedDescription
        if refusal.code == 503 { hint = " (the stack is not ready: retry shortly)" }
    }
    if text.contains("connectionRefused") || text.contains("Connection refused") { return "cannot reach the stack: connection refused (is it running?)" }
    let line = text.split(separator: "\n").first.map(String.init) ?? text
    return (line.count > 300 ? String(line.prefix(300)) + "…" : line) + hint
}
