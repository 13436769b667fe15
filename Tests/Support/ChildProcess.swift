import Foundation

/// A child process (an Orchard executable) that the test can stop gently or kill.
public final class ChildProcess: @unchecked Sendable {
    public let process = Process()
    public let output: URL

    public init(_ executable: String, _ arguments: [String], environment extra: [String: String] = [:]) throws {
        let bin = try TestEnvironment.require("ORCHARD_BIN_DIR")
        process.executableURL = URL(fileURLWithPath: "\(bin)/\(executable)")
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(extra) { $1 }
        output = FileManager.default.temporaryDirectory.appendingPathComponent("orchard-child-\(UUID().uuidString).log")
        FileManager.default.createFile(atPath: output.path, contents: nil)
        let handle = try FileHandle(forWritingTo: output)
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
    }

    deinit { try? FileManager.default.removeItem(at: output) }

    public var log: String { (try? String(contentsOf: output, encoding: .utf8)) ?? "" }

    public func terminate() { process.terminate() }
    public func kill() { Foundation.kill(process.processIdentifier, SIGKILL) }

    public func waitForExit(timeout: TimeInterval = 30) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(50_000) }
        return !process.isRunning
    }
}

/// A TCP port nothing listens on now (the kernel's pick for port 0, released at once).
public func freeTCPPort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw POSIXError(.EMFILE) }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
    }
    guard bound else { throw POSIXError(.EADDRINUSE) }
    return Int(UInt16(bigEndian: address.sin_port))
}
