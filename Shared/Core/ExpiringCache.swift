import Foundation
import Synchronization

/// A bounded map whose entries expire; when full, expired entries go first, then everything (a cache, not a store,
/// so a flood of new keys empties it rather than growing it).
public final class ExpiringCache<Value: Sendable>: Sendable {
    private let entries = Mutex<[String: (value: Value, until: Date)]>([:])
    private let capacity: Int

    public init(capacity: Int) { self.capacity = max(1, capacity) }

    public func get(_ key: String) -> Value? {
        entries.withLock { entries in
            guard let entry = entries[key] else { return nil }
            if entry.until > Date() { return entry.value }
            entries[key] = nil
            return nil
        }
    }

    public func set(_ key: String, _ value: Value, for seconds: TimeInterval) {
        entries.withLock { entries in
            if entries.count >= capacity {
                let now = Date()
                entries = entries.filter { $0.value.until > now }
                if entries.count >= capacity { entries.removeAll(keepingCapacity: true) }
            }
            entries[key] = (value, Date().addingTimeInterval(seconds))
        }
    }

    public func remove(_ key: String) { _ = entries.withLock { $0.removeValue(forKey: key) } }

    public func removeAll(where match: (Value) -> Bool) {
        entries.withLock { entries in entries = entries.filter { !match($0.value.value) } }
    }
}
