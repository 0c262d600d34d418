/// A BPE model as `tokenizers` runs it: a word is split into characters (their vocabulary ids, the `<0xXX>` byte
/// tokens with `byte_fallback`, or the unknown token), then adjacent pairs are merged by rank, lowest first and
/// leftmost among equals, until no pair has a merge.
struct BPEModel: Sendable {
    var vocabulary: [String: Int32]
    /// The ids of single-scalar tokens, by scalar value: a word's characters are looked up here without building a
    /// `String` for each.
    var characters: [UInt32: Int32] = [:]
    /// Pair of ids → (rank, id of the merged token).
    var merges: [UInt64: (rank: Int32, id: Int32)]
    var unknown: Int32?
    var fuseUnknown: Bool
    var byteFallback: Bool
    var ignoreMerges: Bool
    /// The ids of `<0x00>`…`<0xFF>`, where the vocabulary has them (`byte_fallback`).
    var byteTokens: [Int32?]

    static func key(_ a: Int32, _ b: Int32) -> UInt64 {
        UInt64(UInt32(bitPattern: a)) << 32 | UInt64(UInt32(bitPattern: b))
    }

    /// The ids of `word`.
    func encode(_ word: String) -> [Int32] {
        if ignoreMerges, let id = vocabulary[word] { return [id] }
        var symbols: [Int32] = []
        var pendingUnknown = false
        for scalar in word.unicodeScalars {
            if let id = characters[scalar.value] {
                if pendingUnknown, let unknown { symbols.append(unknown) }
                pendingUnknown = false
                symbols.append(id)
                continue
            }
            if byteFallback {
                // As tokenizers does, a pending unknown token is not flushed before the byte tokens.
                let bytes = String(scalar).utf8.map { byteTokens[Int($0)] }
                if bytes.allSatisfy({ $0 != nil }) {
                    symbols += bytes.compactMap { $0 }
                    continue
                }
            }
            guard let unknown else { continue }  // no unknown token: the character is dropped, as tokenizers does
            if pendingUnknown && fuseUnknown { continue }
            if pendingUnknown { symbols.append(unknown) }
            pendingUnknown = true
        }
        if pendingUnknown, let unknown { symbols.append(unknown) }
        return merge(symbols)
    }

    /// Merges by rank with a heap of candidate pairs over a linked list of symbols.
    private func merge(_ initial: [Int32]) -> [Int32] {
        guard initial.count > 1 else { return initial }
        var ids = initial
        var next = Array(1...ids.count)  // index of the following live symbol (count: none)
        var previous = Array(-1..<(ids.count - 1))
        var alive = [Bool](repeating: true, count: ids.count)
        var heap = CandidateHeap()
        for i in 0..<(ids.count - 1) {
            if let merge = merges[Self.key(ids[i], ids[i + 1])] {
                heap.push(Candidate(rank: merge.rank, position: i, left: ids[i], right: ids[i + 1]))
            }
        }
        while let candidate = heap.pop() {
            let i = candidate.position
            let j = next[i]
            // Stale: the symbols changed since this pair was queued.
            guard alive[i], j < ids.count, ids[i] == candidate.left, ids[j] == candidate.right,
                let merge = merges[Self.key(ids[i], ids[j])], merge.rank == candidate.rank
            else { continue }
            ids[i] = merge.id
            alive[j] = false
            next[i] = next[j]
            if next[j] < ids.count { previous[next[j]] = i }
            if previous[i] >= 0, let left = merges[Self.key(ids[previous[i]], ids[i])] {
                heap.push(Candidate(rank: left.rank, position: previous[i], left: ids[previous[i]], right: ids[i]))
            }
            if next[i] < ids.count, let right = merges[Self.key(ids[i], ids[next[i]])] {
                heap.push(Candidate(rank: right.rank, position: i, left: ids[i], right: ids[next[i]]))
            }
        }
        var result: [Int32] = []
        var i = 0
        while i < ids.count {
            result.append(ids[i])
            i = next[i]
        }
        return result
    }
}

/// A pair that may merge: lower rank first, then the leftmost.
struct Candidate {
    var rank: Int32
    var position: Int
    var left: Int32
    var right: Int32

    func precedes(_ other: Candidate) -> Bool { (rank, position) < (other.rank, other.position) }
}

/// A binary min-heap of candidates.
struct CandidateHeap {
    private var items: [Candidate] = []

    mutating func push(_ item: Candidate) {
        items.append(item)
        var child = items.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard items[child].precedes(items[parent]) else { break }
            items.swapAt(child, parent)
            child = parent
        }
    }

    mutating func pop() -> Candidate? {
        guard let first = items.first else { return nil }
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            var parent = 0
            while true {
                let (left, right) = (2 * parent + 1, 2 * parent + 2)
                var best = parent
                if left < items.count, items[left].precedes(items[best]) { best = left }
                if right < items.count, items[right].precedes(items[best]) { best = right }
                if best == parent { break }
                items.swapAt(parent, best)
                parent = best
            }
        }
        return first
    }
}
