/// Property lists no honest device sends, for the hostile-input tests.
public enum HostilePlists {
    /// The 52-byte request from the hardening issue: a binary plist whose root is a set (it crashed the gateway).
    public static let setRoot = hexBytes("62706c6973743030c1015161000000080000000a000000000000040100000000000000020000000000000000000000000000000c")

    public static func hexBytes(_ text: String) -> [UInt8] {
        var bytes: [UInt8] = []
        var index = text.startIndex
        while index < text.endIndex {
            let next = text.index(index, offsetBy: 2)
            bytes.append(UInt8(text[index..<next], radix: 16)!)
            index = next
        }
        return bytes
    }
}

/// Writes binary plists object by object, for documents Foundation would never write.
public struct BinaryPlistBuilder {
    public var objects: [[UInt8]] = []

    public init() {}

    /// An ASCII string (a length of 15 or more follows the marker as a two-byte integer).
    public mutating func add(ascii: String) -> Int {
        let count = ascii.utf8.count
        precondition(count < 1 << 16)
        let header: [UInt8] = count < 15 ? [0x50 | UInt8(count)] : [0x5F, 0x11, UInt8(count >> 8), UInt8(count & 0xFF)]
        objects.append(header + Array(ascii.utf8))
        return objects.count - 1
    }

    /// A command result (`UDID`, `Status`, `CommandUUID`) whose `Bomb` key is `levels` levels of `width`-way shared
    /// arrays over one string of `leafBytes` bytes: a few hundred bytes that stand for `width^levels` copies of the
    /// string (the hardening issue's 798-byte result: 8 levels, 4 ways, 400 bytes).
    public static func sharedReferenceResult(udid: String, commandUUID: String, levels: Int = 8, width: Int = 4,
                                             leafBytes: Int = 400) -> [UInt8] {
        var b = BinaryPlistBuilder()
        var level = b.add(ascii: String(repeating: "A", count: leafBytes))
        for _ in 0..<levels { level = b.add(marker: 0xA0 | UInt8(width), refs: Array(repeating: level, count: width)) }
        let keys = ["UDID", "Status", "CommandUUID", "Bomb"].map { b.add(ascii: $0) }
        let values = [b.add(ascii: udid), b.add(ascii: "Acknowledged"), b.add(ascii: commandUUID), level]
        let root = b.add(marker: 0xD4, refs: keys + values)
        return b.document(top: root)
    }

    /// A container: `marker` carries the type and count (counts under 15); references are two bytes.
    public mutating func add(marker: UInt8, refs: [Int]) -> Int {
        var bytes = [marker]
        if marker & 0xF == 0xF { bytes += [0x11, UInt8(refs.count >> 8), UInt8(refs.count & 0xFF)] }
        for r in refs { bytes += [UInt8(r >> 8), UInt8(r & 0xFF)] }
        objects.append(bytes)
        return objects.count - 1
    }

    public func document(top: Int) -> [UInt8] {
        var out = Array("bplist00".utf8)
        var offsets: [Int] = []
        for o in objects { offsets.append(out.count); out += o }
        let table = out.count
        for o in offsets { out += [UInt8(o >> 24 & 0xFF), UInt8(o >> 16 & 0xFF), UInt8(o >> 8 & 0xFF), UInt8(o & 0xFF)] }
        out += [0, 0, 0, 0, 0, 0, 4, 2]
        for value in [objects.count, top, table] { out += (0..<8).reversed().map { UInt8(truncatingIfNeeded: value >> ($0 * 8)) } }
        return out
    }
}

public struct SplitMix64 {
    var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
