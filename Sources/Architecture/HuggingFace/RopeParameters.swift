import Foundation

/// The RoPE settings of a config, in either form: the newer `rope_parameters` dictionary (transformers ≥ 5)
/// or the older top-level `rope_theta` / `rotary_emb_base` / `rotary_pct` / `partial_rotary_factor` plus a
/// `rope_scaling` dictionary. Field names follow HF's `RopeParameters`.
@HuggingFaceConfig
struct RopeParameters: Sendable {
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

    /// Resolves base, rotated fraction and scaling the way `standardize_rope_params` does.
    func resolve() throws(ArchitectureError) -> (base: Double, fraction: Double, scaling: RotaryScaling) {
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
