//! Contract bindings, one module per contract, generated from the ABI and bytecode in `artifacts/`.
#![allow(missing_docs, unreachable_pub, clippy::too_many_arguments)]

alloy::sol!(
    /// The L1 anchor: block roots, deposits, exit queues, finalized outputs, credits.
    #[sol(rpc)]
    #[derive(Debug)]
    PlasmaFramework,
    "artifacts/PlasmaFramework.json"
);

alloy::sol!(
    /// Standard exits, including delegated and batched ones.
    #[sol(rpc)]
    #[derive(Debug)]
    StandardExitGame,
    "artifacts/StandardExitGame.json"
);

alloy::sol!(
    /// MoreVP in-flight exits, piggybacks and their challenges.
    #[sol(rpc)]
    #[derive(Debug)]
    InFlightExitGame,
    "artifacts/InFlightExitGame.json"
);

alloy::sol!(
    /// Batch exits: many outputs claimed in one call, proven when doubted or paid (EXIT-12 … 15).
    #[sol(rpc)]
    #[derive(Debug)]
    BatchExitGame,
    "artifacts/BatchExitGame.json"
);

alloy::sol!(
    /// A plain mintable ERC-20 for devnets and tests.
    #[sol(rpc)]
    #[derive(Debug)]
    TestToken,
    "artifacts/TestToken.json"
);
