// The array-building result builder behind `Architecture { … }`, `Repeat { … }` and `Residual { … }`.
// Every component flattens to `[Layer]`, so `if`, `if/else`, `for` and optional chains all compose.

/// Builds `[Layer]` from DSL statements.
@resultBuilder
public enum ArchitectureBuilder {
    /// A single node.
    public static func buildExpression(_ node: TokenEmbedding) -> [Layer] { [.tokenEmbedding(node)] }
    /// A single node.
    public static func buildExpression(_ node: PositionEmbedding) -> [Layer] { [.positionEmbedding(node)] }
    /// A single node.
    public static func buildExpression(_ node: Linear) -> [Layer] { [.linear(node)] }
    /// A single node.
    public static func buildExpression(_ node: LayerNorm) -> [Layer] { [.layerNorm(node)] }
    /// A single node.
    public static func buildExpression(_ node: RMSNorm) -> [Layer] { [.rmsNorm(node)] }
    /// A single node.
    public static func buildExpression(_ node: Attention) -> [Layer] { [.attention(node)] }
    /// A single node.
    public static func buildExpression(_ node: FeedForward) -> [Layer] { [.feedForward(node)] }
    /// A single node.
    public static func buildExpression(_ node: Unembedding) -> [Layer] { [.unembedding(node)] }
    /// A repeated body.
    public static func buildExpression(_ node: Repeat) -> [Layer] { [.repeated(node)] }
    /// A residual block.
    public static func buildExpression(_ node: Residual) -> [Layer] { [.residual(node)] }
    /// A parallel residual block.
    public static func buildExpression(_ node: ParallelResidual) -> [Layer] { [.parallelResidual(node)] }
    /// A branch of a parallel residual.
    public static func buildExpression(_ node: Branch) -> [Layer] { [.branch(node.body)] }
    /// An already-built node, e.g. from a family function.
    public static func buildExpression(_ node: Layer) -> [Layer] { [node] }
    /// Already-built nodes, e.g. a shared sub-block.
    public static func buildExpression(_ nodes: [Layer]) -> [Layer] { nodes }

    /// Starts a block.
    public static func buildPartialBlock(first: [Layer]) -> [Layer] { first }
    /// Continues a block.
    public static func buildPartialBlock(accumulated: [Layer], next: [Layer]) -> [Layer] { accumulated + next }
    /// An empty block.
    public static func buildBlock() -> [Layer] { [] }
    /// `if` without `else`.
    public static func buildOptional(_ component: [Layer]?) -> [Layer] { component ?? [] }
    /// `if`/`else`, first branch.
    public static func buildEither(first component: [Layer]) -> [Layer] { component }
    /// `if`/`else`, second branch.
    public static func buildEither(second component: [Layer]) -> [Layer] { component }
    /// `for … in`.
    public static func buildArray(_ components: [[Layer]]) -> [Layer] { components.flatMap { $0 } }
    /// `if #available`.
    public static func buildLimitedAvailability(_ component: [Layer]) -> [Layer] { component }
}
