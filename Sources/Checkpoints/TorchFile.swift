import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A file of tensors: a safetensors file or a PyTorch checkpoint.
public protocol TensorFile: AnyObject, Sendable {
    var path: String { get }
    /// Tensors in data order.
    var tensors: [TensorInfo] { get }
    /// String metadata (safetensors' `__metadata__`; for PyTorch files, the format).
    var metadata: [String: String] { get }
    /// Converts a tensor to fp32 into `destination` (`info.count` values).
    func convert(_ info: TensorInfo, into destination: UnsafeMutablePointer<Float>) throws(CheckpointError)
    /// Copies a tensor's elements as stored (`info.count × info.dtype.size` bytes, C order) into `destination`.
    func copyStored(_ info: TensorInfo, into destination: UnsafeMutableRawPointer) throws(CheckpointError)
}

/// A read-only memory map of a whole file.
final class MappedFile: @unchecked Sendable {
    let path: String
    let size: Int
    private let base: UnsafeMutableRawPointer?

    init(path: String) throws(CheckpointError) {
        self.path = path
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw .unreadable(path: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        var status = stat()
        guard fstat(fd, &status) == 0 else { throw .unreadable(path: path, reason: String(cString: strerror(errno))) }
        guard (status.st_mode & S_IFMT) == S_IFREG else { throw .unreadable(path: path, reason: "not a regular file") }
        size = Int(status.st_size)
        guard size > 0 else {
            base = nil
            return
        }
        guard let mapped = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), mapped != MAP_FAILED else {
            throw .unreadable(path: path, reason: "mmap failed: \(String(cString: strerror(errno)))")
        }
        base = mapped
    }

    deinit { if let base { munmap(base, size) } }

    /// The whole file (valid while `self` lives).
    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: base == nil ? 0 : size) }

    /// Drops the mapped pages wholly inside `raw` from the resident set once they have been converted, so a loaded
    /// model holds its weights once (as fp32), not twice.
    func release(_ raw: UnsafeRawBufferPointer) {
        guard let start = raw.baseAddress, raw.count > 0 else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let first = (Int(bitPattern: start) + page - 1) / page * page
        let last = (Int(bitPattern: start) + raw.count) / page * page
        guard last > first, let pointer = UnsafeMutableRawPointer(bitPattern: first) else { return }
        _ = madvise(pointer, last - first, Int32(MADV_DONTNEED))
    }
}

/// Element conversion to fp32, shared by every file format.
enum FloatConversion {
    static func convert(
        _ raw: UnsafeRawBufferPointer, dtype: TensorDType, count n: Int, into destination: UnsafeMutablePointer<Float>
    ) -> Bool {
        switch dtype {
        case .F32:
            if n > 0 { memcpy(destination, raw.baseAddress!, n * 4) }
        case .F64:
            for i in 0..<n { destination[i] = Float(raw.loadUnaligned(fromByteOffset: 8 * i, as: Double.self)) }
        case .F16:
            for i in 0..<n {
                destination[i] = Float(Float16(bitPattern: raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))
            }
        case .BF16:
            for i in 0..<n {
                destination[i] = Float(
                    bitPattern: UInt32(raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) << 16)
            }
        default:
            return false
        }
        return true
    }
}

/// A PyTorch checkpoint read without running it: the `torch.save` zip format (PyTorch ≥ 1.6) or the legacy format
/// (`_use_new_zipfile_serialization=False`), unpickled by `RestrictedUnpickler`, tensors read from the memory-mapped
/// file.
///
/// The weights are the state dict found in the file: the top-level dict when its values are tensors (a Hugging Face
/// `pytorch_model.bin`), else the first of `model` (nanoGPT, fairseq), `state_dict`, `model_state_dict`, `module`,
/// `state.model` (Composer) that holds tensors. The prefixes `torch.compile` and DDP add (`_orig_mod.`, `module.`)
/// are removed. What else the file carries (nanoGPT's `model_args` and `iter_num`, fairseq's `cfg` or `args`) is
/// kept in `extras`.
public final class TorchFile: TensorFile, @unchecked Sendable {
    /// The legacy format's first pickle, `0x1950a86a20f9469cfc6c` as a little-endian LONG1.
    static let legacyMagic: [UInt8] = [0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19]

    public let path: String
    public let tensors: [TensorInfo]
    public let metadata: [String: String]
    /// Non-tensor values of the file, by top-level key, as JSON-like values (numbers, strings, dicts, lists).
    public let extras: [String: TorchExtra]
    private let file: MappedFile
    private let layouts: [String: Layout]

    struct Layout {
        /// Absolute byte offset of the storage's first element in the file.
        var storageStart: Int
        var tensor: TorchTensorReference
        var isContiguous: Bool {
            var expected = 1
            for (size, stride) in zip(tensor.shape, tensor.strides).reversed() where size != 1 {
                if stride != expected { return false }
                expected *= size
            }
            return true
        }
    }

    public init(path: String) throws(CheckpointError) {
        self.path = path
        file = try MappedFile(path: path)
        let bytes = file.bytes
        var storageStarts: [String: Int] = [:]
        let root: PickleValue
        var format: String
        if ZipDirectory.isZip(bytes) {
            format = "torch-zip"
            let zip = try ZipDirectory(bytes, path: path)
            guard
                let pickle = zip.entries.values.filter({ $0.name.hasSuffix("data.pkl") }).min(by: { $0.name < $1.name })
            else { throw .badHeader(path: path, offset: 0, reason: "a zip without data.pkl is not a torch.save file") }
            let prefix = String(pickle.name.dropLast("data.pkl".count))
            if let order = zip.entries[prefix + "byteorder"] {
                let text = String(
                    decoding: UnsafeRawBufferPointer(rebasing: bytes[order.dataOffset..<order.dataOffset + order.size]),
                    as: UTF8.self)
                guard text == "little" else {
                    throw .badHeader(
                        path: path, offset: order.dataOffset, reason: "big-endian zip storages are not read")
                }
            }
            guard pickle.method == 0 else {
                throw .badHeader(path: path, offset: pickle.dataOffset, reason: "data.pkl is compressed in the zip")
            }
            var unpickler = RestrictedUnpickler(
                UnsafeRawBufferPointer(rebasing: bytes[..<(pickle.dataOffset + pickle.size)]), at: pickle.dataOffset,
                path: path)
            root = try unpickler.load()
            for (key, storage) in unpickler.storages {
                guard let entry = zip.entries[prefix + "data/" + key] else {
                    throw .badHeader(
                        path: path, offset: pickle.dataOffset, reason: "storage '\(key)' is not in the zip")
                }
                guard entry.method == 0 else {
                    throw .badHeader(
                        path: path, offset: entry.dataOffset, reason: "storage '\(key)' is compressed in the zip")
                }
                let (needed, overflow) = storage.count.multipliedReportingOverflow(by: storage.dtype.size)
                guard !overflow, entry.size >= needed else {
                    throw .badTensor(
                        path: path, tensor: key, offset: entry.dataOffset,
                        reason: "storage declares \(storage.count) \(storage.dtype.rawValue) elements but holds "
                            + "\(entry.size) bytes")
                }
                storageStarts[key] = entry.dataOffset
            }
        } else {
            format = "torch-legacy"
            var unpickler = RestrictedUnpickler(bytes, path: path)
            let first: PickleValue
            do { first = try unpickler.load() } catch {
                guard case .badHeader(_, let offset, let reason) = error else { throw error }
                throw .badHeader(
                    path: path, offset: offset,
                    reason: "neither a zip (torch.save since PyTorch 1.6) nor a legacy torch.save file: \(reason)")
            }
            guard case .bytes(let magic) = first, magic == Self.legacyMagic else {
                throw .badHeader(
                    path: path, offset: 0,
                    reason: "neither a zip (torch.save since PyTorch 1.6) nor a legacy torch.save file")
            }
            guard case .int(1001) = try unpickler.load() else {
                throw .badHeader(path: path, offset: unpickler.position, reason: "legacy protocol version is not 1001")
            }
            let system = try unpickler.load()
            if case .bool(false)? = system.entries?["little_endian"] {
                throw .badHeader(path: path, offset: unpickler.position, reason: "big-endian files are not read")
            }
            root = try unpickler.load()
            var keysReader = RestrictedUnpickler(bytes, at: unpickler.position, path: path)
            let keys = (try keysReader.load()).items?.compactMap(\.string) ?? []
            var offset = keysReader.position
            for key in keys {
                guard offset + 8 <= bytes.count else {
                    throw .truncated(path: path, expectedBytes: offset + 8, actualBytes: bytes.count)
                }
                let declared = Int(
                    truncatingIfNeeded: bytes.loadUnaligned(fromByteOffset: offset, as: Int64.self).littleEndian)
                guard let storage = unpickler.storages[key], declared == storage.count else {
                    throw .badTensor(
                        path: path, tensor: key, offset: offset, reason: "storage size does not match its declaration")
                }
                storageStarts[key] = offset + 8
                let (length, overflow) = declared.multipliedReportingOverflow(by: storage.dtype.size)
                guard !overflow, length <= bytes.count - offset - 8 else {
                    throw .badTensor(
                        path: path, tensor: key, offset: offset,
                        reason:
                            "storage declares \(declared) \(storage.dtype.rawValue) elements, more than the file holds")
                }
                offset += 8 + length
                guard offset <= bytes.count else {
                    throw .truncated(path: path, expectedBytes: offset, actualBytes: bytes.count)
                }
            }
            for key in unpickler.storages.keys where storageStarts[key] == nil {
                throw .badTensor(path: path, tensor: key, offset: offset, reason: "storage data is missing")
            }
        }
        let (weights, source) = Self.stateDict(root)
        guard !weights.isEmpty else {
            throw .notFound(
                path: path,
                reason: "no state dict of tensors in this file (looked at the top level and under model, state_dict, "
                    + "model_state_dict, module, state.model)")
        }
        var infos: [TensorInfo] = []
        var layouts: [String: Layout] = [:]
        for (name, tensor) in weights {
            guard let start = storageStarts[tensor.storage.key] else {
                throw .badTensor(path: path, tensor: name, offset: nil, reason: "its storage has no data")
            }
            let size = tensor.storage.dtype.size
            let count = tensor.shape.reduce(1, *)
            // Elements from the first to the last the view reaches; none when a dimension is 0 (a [0, 5] view spans
            // nothing — counting its -1 step made a range that ended before it began: found by fuzzing).
            let span = count == 0 ? 0 : zip(tensor.shape, tensor.strides).reduce(1) { $0 + ($1.0 - 1) * $1.1 }
            let begin = start + tensor.offset * size
            infos.append(
                TensorInfo(
                    name: name, dtype: tensor.storage.dtype, shape: tensor.shape,
                    dataOffsets: begin..<begin + span * size))
            layouts[name] = Layout(storageStart: start, tensor: tensor)
        }
        tensors = infos
        self.layouts = layouts
        metadata = ["format": format, "state_dict": source]
        var extras: [String: TorchExtra] = [:]
        var budget = TorchExtra.maximumValues
        for (key, value) in root.entries?.pairs ?? [] {
            guard let key = key.string, let extra = TorchExtra(value, depth: 0, budget: &budget) else { continue }
            extras[key] = extra
        }
        self.extras = extras
    }

    /// Where the weights are: the first candidate dict holding tensors, with prefixes removed.
    static func stateDict(_ root: PickleValue) -> (weights: [(String, TorchTensorReference)], source: String) {
        func tensors(_ value: PickleValue?) -> [(String, TorchTensorReference)] {
            guard let dict = value?.entries else { return [] }
            var found: [(String, TorchTensorReference)] = []
            for (key, item) in dict.pairs {
                if let name = key.string, case .tensor(let tensor) = item { found.append((name, tensor)) }
            }
            return found
        }
        var candidates: [(String, PickleValue?)] = [("top level", root)]
        for key in ["model", "state_dict", "model_state_dict", "module"] {
            candidates.append((key, root.entries?[key]))
        }
        candidates.append(("state.model", root.entries?["state"]?.entries?["model"]))
        for (source, value) in candidates {
            var found = tensors(value)
            // Only a dict that is mostly tensors is a state dict (the top level of nanoGPT's file also holds one
            // tensor, best_val_loss).
            guard found.count > 1 || (found.count == 1 && value?.entries?.pairs.count == 1) else { continue }
            // Composer wraps a Hugging Face model as `model`: its keys start `model.`.
            let prefixes = ["_orig_mod.", "module."] + (source == "state.model" ? ["model."] : [])
            for prefix in prefixes where found.allSatisfy({ $0.0.hasPrefix(prefix) }) {
                found = found.map { (String($0.0.dropFirst(prefix.count)), $0.1) }
            }
            return (found, source)
        }
        return ([], "")
    }

    public func convert(_ info: TensorInfo, into destination: UnsafeMutablePointer<Float>) throws(CheckpointError) {
        let converted = try withElements(info) { raw in
            FloatConversion.convert(raw, dtype: info.dtype, count: info.count, into: destination)
        }
        guard converted else { throw .unsupportedDType(path: path, tensor: info.name, dtype: info.dtype.rawValue) }
    }

    public func copyStored(_ info: TensorInfo, into destination: UnsafeMutableRawPointer) throws(CheckpointError) {
        try withElements(info) { raw in
            if raw.count > 0 { destination.copyMemory(from: raw.baseAddress!, byteCount: raw.count) }
            return true
        }
    }

    /// Runs `body` on the tensor's elements in C order, as stored: the mapped bytes of a contiguous tensor (released
    /// from the resident set when `body` returns true), or a gathered copy of a strided view's.
    @discardableResult
    private func withElements(_ info: TensorInfo, _ body: (UnsafeRawBufferPointer) -> Bool) throws(CheckpointError)
        -> Bool
    {
        guard let layout = layouts[info.name] else { throw .missingTensor(path: path, tensor: info.name) }
        let size = info.dtype.size
        if layout.isContiguous {
            let start = info.dataOffsets.lowerBound
            let raw = UnsafeRawBufferPointer(rebasing: file.bytes[start..<start + info.count * size])
            let done = body(raw)
            if done { file.release(raw) }
            return done
        }
        // A strided view: copy its elements in C order first.
        var gathered: [UInt8] = []
        gathered.reserveCapacity(info.count * size)
        let shape = layout.tensor.shape, strides = layout.tensor.strides
        var index = [Int](repeating: 0, count: shape.count)
        let all = file.bytes
        for _ in 0..<info.count {
            var element = layout.tensor.offset
            for axis in 0..<shape.count { element += index[axis] * strides[axis] }
            let at = layout.storageStart + element * size
            gathered.append(contentsOf: UnsafeRawBufferPointer(rebasing: all[at..<at + size]))
            var axis = shape.count - 1
            while axis >= 0 {
                index[axis] += 1
                if index[axis] < shape[axis] { break }
                index[axis] = 0
                axis -= 1
            }
        }
        return gathered.withUnsafeBytes(body)
    }
}

/// A non-tensor value of a PyTorch checkpoint (`model_args`, `iter_num`, fairseq's `cfg`), as plain data.
public indirect enum TorchExtra: Sendable, Hashable {
    case null
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case list([TorchExtra])
    case dict([String: TorchExtra])

    /// The most values read into extras from one file: a value shared many times over (a list of the same list,
    /// nested) is walked once per reference, so a small pickle could otherwise describe billions.
    static let maximumValues = 1 << 20

    /// Plain data of `value`, `nil` for tensors, anything deeper than 32 levels, and anything past `budget` values.
    init?(_ value: PickleValue, depth: Int, budget: inout Int) {
        budget -= 1
        guard depth < 32, budget >= 0 else { return nil }
        switch value {
        case .none: self = .null
        case .bool(let flag): self = .bool(flag)
        case .int(let number): self = .int(number)
        case .float(let number): self = .double(number)
        case .string(let text): self = .string(text)
        case .tuple, .list:
            self = .list((value.items ?? []).compactMap { TorchExtra($0, depth: depth + 1, budget: &budget) })
        case .object(let module, _, let fields) where module.hasPrefix("omegaconf"):
            // An omegaconf container keeps its entries in `_content`, a value node its value in `_val`.
            guard let inner = fields["_content"] ?? fields["_val"] else { return nil }
            self.init(inner, depth: depth + 1, budget: &budget)
        case .dict(let dict), .object(_, _, let dict):
            var entries: [String: TorchExtra] = [:]
            for (key, item) in dict.pairs {
                guard let name = key.string ?? key.int.map(String.init),
                    let extra = TorchExtra(item, depth: depth + 1, budget: &budget)
                else { continue }
                entries[name] = extra
            }
            self = .dict(entries)
        case .marker(let name): self = .string(name)
        case .bytes, .global, .tensor, .storage: return nil
        }
    }

    /// The value as `JSONSerialization` objects (for a config dict carried inside a checkpoint).
    public var jsonObject: Any {
        switch self {
        case .null: NSNull()
        case .bool(let flag): flag
        case .int(let number): number
        case .double(let number): number
        case .string(let text): text
        case .list(let items): items.map(\.jsonObject)
        case .dict(let entries): entries.mapValues(\.jsonObject)
        }
    }

    public subscript(key: String) -> TorchExtra? {
        if case .dict(let entries) = self { return entries[key] }
        return nil
    }

    public var int: Int? {
        switch self {
        case .int(let value): value
        case .bool(let flag): flag ? 1 : 0
        default: nil
        }
    }

    public var bool: Bool? {
        switch self {
        case .bool(let flag): flag
        case .int(let value): value != 0
        default: nil
        }
    }

    public var string: String? {
        if case .string(let text) = self { return text }
        return nil
    }

    public var double: Double? {
        switch self {
        case .double(let value): value
        case .int(let value): Double(value)
        default: nil
        }
    }
}
