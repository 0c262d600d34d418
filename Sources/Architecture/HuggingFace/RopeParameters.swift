import Foundation

/// The RoPE settings of a config, in either form: the newer `rope_parameters` dictionary (transformers ≥ 5)
/// or the older top-level `rope_theta` / `rotary_emb_base` / `rotary_pct` / `partial_rotary_factor` plus a
/// `rope_scaling` dictionary. Field names follow HF's `RopeParameters`.
@HuggingFaceConfig
struct RopeParameters: Sendable, Equatable {
    @ConfigKey("rope_type", "type") var ropeType: String?
    var ropeTheta: Double?
    var partialRotaryFactor: Double?
    var factor: Double?
    var originalMaxPositionEmbeddings: Int?
    var lowFreqFactor: Double?
    var highFreqFactor: Double?
    var betaFast: Double?
    var betaSlow: Double?
    var attentionFactor: Double?
    var mscale: Double?
    var mscaleAllDim: Double?
    var truncate: Bool?
    var shortFactor: [Double]?
    var longFactor: [Double]?

    /// The extension alone: the type (`default` for none) and its parameters, without base and rotated fraction.
    var scaling: RopeParameters {
        var scaling = self
        scaling.ropeTheta = nil
        scaling.partialRotaryFactor = nil
        if scaling.ropeType == nil { scaling.ropeType = "default" }
        return scaling
    }

    /// `rope_type 'yarn', factor 2, …`: the extension's settings that are given.
    var summary: String {
        let scaling = self.scaling
        var parts = ["rope_type '\(scaling.ropeType ?? "default")'"]
        let numbers: [(String, Double?)] = [
            ("factor", factor), ("original_max_position_embeddings", originalMaxPositionEmbeddings.map(Double.init)),
            ("low_freq_factor", lowFreqFactor), ("high_freq_factor", highFreqFactor), ("beta_fast", betaFast),
            ("beta_slow", betaSlow), ("attention_factor", attentionFactor), ("mscale", mscale),
            ("mscale_all_dim", mscaleAllDim),
        ]
        parts += numbers.compactMap { name, value in value.map { "\(name) \($0)" } }
        return parts.joined(separator: ", ")
    }
}

/// The top-level keys a config may carry alongside (or instead of) the RoPE dictionaries.
struct RopeContext {
    var parameters: RopeParameters?
    var legacyScaling: RopeParameters?
    var theta: Double?
    var fraction: Double?
    var defaultTheta: Double
    var defaultFraction: Double
    var maxPositions: Int
    var originalMaxPositions: Int?
    var path: String

    /// Refuses a config that says two things: `rope_parameters` and `rope_scaling` with different extensions, or a
    /// top-level `rope_theta` / rotated fraction that differs from the one inside the dictionary. Which one
    /// `transformers` takes depends on its version, so no reading of such a config is "the" model.
    func checkAgreement() throws(ArchitectureError) {
        if let parameters, let legacyScaling, parameters.scaling != legacyScaling.scaling {
            throw .badConfig(
                path: path, key: "rope_scaling",
                reason:
                    "rope_parameters says \(parameters.summary) but rope_scaling says \(legacyScaling.summary): the "
                    + "config describes two models. Write the extension into rope_parameters and delete rope_scaling "
                    + "(transformers 5 reads rope_parameters), or keep the config as trained and evaluate the "
                    + "extension with `sweep --extensions NAME` (the daemon: `extensions = [\"NAME\"]`)")
        }
        for (name, dict) in [("rope_parameters", parameters), ("rope_scaling", legacyScaling)] {
            guard let dict else { continue }
            if let inner = dict.ropeTheta, let theta, inner != theta {
                throw .badConfig(
                    path: path, key: "\(name).rope_theta",
                    reason: "the top-level rope base is \(theta) but \(name).rope_theta is \(inner): keep one of them")
            }
            if let inner = dict.partialRotaryFactor, let fraction, inner != fraction {
                throw .badConfig(
                    path: path, key: "\(name).partial_rotary_factor",
                    reason: "the top-level rotated fraction is \(fraction) but \(name).partial_rotary_factor is "
                        + "\(inner): keep one of them")
            }
        }
    }

    /// Resolves base, rotated fraction and scaling the way `standardize_rope_params` does, once the config's
    /// keys agree (`checkAgreement`).
    func resolve() throws(ArchitectureError) -> (base: Double, fraction: Double, scaling: RotaryScaling) {
        try checkAgreement()
        let dict = parameters ?? legacyScaling
        let key = parameters != nil ? "rope_parameters" : "rope_scaling"
        let base = dict?.ropeTheta ?? theta ?? defaultTheta
        let fraction = dict?.partialRotaryFactor ?? self.fraction ?? defaultFraction
        guard let dict, let type = dict.ropeType, type != "default" else { return (base, fraction, .none) }
        func need<T>(_ value: T?, _ name: String) throws(ArchitectureError) -> T {
            guard let value else {
                throw .badConfig(path: path, key: "\(key).\(name)", reason: "required for rope_type '\(type)'")
            }
            return value
        }
        let original = dict.originalMaxPositionEmbeddings ?? originalMaxPositions ?? maxPositions
        switch type {
        case "linear":
            return (base, fraction, .linear(factor: try need(dict.factor, "factor")))
        case "ntk":
            return (base, fraction, .ntk(factor: try need(dict.factor, "factor")))
        case "dynamic":
            return (base, fraction, .dynamic(factor: try need(dict.factor, "factor"), originalLength: maxPositions))
        case "yarn":
            let yarn = YaRN(
                factor: dict.factor ?? Double(maxPositions) / Double(original), originalLength: original,
                betaFast: dict.betaFast ?? 32, betaSlow: dict.betaSlow ?? 1, attentionFactor: dict.attentionFactor,
                mscale: dict.mscale, mscaleAllDim: dict.mscaleAllDim, truncate: dict.truncate ?? true)
            return (base, fraction, .yarn(yarn))
        case "llama3":
            let llama3 = Llama3Scaling(
                factor: try need(dict.factor, "factor"),
                lowFrequencyFactor: try need(dict.lowFreqFactor, "low_freq_factor"),
                highFrequencyFactor: try need(dict.highFreqFactor, "high_freq_factor"),
                originalLength: original)
            return (base, fraction, .llama3(llama3))
        case "longrope":
            let longRoPE = LongRoPE(
                shortFactor: try need(dict.shortFactor, "short_factor"),
                longFactor: try need(dict.longFactor, "long_factor"),
                factor: dict.factor ?? Double(maxPositions) / Double(original), originalLength: original,
                attentionFactor: dict.attentionFactor)
            return (base, fraction, .longRoPE(longRoPE))
        default:
            throw .unsupportedOption(
                path: path, key: "\(key).rope_type", value: type,
                reason: "supported: default, linear, ntk, dynamic, yarn, llama3, longrope")
        }
    }
}
