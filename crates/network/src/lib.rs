//! Guarantee circles and contagion, pure (no IO): the relation graph of firms and persons, the strongly and
//! weakly connected components of its guarantee part, the named patterns (mutual, joint, chain, cycle, cross,
//! star, group), circle metrics, DebtRank, the vulnerable-node probability model, the paths that carry risk,
//! stress tests ("if these firms fail") and the firm-centred display view.
//!
//! Conventions. A guarantee edge runs guarantor → borrower with the guaranteed amount. Distress runs the other
//! way: when a borrower fails, its guarantor is called to pay, so the guarantor's vulnerability to the borrower
//! is `W[g][b] = min(1, amount / equity(g))` (Battiston et al. 2012). Nodes are indices into `Graph::nodes`.

pub mod components;
pub mod contagion;
pub mod graph;
pub mod patterns;
pub mod view;

pub use components::{components, Components};
pub use contagion::{
    debtrank, debtrank_each, economic_values, risk_paths, stress, vulnerable, vulnerable_update, DebtRank, LenderLoss,
    RiskPath, Stress, StressConfig, StressFirm,
};
pub use graph::{Graph, GuaranteeEdge, Link, LinkKind, Node, NodeKind};
pub use patterns::{analyse, corporate_groups, Circle, CircleMetrics, FirmNet, Network, Pattern, PatternConfig};
pub use view::{ego, EgoView};
