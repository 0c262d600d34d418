import Foundation

extension HuggingFace {
    /// Adjusts an imported architecture to what a checkpoint's tensors show where a family's config key is read
    /// differently by different writers, and says what it decided. Today: MPT's `expansion_ratio`, which MosaicML's
    /// own code honours (hidden = ratio × d_model) and `transformers`' `MptMLP` ignores (always 4 × d_model), so
    /// both kinds of checkpoint exist with the same config.json.
    /// - Parameters:
    ///   - modelType: the config's `model_type`.
    ///   - storedShape: the shape of a tensor in the checkpoint, by name (`nil` when absent).
    /// - Returns: the architecture to bind, and one note per decision (empty when the config was taken as it is).
    public static func reconcile(
        _ architecture: Architecture, modelType: String, storedShape: (String) -> [Int]?
    ) -> (Architecture, notes: [String]) {
        guard modelType == "mpt",
            let spec = architecture.manifest.tensors.first(where: { $0.name.hasSuffix("ffn.up_proj.weight") }),
            let declared = spec.shape.first,
            let stored = storedShape(spec.name) ?? storedShape(String(spec.name.drop { $0 != "." }.dropFirst())),
            stored.count == 2, stored[0] != declared, stored[1] == spec.shape[1]
        else { return (architecture, []) }
        let hidden = stored[0]
        let adjusted = architecture.mappingLeaves { layer in
            guard case .feedForward(var node) = layer else { return layer }
            node.hidden = hidden
            return .feedForward(node)
        }
        let ratio = Double(declared) / Double(max(spec.shape[1], 1))
        let note =
            "config.json says expansion_ratio \(ratio.formatted()) (feed-forward width \(declared)), but the checkpoint's "
            + "\(spec.name) holds \(hidden) rows: bound with width \(hidden) (transformers' MptMLP always uses 4 × d_model; "
            + "MosaicML's own code honours the ratio)"
        return (adjusted, [note])
    }
}
