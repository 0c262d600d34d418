import Foundation

extension Architecture: CustomStringConvertible {
    /// The printable tree, one node a line, with checkpoint scopes in brackets.
    public var description: String {
        var lines = ["\(name) — trained at \(trainedLength) tokens"]
        _ = Walk.visit(layers, expandRepeats: false) { visit in
            let indent = String(repeating: "  ", count: visit.context.depth + 1)
            lines.append(indent + Self.summary(of: visit.layer, width: visit.context.width))
        }
        return lines.joined(separator: "\n")
    }

    static func summary(of layer: Layer, width: Int?) -> String {
        func scoped(_ key: String) -> String { key.isEmpty ? "" : "  [\(key)]" }
        switch layer {
        case .tokenEmbedding(let n):
            return "TokenEmbedding \(n.vocabulary) × \(n.width)" + (n.scale.map { " scaled by \($0)" } ?? "")
                + scoped(n.key)
        case .positionEmbedding(let n):
            switch n.encoding {
            case .learned(let rows, let offset):
                return "PositionEmbedding learned, \(rows) rows, offset \(offset)" + scoped(n.key)
            case .sinusoidal(let layout, let offset):
                return "PositionEmbedding sinusoidal (\(layout.rawValue)), offset \(offset)"
            }
        case .linear(let n): return "Linear \(n.input) → \(n.output)\(n.bias ? " +bias" : "")" + scoped(n.key)
        case .layerNorm(let n):
            return "LayerNorm \(n.width) eps=\(n.epsilon)\(n.bias ? "" : " no-bias")\(n.affine ? "" : " no-affine")"
                + scoped(n.key)
        case .rmsNorm(let n):
            let gain = n.gainOffset.map { ", gain \($0) + w" } ?? ""
            return "RMSNorm \(n.width) eps=\(n.epsilon)\(gain)" + scoped(n.key)
        case .attention(let n):
            let hs = width.map { n.resolvedHeadWidth(residualWidth: $0) }.map(String.init) ?? "?"
            let kv = n.kvHeads.map { ", \($0) kv heads" } ?? ""
            let window = n.window.map { ", window \($0)" } ?? ""
            let norm = n.queryKeyNorm.map { ", q/k RMSNorm per \($0.scope == .head ? "head" : "position")" } ?? ""
            let scale = n.scale.map { ", scale \($0)" } ?? ""
            let cap = n.softcap.map { ", scores capped at \($0)" } ?? ""
            return "Attention \(n.heads) heads × \(hs)\(kv), \(n.position.name)\(window)\(norm)\(scale)\(cap)"
                + scoped(n.key)
        case .feedForward(let n):
            return "FeedForward \(n.hidden), \(n.activation.rawValue)\(n.gated ? " gated" : "")" + scoped(n.key)
        case .unembedding(let n):
            let cap = n.softcap.map { ", logits capped at \($0)" } ?? ""
            return n.tied ? "Unembedding tied\(cap)" : "Unembedding\(cap)" + scoped(n.key)
        case .repeated(let n): return "Repeat × \(n.count)" + scoped(n.key.isEmpty ? "" : n.key + ".N")
        case .residual(let n): return "Residual (\(n.placement.rawValue)-norm)" + scoped(n.key)
        case .parallelResidual(let n): return "ParallelResidual (\(n.branches.count) branches)" + scoped(n.key)
        case .branch: return "Branch"
        }
    }
}

/// The position parameters an attention layer resolves to at one length — what the engine will use.
public struct ResolvedPosition: Sendable, Hashable, Codable {
    /// Method name.
    public var method: String
    /// Where it plugs in.
    public var kind: PositionKind
    /// Sequence length these values are for.
    public var length: Int
    /// ALiBi slopes per head.
    public var slopes: [Double]?
    /// Rotary: rotated dimensions per head.
    public var rotaryWidth: Int?
    /// Rotary: inverse frequencies after the extension.
    public var inverseFrequencies: [Double]?
    /// Rotary: attention factor (multiplies cos and sin).
    public var attentionFactor: Double?
    /// Rotary: the extension in force.
    public var scaling: String?
    /// T5: first distance of each causal bucket.
    public var bucketBoundaries: [Int]?
    /// xPos: per-pair decay bases.
    public var pairScales: [Double]?
    /// Sliding window, if any.
    public var window: Int?
}

extension Architecture {
    /// The positions added to the input embedding, in words (`learned absolute positions (256 rows), added to the
    /// input: defined up to 256 tokens`); `nil` when the architecture adds none there.
    public var inputPositionSummary: String? {
        var found: String?
        _ = Walk.visit(layers, expandRepeats: false) { visit in
            guard found == nil, case .positionEmbedding(let node) = visit.layer else { return }
            switch node.encoding {
            case .learned(let rows, let offset):
                found =
                    "learned absolute positions (\(rows) rows\(offset > 0 ? ", offset \(offset)" : "")), added to the "
                    + "input: defined up to \(rows - offset) tokens"
            case .sinusoidal(let layout, _):
                found = "sinusoidal absolute positions (\(layout.rawValue) layout), added to the input"
            }
        }
        return found
    }

    /// The distinct position parameters of the architecture's attention layers at `length` tokens.
    public func resolvedPositions(length: Int) -> [ResolvedPosition] {
        var result: [ResolvedPosition] = []
        _ = Walk.visit(layers, expandRepeats: false) { visit in
            guard case .attention(let node) = visit.layer, let width = visit.context.width else { return }
            let resolved = Self.resolve(node, residualWidth: width, length: length)
            if !result.contains(resolved) { result.append(resolved) }
        }
        return result
    }

    static func resolve(_ node: Attention, residualWidth: Int, length: Int) -> ResolvedPosition {
        let hs = node.resolvedHeadWidth(residualWidth: residualWidth)
        var r = ResolvedPosition(
            method: node.position.name, kind: node.position.kind, length: length, window: node.window)
        switch node.position {
        case .alibi(let alibi): r.slopes = alibi.slopes(heads: node.heads)
        case .rotary(let rotary):
            let frequencies = rotary.frequencies(headWidth: hs, length: length)
            r.rotaryWidth = rotary.rotaryWidth(headWidth: hs)
            r.inverseFrequencies = frequencies.inverse
            r.attentionFactor = frequencies.attentionFactor
            r.scaling = rotary.scaling.name
        case .t5(let t5): r.bucketBoundaries = t5.boundaries()
        case .xpos(let xpos):
            r.pairScales = xpos.pairScales(headWidth: hs)
            r.rotaryWidth = hs
        case .none, .kerple, .fire, .sandwich: break
        }
        return r
    }
}
