import Foundation
import XCTest

/// Deploy/scripts/check-folders.py: the services as they are pass; a service with a folder cycle, or with SQL outside
/// `Storage/`, fails with the folders and files named.
final class FolderRulesTests: XCTestCase {
    static let script = DeployTests.root.appendingPathComponent("Deploy/scripts/check-folders.py").path

    func run(_ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", Self.script] + arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    /// A service tree in a temporary folder: path → source.
    func service(_ files: [String: String]) throws -> URL {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("orchard-folders-\(UUID().uuidString)")
        for (path, source) in files {
            let url = root.appendingPathComponent("Services/Demo").appendingPathComponent(path)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try source.write(to: url, atomically: true, encoding: .utf8)
        }
        addTeardownBlock { try? FileManager.default.removeItem(at: root) }
        return root.appendingPathComponent("Services")
    }

    func testTheServicesFollowTheRules() throws {
        let (status, output) = try run([])
        XCTAssertEqual(status, 0, output)
        XCTAssertTrue(output.contains("no folder cycles, no SQL outside Storage/"), output)
    }

    func testAFolderCycleFails() throws {
        let layered = try service([
            "Storage/Store.swift": "enum Store { static func f() {} }\n",
            "Routes/Routes.swift": "struct Routes { func g() { Store.f(); _ = Handler() } }\n",
            "Handlers/Handler.swift": "struct Handler { func h() { Store.f() } }\n",
            "main.swift": "_ = Routes()\n",
        ])
        XCTAssertEqual(try run([layered.path]).status, 0)
        // The handler now names a route type: Routes → Handlers → Routes.
        let cyclic = try service([
            "Storage/Store.swift": "enum Store { static func f() {} }\n",
            "Routes/Routes.swift": "struct Routes { func g() { Store.f(); _ = Handler() } }\n",
            "Handlers/Handler.swift": "struct Handler { func h() { _ = Routes() } }\n",
            "main.swift": "_ = Routes()\n",
        ])
        let (status, output) = try run([cyclic.path])
        XCTAssertEqual(status, 1, output)
        XCTAssertTrue(output.contains("folder cycle in"), output)
        XCTAssertTrue(output.contains("Handlers -> Routes") && output.contains("names Routes"), output)
        // A folder that uses the composition root (a type declared at the top level) is a cycle too.
        let root = try service([
            "Config.swift": "struct Config {}\n",
            "Routes/Routes.swift": "struct Routes { let c: Config }\n",
            "main.swift": "_ = Routes(c: Config())\n",
        ])
        XCTAssertEqual(try run([root.path]).status, 1)
        // A nested type of the same name elsewhere (an `Outcome` in two folders) is no edge.
        let nested = try service([
            "A/A.swift": "struct A { enum Outcome { case x } }\n",
            "B/B.swift": "struct B { enum Outcome { case y }; let a: A }\n",
        ])
        XCTAssertEqual(try run([nested.path]).status, 0)
    }

    func testSQLOutsideStorageFails() throws {
        let tree = try service([
            "Storage/Store.swift": "enum Store { static let q = \"SELECT id FROM t WHERE x = $1\" }\n",
            "Routes/Routes.swift": "struct Routes {\n    let q = \"\"\"\n        UPDATE devices SET name = $1\n        \"\"\"\n}\n",
        ])
        let (status, output) = try run([tree.path])
        XCTAssertEqual(status, 1, output)
        XCTAssertTrue(output.contains("SQL outside Storage/") && output.contains("Routes/Routes.swift:3"), output)
        XCTAssertFalse(output.contains("Storage/Store.swift"), output)
    }
}
