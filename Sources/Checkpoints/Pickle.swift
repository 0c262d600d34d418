import Foundation

/// A value built by the restricted unpickler. Lists, dicts and objects are references, as in Python, so a value
/// memoized before it is filled sees what is appended later. Every container (tuples too) is an object whose release
/// never recurses (`PickleGraveyard`): a pickle can nest values a million levels deep in a few megabytes.
indirect enum PickleValue {
    case none
    case bool(Bool)
    case int(Int)
    case float(Double)
    case string(String)
    case bytes([UInt8])
    case tuple(PickleTuple)
    case list(PickleList)
    case dict(PickleDict)
    /// An allowed global, not yet called (a class or a rebuild function).
    case global(module: String, name: String)
    /// An instance of an allowed data class (`argparse.Namespace`, omegaconf configs): its fields.
    case object(module: String, name: String, fields: PickleDict)
    /// A tensor: its storage, offset, shape and strides (in elements).
    case tensor(TorchTensorReference)
    /// A storage reference from a persistent id.
    case storage(TorchStorageReference)
    /// A torch dtype or other marker whose value does not matter here.
    case marker(String)

    var string: String? {
        if case .string(let text) = self { return text }
        return nil
    }

    var int: Int? {
        switch self {
        case .int(let value): value
        case .bool(let flag): flag ? 1 : 0
        default: nil
        }
    }

    /// The items of a tuple or list.
    var items: [PickleValue]? {
        switch self {
        case .tuple(let tuple): tuple.items
        case .list(let list): list.items
        default: nil
        }
    }

    /// The string-keyed entries of a dict or an object's fields.
    var entries: PickleDict? {
        switch self {
        case .dict(let dict): dict
        case .object(_, _, let fields): fields
        default: nil
        }
    }
}

/// Where the containers of one pickle go when they are released. Swift releases nested values recursively, so a
/// tuple nested 30,818 levels deep (31 KB of `TUPLE1` opcodes, found by fuzzing) overflowed the stack when it was
/// dropped. Here a container's `deinit` hands its items to the graveyard instead of releasing them, and the outermost
/// release drains the graveyard in a loop: however deep the value, a release goes one `deinit` deep.
///
/// One graveyard serves one unpickler's values, which live on one thread at a time (they are not `Sendable`).
final class PickleGraveyard {
    private var pending: [PickleValue] = []
    private var draining = false

    /// Takes `values` (emptied, so the caller's reference is gone before any of them is released) and releases them
    /// one at a time, unless a release further out is already doing so.
    func bury(_ values: inout [PickleValue]) {
        pending.append(contentsOf: values)
        values = []
        guard !draining else { return }
        draining = true
        while !pending.isEmpty {
            // Released here; a container among them calls `bury` again, which only appends.
            _ = pending.removeLast()
        }
        pending = []
        draining = false
    }
}

final class PickleTuple {
    private(set) var items: [PickleValue]
    private let graveyard: PickleGraveyard

    init(_ items: [PickleValue], _ graveyard: PickleGraveyard) {
        self.items = items
        self.graveyard = graveyard
    }

    deinit { graveyard.bury(&items) }
}

final class PickleList {
    var items: [PickleValue]
    private let graveyard: PickleGraveyard

    init(_ items: [PickleValue] = [], _ graveyard: PickleGraveyard) {
        self.items = items
        self.graveyard = graveyard
    }

    deinit { graveyard.bury(&items) }
}

final class PickleDict {
    /// In insertion order (an OrderedDict's order is the state dict's).
    var pairs: [(key: PickleValue, value: PickleValue)] = []
    private let graveyard: PickleGraveyard

    init(_ graveyard: PickleGraveyard) { self.graveyard = graveyard }

    subscript(key: String) -> PickleValue? {
        pairs.last { $0.key.string == key }?.value
    }

    deinit {
        var values = pairs.flatMap { [$0.key, $0.value] }
        pairs = []
        graveyard.bury(&values)
    }
}

/// A storage as `torch.save` names it in a persistent id: its key, element type and number of elements.
struct TorchStorageReference: Hashable {
    var key: String
    var dtype: TensorDType
    var count: Int
}

/// A tensor over (part of) a storage.
struct TorchTensorReference {
    var storage: TorchStorageReference
    var offset: Int
    var shape: [Int]
    var strides: [Int]
}

/// An unpickler for checkpoint files that executes nothing: it builds data from the pickle opcodes of protocols
/// 0–5 that data needs, and accepts only the globals that build data (the tensor rebuild functions, storage
/// types, `OrderedDict`, `argparse.Namespace`, omegaconf containers, torch dtypes). Any other global is refused
/// with its module and name before anything else happens; nothing is ever imported or called.
///
/// Every length read from the file is checked against the bytes left before anything is allocated; the mark
/// stack, the value stack and the memo are bounded, so a hostile file cannot exhaust memory or the stack.
package struct RestrictedUnpickler {
    static let maximumStack = 1 << 20
    static let maximumMarks = 10_000
    static let maximumMemo = 1 << 22

    /// The globals that build data. Storage types map to their element type.
    static let storageTypes: [String: TensorDType] = [
        "FloatStorage": .F32, "HalfStorage": .F16, "BFloat16Storage": .BF16, "DoubleStorage": .F64,
        "LongStorage": .I64, "IntStorage": .I32, "ShortStorage": .I16, "CharStorage": .I8, "ByteStorage": .U8,
        "BoolStorage": .BOOL,
    ]
    static let allowed: Set<String> = [
        "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_tensor", "torch._utils._rebuild_parameter",
        "torch._utils._rebuild_parameter_with_state", "collections.OrderedDict", "argparse.Namespace",
        "builtins.set", "builtins.frozenset", "builtins.slice", "__builtin__.set", "torch.Size",
        "omegaconf.dictconfig.DictConfig", "omegaconf.listconfig.ListConfig", "omegaconf.base.ContainerMetadata",
        "omegaconf.base.Metadata", "omegaconf.nodes.AnyNode", "omegaconf.nodes.StringNode",
        "omegaconf.nodes.IntegerNode", "omegaconf.nodes.FloatNode", "omegaconf.nodes.BooleanNode",
        "omegaconf.nodes.EnumNode", "typing.Any", "builtins.dict", "builtins.list", "builtins.int", "builtins.object",
        "torch.device", "collections.defaultdict", "builtins.getattr",
    ]
    static let dtypes: Set<String> = [
        "float32", "float16", "bfloat16", "float64", "int64", "int32", "int16", "int8", "uint8", "bool", "float",
        "half", "double", "long", "int",
    ]

    let bytes: UnsafeRawBufferPointer
    let path: String
    /// Where this unpickler's containers are released (iteratively).
    let graveyard = PickleGraveyard()
    /// Where the pickle ends (the next pickle of a legacy file starts there).
    private(set) var position: Int
    /// Storages named by persistent ids, by key.
    private(set) var storages: [String: TorchStorageReference] = [:]

    /// Reads one pickle from `bytes` and drops it: the fuzz harness's entry (`FuzzTargets`).
    /// - Throws: `CheckpointError` as `load()`.
    package static func check(_ bytes: UnsafeRawBufferPointer, path: String) throws(CheckpointError) {
        var unpickler = RestrictedUnpickler(bytes, path: path)
        _ = try unpickler.load()
    }

    /// The most values `insertable` looks at in one pickle: a pickle whose shared references would take longer to
    /// walk is refused.
    static let maximumVisits = 1 << 24
    private var visits = 0

    /// Refuses `values` going into `container` when one of them holds `container`: Python's pickle can describe a list
    /// that contains itself, which every later walk of the value (and its reference counts) would never finish with.
    private mutating func insertable(_ values: [PickleValue], into container: AnyObject, at offset: Int)
        throws(CheckpointError)
    {
        var seen = Set<ObjectIdentifier>()
        var pending = values
        while let value = pending.popLast() {
            visits += 1
            guard visits <= Self.maximumVisits else {
                throw fail("more than \(Self.maximumVisits) nested references to follow", at: offset)
            }
            let inner: AnyObject
            switch value {
            case .tuple(let tuple):
                pending += tuple.items
                continue
            case .list(let list): inner = list
            case .dict(let dict), .object(_, _, let dict): inner = dict
            default: continue
            }
            guard inner !== container else { throw fail("a list, dict or object that contains itself", at: offset) }
            guard seen.insert(ObjectIdentifier(inner)).inserted else { continue }
            if let list = inner as? PickleList { pending += list.items }
            if let dict = inner as? PickleDict { for pair in dict.pairs { pending += [pair.key, pair.value] } }
        }
    }

    package init(_ bytes: UnsafeRawBufferPointer, at start: Int = 0, path: String) {
        self.bytes = bytes
        self.path = path
        position = start
    }

    private func fail(_ reason: String, at offset: Int? = nil) -> CheckpointError {
        .badHeader(path: path, offset: offset ?? position, reason: "pickle: \(reason)")
    }

    private mutating func take(_ count: Int) throws(CheckpointError) -> UnsafeRawBufferPointer {
        guard count >= 0, count <= bytes.count - position else {
            // Saturating: a length read from the file can be near Int.max (found by fuzzing: the sum trapped).
            let (expected, overflow) = position.addingReportingOverflow(max(count, 0))
            throw .truncated(path: path, expectedBytes: overflow ? Int.max : expected, actualBytes: bytes.count)
        }
        defer { position += count }
        return UnsafeRawBufferPointer(rebasing: bytes[position..<position + count])
    }

    private mutating func byte() throws(CheckpointError) -> UInt8 { try take(1)[0] }

    private mutating func unsigned(_ count: Int) throws(CheckpointError) -> Int {
        let raw = try take(count)
        var value: UInt64 = 0
        for index in (0..<count).reversed() { value = value << 8 | UInt64(raw[index]) }
        guard value <= UInt64(Int.max) else { throw fail("a length of \(value) bytes") }
        return Int(value)
    }

    private mutating func line() throws(CheckpointError) -> String {
        var end = position
        while end < bytes.count, bytes[end] != 0x0A { end += 1 }
        guard end < bytes.count else { throw .truncated(path: path, expectedBytes: end + 1, actualBytes: bytes.count) }
        let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[position..<end]), as: UTF8.self)
        position = end + 1
        return text
    }

    /// A little-endian two's-complement integer of `raw` (LONG1/LONG4); beyond 64 bits it is refused unless it is
    /// the legacy format's magic number, returned as `.bytes`.
    private func long(_ raw: UnsafeRawBufferPointer) throws(CheckpointError) -> PickleValue {
        if raw.isEmpty { return .int(0) }
        if raw.count > 8 { return .bytes(Array(raw)) }
        var value: UInt64 = 0
        for index in (0..<raw.count).reversed() { value = value << 8 | UInt64(raw[index]) }
        if raw.count < 8, raw[raw.count - 1] & 0x80 != 0 { value |= ~UInt64(0) << UInt64(8 * raw.count) }
        return .int(Int(Int64(bitPattern: value)))
    }

    /// Unpickles one pickle; `persistent` turns a persistent id into a value (storages).
    mutating func load() throws(CheckpointError) -> PickleValue {
        var stack: [PickleValue] = []
        var marks: [Int] = []
        var memo: [Int: PickleValue] = [:]
        func pop() throws(CheckpointError) -> PickleValue {
            guard let value = stack.popLast() else { throw fail("the stack is empty") }
            return value
        }
        func popMark() throws(CheckpointError) -> [PickleValue] {
            guard let mark = marks.popLast(), mark <= stack.count else { throw fail("no mark") }
            defer { stack.removeSubrange(mark...) }
            return Array(stack[mark...])
        }
        func push(_ value: PickleValue) throws(CheckpointError) {
            guard stack.count < Self.maximumStack else { throw fail("more than \(Self.maximumStack) values") }
            stack.append(value)
        }
        func remember(_ index: Int) throws(CheckpointError) {
            guard let top = stack.last else { throw fail("nothing to memoize") }
            guard memo.count < Self.maximumMemo || memo[index] != nil else { throw fail("the memo is too large") }
            memo[index] = top
        }
        func recall(_ index: Int) throws(CheckpointError) {
            guard let value = memo[index] else { throw fail("memo entry \(index) was never stored") }
            try push(value)
        }
        while true {
            let at = position
            let opcode = try byte()
            switch opcode {
            case 0x80:  // PROTO
                let version = try byte()
                guard version <= 5 else { throw fail("protocol \(version) is newer than 5", at: at) }
            case 0x95: _ = try take(8)  // FRAME
            case 0x2E:  // STOP
                guard let result = stack.popLast() else { throw fail("STOP with an empty stack", at: at) }
                return result
            case 0x28:  // MARK
                guard marks.count < Self.maximumMarks else {
                    throw fail("nested more than \(Self.maximumMarks) levels deep", at: at)
                }
                marks.append(stack.count)
            case 0x30: _ = try pop()  // POP
            case 0x31: _ = try popMark()  // POP_MARK
            case 0x32:  // DUP
                guard let top = stack.last else { throw fail("DUP of nothing", at: at) }
                try push(top)
            case 0x4E: try push(.none)  // NONE
            case 0x88: try push(.bool(true))  // NEWTRUE
            case 0x89: try push(.bool(false))  // NEWFALSE
            case 0x4A:  // BININT
                try push(.int(Int(Int32(bitPattern: UInt32(try unsigned(4))))))
            case 0x4B: try push(.int(Int(try byte())))  // BININT1
            case 0x4D: try push(.int(try unsigned(2)))  // BININT2
            case 0x8A: try push(try long(try take(Int(try byte()))))  // LONG1
            case 0x8B: try push(try long(try take(try unsigned(4))))  // LONG4
            case 0x49:  // INT (protocol 0)
                let text = try line()
                if text == "01" {
                    try push(.bool(true))
                } else if text == "00" {
                    try push(.bool(false))
                } else {
                    guard let value = Int(text) else { throw fail("INT '\(text.prefix(20))'", at: at) }
                    try push(.int(value))
                }
            case 0x4C:  // LONG (protocol 0)
                let text = try line()
                guard let value = Int(text.hasSuffix("L") ? String(text.dropLast()) : text) else {
                    throw fail("LONG '\(text.prefix(20))'", at: at)
                }
                try push(.int(value))
            case 0x47:  // BINFLOAT
                let raw = try take(8)
                var bits: UInt64 = 0
                for index in 0..<8 { bits = bits << 8 | UInt64(raw[index]) }
                try push(.float(Double(bitPattern: bits)))
            case 0x46:  // FLOAT (protocol 0)
                let text = try line()
                guard let value = Double(text) else { throw fail("FLOAT '\(text.prefix(20))'", at: at) }
                try push(.float(value))
            case 0x58: try push(.string(Self.text(try take(try unsigned(4)))))  // BINUNICODE
            case 0x8C: try push(.string(Self.text(try take(Int(try byte())))))  // SHORT_BINUNICODE
            case 0x8D: try push(.string(Self.text(try take(try unsigned(8)))))  // BINUNICODE8
            case 0x54: try push(.string(Self.text(try take(try unsigned(4)))))  // BINSTRING
            case 0x55: try push(.string(Self.text(try take(Int(try byte())))))  // SHORT_BINSTRING
            case 0x42: try push(.bytes(Array(try take(try unsigned(4)))))  // BINBYTES
            case 0x43: try push(.bytes(Array(try take(Int(try byte())))))  // SHORT_BINBYTES
            case 0x8E, 0x96: try push(.bytes(Array(try take(try unsigned(8)))))  // BINBYTES8, BYTEARRAY8
            case 0x56:  // UNICODE (protocol 0, raw-unicode-escape; plain text is enough for names)
                try push(.string(try line()))
            case 0x53:  // STRING (protocol 0, quoted)
                let text = try line()
                try push(.string(String(text.dropFirst().dropLast())))
            case 0x29: try push(.tuple(PickleTuple([], graveyard)))  // EMPTY_TUPLE
            case 0x74: try push(.tuple(PickleTuple(try popMark(), graveyard)))  // TUPLE
            case 0x85: try push(.tuple(PickleTuple([try pop()], graveyard)))  // TUPLE1
            case 0x86:  // TUPLE2
                let b = try pop(), a = try pop()
                try push(.tuple(PickleTuple([a, b], graveyard)))
            case 0x87:  // TUPLE3
                let c = try pop(), b = try pop(), a = try pop()
                try push(.tuple(PickleTuple([a, b, c], graveyard)))
            case 0x5D: try push(.list(PickleList([], graveyard)))  // EMPTY_LIST
            case 0x6C:  // LIST
                try push(.list(PickleList(try popMark(), graveyard)))
            case 0x7D: try push(.dict(PickleDict(graveyard)))  // EMPTY_DICT
            case 0x64:  // DICT
                let items = try popMark()
                guard items.count % 2 == 0 else { throw fail("DICT with an odd number of items", at: at) }
                let dict = PickleDict(graveyard)
                for index in stride(from: 0, to: items.count, by: 2) {
                    dict.pairs.append((items[index], items[index + 1]))
                }
                try push(.dict(dict))
            case 0x8F: try push(.list(PickleList([], graveyard)))  // EMPTY_SET (kept as a list)
            case 0x90, 0x91:  // ADDITEMS, FROZENSET
                let items = try popMark()
                if opcode == 0x91 {
                    try push(.list(PickleList(items, graveyard)))
                } else {
                    guard case .list(let set)? = stack.last else { throw fail("ADDITEMS to a non-set", at: at) }
                    try insertable(items, into: set, at: at)
                    set.items += items
                }
            case 0x61:  // APPEND
                let value = try pop()
                guard case .list(let list)? = stack.last else { throw fail("APPEND to a non-list", at: at) }
                try insertable([value], into: list, at: at)
                list.items.append(value)
            case 0x65:  // APPENDS
                let items = try popMark()
                guard case .list(let list)? = stack.last else { throw fail("APPENDS to a non-list", at: at) }
                try insertable(items, into: list, at: at)
                list.items += items
            case 0x73:  // SETITEM
                let value = try pop(), key = try pop()
                guard let dict = stack.last?.entries else { throw fail("SETITEM on a non-dict", at: at) }
                try insertable([key, value], into: dict, at: at)
                dict.pairs.append((key, value))
            case 0x75:  // SETITEMS
                let items = try popMark()
                guard items.count % 2 == 0, let dict = stack.last?.entries else {
                    throw fail("SETITEMS on a non-dict or with an odd number of items", at: at)
                }
                try insertable(items, into: dict, at: at)
                for index in stride(from: 0, to: items.count, by: 2) {
                    dict.pairs.append((items[index], items[index + 1]))
                }
            case 0x71: try remember(Int(try byte()))  // BINPUT
            case 0x72: try remember(try unsigned(4))  // LONG_BINPUT
            case 0x94: try remember(memo.count)  // MEMOIZE
            case 0x70:  // PUT (protocol 0)
                let text = try line()
                guard let index = Int(text) else { throw fail("PUT '\(text.prefix(20))'", at: at) }
                try remember(index)
            case 0x68: try recall(Int(try byte()))  // BINGET
            case 0x6A: try recall(try unsigned(4))  // LONG_BINGET
            case 0x67:  // GET (protocol 0)
                let text = try line()
                guard let index = Int(text) else { throw fail("GET '\(text.prefix(20))'", at: at) }
                try recall(index)
            case 0x63:  // GLOBAL
                let module = try line(), name = try line()
                try push(try Self.global(module, name, path: path, at: at))
            case 0x93:  // STACK_GLOBAL
                guard case .string(let name) = try pop(), case .string(let module) = try pop() else {
                    throw fail("STACK_GLOBAL without two strings", at: at)
                }
                try push(try Self.global(module, name, path: path, at: at))
            case 0x52:  // REDUCE
                let arguments = try pop(), callable = try pop()
                try push(try reduce(callable, arguments.items ?? [], at: at))
            case 0x81:  // NEWOBJ
                let arguments = try pop(), callable = try pop()
                try push(try reduce(callable, arguments.items ?? [], at: at))
            case 0x92:  // NEWOBJ_EX
                _ = try pop()
                let arguments = try pop(), callable = try pop()
                try push(try reduce(callable, arguments.items ?? [], at: at))
            case 0x62:  // BUILD
                let state = try pop()
                guard let target = stack.last else { throw fail("BUILD of nothing", at: at) }
                try build(target, state, at: at)
            case 0x51:  // BINPERSID
                try push(try persistent(try pop(), at: at))
            case 0x50:  // PERSID (protocol 0)
                throw fail("text persistent ids are not used by torch.save", at: at)
            default:
                throw fail(
                    String(format: "opcode 0x%02x is not one data needs (or the file is not a pickle)", opcode), at: at)
            }
        }
    }

    static func text(_ raw: UnsafeRawBufferPointer) -> String { String(decoding: raw, as: UTF8.self) }

    /// An allowed global, or the refusal naming it.
    static func global(_ module: String, _ name: String, path: String, at offset: Int) throws(CheckpointError)
        -> PickleValue
    {
        let qualified = "\(module).\(name)"
        if (module == "torch" || module == "torch.storage") && (storageTypes[name] != nil || name == "UntypedStorage") {
            return .global(module: module, name: name)
        }
        if module == "torch", dtypes.contains(name) { return .marker(qualified) }
        guard allowed.contains(qualified) else {
            throw .forbiddenGlobal(path: path, offset: offset, module: module, name: name)
        }
        return .global(module: module, name: name)
    }

    /// Calls an allowed global on `arguments`, as data: tensors, dicts, objects.
    private mutating func reduce(_ callable: PickleValue, _ arguments: [PickleValue], at offset: Int)
        throws(CheckpointError) -> PickleValue
    {
        guard case .global(let module, let name) = callable else {
            throw fail("REDUCE of something that is not an allowed global", at: offset)
        }
        switch "\(module).\(name)" {
        case "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_tensor":
            guard arguments.count >= 4, case .storage(let storage) = arguments[0], let start = arguments[1].int,
                let shape = arguments[2].items?.compactMap(\.int), let strides = arguments[3].items?.compactMap(\.int),
                shape.count == arguments[2].items?.count, strides.count == shape.count
            else { throw fail("a tensor rebuild with unexpected arguments", at: offset) }
            return .tensor(try Self.tensor(storage, start, shape, strides, path: path, at: offset))
        case "torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state":
            guard let first = arguments.first, case .tensor = first else {
                throw fail("a parameter rebuild without a tensor", at: offset)
            }
            return first
        case "collections.OrderedDict", "builtins.dict", "collections.defaultdict":
            let dict = PickleDict(graveyard)
            if let pairs = arguments.first?.items, "\(module).\(name)" != "collections.defaultdict" {
                for pair in pairs {
                    guard let item = pair.items, item.count == 2 else { continue }
                    dict.pairs.append((item[0], item[1]))
                }
            }
            return .dict(dict)
        case "builtins.set", "builtins.frozenset", "__builtin__.set", "builtins.list":
            return .list(PickleList(arguments.first?.items ?? [], graveyard))
        case "torch.Size": return .tuple(PickleTuple(arguments.first?.items ?? [], graveyard))
        case "torch.device", "builtins.slice", "builtins.int", "builtins.getattr", "typing.Any":
            return .marker("\(module).\(name)")
        default:
            // Data classes (argparse.Namespace, omegaconf nodes): their fields arrive with BUILD.
            return .object(module: module, name: name, fields: PickleDict(graveyard))
        }
    }

    /// BUILD: an object's state (a dict, or `(dict, slots)`) becomes its fields.
    private mutating func build(_ target: PickleValue, _ state: PickleValue, at offset: Int) throws(CheckpointError) {
        guard case .object(_, _, let fields) = target else {
            // Tensors and dicts carry no state that matters here (a tensor's hooks, an OrderedDict's).
            return
        }
        var sources: [PickleValue] = [state]
        if let items = state.items { sources = items }
        for source in sources {
            if let entries = source.entries {
                try insertable(entries.pairs.flatMap { [$0.key, $0.value] }, into: fields, at: offset)
                fields.pairs += entries.pairs
            }
        }
    }

    /// A persistent id: `('storage', storage_type, key, location, numel[, view_metadata])`.
    private mutating func persistent(_ id: PickleValue, at offset: Int) throws(CheckpointError) -> PickleValue {
        guard let parts = id.items, parts.count >= 5, parts[0].string == "storage",
            case .global(_, let typeName) = parts[1], let key = parts[2].string, let count = parts[4].int, count >= 0
        else { throw fail("a persistent id that is not a torch storage", at: offset) }
        guard let dtype = Self.storageTypes[typeName] else {
            throw fail("storage type \(typeName) has no element type (an untyped storage needs a dtype)", at: offset)
        }
        let reference = TorchStorageReference(key: key, dtype: dtype, count: count)
        if let known = storages[key], known != reference {
            throw fail("storage '\(key)' is declared twice, differently", at: offset)
        }
        storages[key] = reference
        return .storage(reference)
    }

    /// A tensor whose every element lies inside its storage.
    static func tensor(
        _ storage: TorchStorageReference, _ offset: Int, _ shape: [Int], _ strides: [Int], path: String,
        at position: Int
    ) throws(CheckpointError) -> TorchTensorReference {
        guard offset >= 0, shape.allSatisfy({ $0 >= 0 }), strides.allSatisfy({ $0 >= 0 }) else {
            throw .badHeader(
                path: path, offset: position, reason: "pickle: a tensor with a negative offset, size or stride")
        }
        var count = 1
        var last = offset
        for (size, stride) in zip(shape, strides) {
            let (product, overflow) = count.multipliedReportingOverflow(by: size)
            let (span, spanOverflow) = (size > 0 ? size - 1 : 0).multipliedReportingOverflow(by: stride)
            guard !overflow, !spanOverflow, product <= Int(Int32.max) * 64 else {
                throw .badHeader(path: path, offset: position, reason: "pickle: a tensor of impossible size \(shape)")
            }
            count = product
            last += span
        }
        guard count == 0 || last < storage.count else {
            throw .badHeader(
                path: path, offset: position,
                reason: "pickle: a tensor \(shape) at offset \(offset) reaches element \(last) of storage "
                    + "'\(storage.key)', which has \(storage.count)")
        }
        return TorchTensorReference(storage: storage, offset: offset, shape: shape, strides: strides)
    }
}
