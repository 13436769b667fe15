import ArgumentParser
import Foundation

/// orchardctl: the operator's tool for Orchard's admin API (docs/openapi.yaml). It only calls the API.
@main
struct OrchardCtl: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "orchardctl",
        abstract: "Operate an Orchard server through its admin API.",
        discussion: """
            The server and key: --url and --api-key, or ORCHARD_URL and ORCHARD_API_KEY,
            or the config file ./Deploy/run-local.sh writes (.orchard/local/orchardctl.json
            and ~/.config/orchard/orchardctl.json). Tables by default, --json for scripts.
            A refusal exits 1 with the server's message.

            Examples:
              orchardctl devices list
              orchardctl devices command <udid> --type DeviceLock --message "Lost"
              orchardctl activity --follow
              orchardctl --generate-completion-script bash > orchardctl.bash
            """,
        subcommands: [PushCertificateCommand.self, LinksCommand.self, DevicesCommand.self, CommandsCommand.self,
                      DeclarationsCommand.self, WatchCommand.self, AppsCommand.self, ABMCommand.self, ADECommand.self, DomainsCommand.self,
                      UsersCommand.self, APIKeysCommand.self, ActivityCommand.self, HealthCommand.self])

    static func main() async {
        var command: any ParsableCommand
        do {
            command = try parseAsRoot(globalOptionsLast(Array(CommandLine.arguments.dropFirst())))
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
            FileHandle.standardError.write(Data("orchardctl: \(error)\n".utf8))
            Foundation.exit(1)
        }
    }

    /// `--url`, `--api-key` and `--json` are every command's own options; written before the command
    /// (`orchardctl --json devices list`), they are moved after it, where the parser expects them.
    static func globalOptionsLast(_ arguments: [String]) -> [String] {
        var leading: [String] = [], rest = arguments[...]
        while let first = rest.first, first.hasPrefix("--") {
            let name = first.split(separator: "=", maxSplits: 1).first.map(String.init) ?? first
            guard ["--url", "--api-key", "--json"].contains(name) else { break }
            leading.append(first)
            rest = rest.dropFirst()
            if name != "--json", !first.contains("="), let value = rest.first {
                leading.append(value)
                rest = rest.dropFirst()
            }
        }
        return Array(rest) + leading
    }
}
