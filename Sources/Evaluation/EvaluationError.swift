import Engine
import TokenData

/// Errors of the evaluation path; each says which option, file or length, and what to do.
public enum EvaluationError: Error, Sendable, Hashable, CustomStringConvertible {
    /// An option or a combination of options that cannot work.
    case invalidOptions(String)
    /// The data holds fewer tokens than the evaluation needs.
    case tooFewTokens(available: Int, needed: Int)
    /// The evaluation data could not be read.
    case data(TokenDataError)
    /// The model could not be loaded or run.
    case engine(EngineError)
    /// The data was tokenized for another model: a different tokenizer, or ids past the model's vocabulary.
    case incompatibleData(checkpoint: String, reason: String)

    public var description: String {
        switch self {
        case .invalidOptions(let reason): reason
        case .tooFewTokens(let available, let needed):
            "the data holds \(available) tokens but the evaluation needs \(needed); lower --budget or use a larger dataset"
        case .data(let error): error.description
        case .engine(let error): error.description
        case .incompatibleData(let checkpoint, let reason):
            "\(checkpoint): \(reason); tokenize the text with this checkpoint's tokenizer "
                + "(`extrapolate dataset pack TEXT --tokenizer \(checkpoint)`)"
        }
    }
}
