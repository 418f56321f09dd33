//! Deploys the system to a real anvil and makes a deposit through the bindings; checks the L1
//! deposit block is exactly what plasma-spec says it is.

use alloy::{
    network::EthereumWallet,
    node_bindings::{Anvil, AnvilInstance},
    primitives::{Address, U256, keccak256},
    providers::{Provider, ProviderBuilder},
    signers::local::PrivateKeySigner,
    sol_types::SolValue,
};
use plasma_contracts::{DeployConfig, PlasmaFramework, deploy};
use plasma_spec::{Transaction, deposit_block_root};
use std::path::PathBuf;

/// anvil from the repository's pinned npm toolchain (`npm ci`), or `$ANVIL_BIN`.
fn anvil() -> AnvilInstance {
    let bin = std::env::var_os("ANVIL_BIN").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../node_modules/.bin/anvil")
    });
    Anvil::at(bin).spawn()
}

#[tokio::test(flavor = "current_thread")]
async fn deploys_and_accepts_an_eth_deposit() {
    let anvil = anvil();
    let signer: PrivateKeySigner = anvil.keys()[0].clone().into();
    let me = signer.address();
    let provider = ProviderBuilder::new()
        .wallet(EthereumWallet::from(signer))
        .connect_http(anvil.endpoint_url());

    let deployment = deploy(provider.clone(), &DeployConfig::devnet(me, 60)).await.unwrap();
    assert_ne!(deployment.framework, Address::ZERO);

    let framework = PlasmaFramework::new(deployment.framework, provider.clone());
    assert_eq!(framework.standardExitGame().call().await.unwrap(), deployment.standard_exit_game);
    assert_eq!(framework.inFlightExitGame().call().await.unwrap(), deployment.in_flight_exit_game);
    assert_eq!(framework.batchExitGame().call().await.unwrap(), deployment.batch_exit_game);
    assert_eq!(framework.operator().call().await.unwrap(), me);
    assert_eq!(framework.minExitPeriod().call().await.unwrap(), U256::from(60));

    let amount = U256::from(10).pow(U256::from(18));
    let deposit = Transaction::deposit(me, Address::ZERO, amount).encode();
    let receipt = framework
        .depositEth(deposit.clone().into())
        .value(amount)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(receipt.status());

    let event = receipt
        .decoded_log::<PlasmaFramework::DepositCreated>()
        .expect("the deposit emits DepositCreated");
    assert_eq!(event.owner, me);
    assert_eq!(event.blknum, U256::from(1));
    assert_eq!(event.amount, amount);
    assert_eq!(event.depositTx.as_ref(), deposit.as_slice());

    // The framework stores keccak256(abi.encode(root, timestamp)) per block.
    let commitment = framework.blockCommitments(U256::from(1)).call().await.unwrap();
    let expected =
        keccak256((deposit_block_root(&deposit), U256::from(event.timestamp)).abi_encode());
    assert_eq!(commitment, expected);
    assert_eq!(provider.get_balance(deployment.framework).await.unwrap(), amount);
}

#[tokio::test(flavor = "current_thread")]
async fn refuses_a_deposit_whose_amount_differs_from_the_value() {
    let anvil = anvil();
    let signer: PrivateKeySigner = anvil.keys()[0].clone().into();
    let me = signer.address();
    let provider = ProviderBuilder::new()
        .wallet(EthereumWallet::from(signer))
        .connect_http(anvil.endpoint_url());
    let deployment = deploy(provider.clone(), &DeployConfig::devnet(me, 60)).await.unwrap();
    let framework = PlasmaFramework::new(deployment.framework, provider.clone());

    let deposit = Transaction::deposit(me, Address::ZERO, U256::from(2)).encode();
    let err = framework.depositEth(deposit.into()).value(U256::from(1)).call().await.unwrap_err();
    let decoded = err
        .as_decoded_error::<PlasmaFramework::FrameworkDepositAmountMismatch>()
        .expect("a typed FrameworkDepositAmountMismatch");
    assert_eq!(decoded.declared, U256::from(2));
    assert_eq!(decoded.received, U256::from(1));
}

/// A standard exit bond that is not whole gwei is refused before anything is deployed (BOND-1):
/// no transaction is sent, so no half-deployed system is left behind.
#[tokio::test(flavor = "current_thread")]
async fn refuses_a_standard_exit_bond_that_is_not_whole_gwei() {
    let anvil = anvil();
    let signer: PrivateKeySigner = anvil.keys()[0].clone().into();
    let me = signer.address();
    let provider = ProviderBuilder::new()
        .wallet(EthereumWallet::from(signer))
        .connect_http(anvil.endpoint_url());
    let mut config = DeployConfig::devnet(me, 60);
    config.standard_exit_bond += U256::from(1u8);
    let err = deploy(provider.clone(), &config).await.unwrap_err();
    assert!(
        matches!(err, plasma_contracts::DeployError::StandardExitBondNotGwei(b) if b == config.standard_exit_bond),
        "{err}"
    );
    assert_eq!(provider.get_transaction_count(me).await.unwrap(), 0, "nothing was sent");
}

/// The plan (before anything is sent) prices every transaction as the chain then charges it: on
/// anvil the estimates, the exit games' and `bindExitGames`' through the state override, equal
/// the gas used, and the predicted addresses are where the contracts land; with two
/// confirmations on one-second blocks each transaction is two blocks deep before the next is
/// sent; the test token comes last and mints.
#[tokio::test(flavor = "current_thread")]
async fn the_plan_predicts_gas_and_addresses_and_each_step_waits_for_its_confirmations() {
    use plasma_contracts::{DeployOptions, DeployStep, Progress, TestToken, deploy_with, plan};
    let bin = std::env::var_os("ANVIL_BIN").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../node_modules/.bin/anvil")
    });
    let anvil = Anvil::at(bin).chain_id(4_242).block_time(1).spawn();
    let signer: PrivateKeySigner = anvil.keys()[3].clone().into();
    let me = signer.address();
    let provider = ProviderBuilder::new()
        .wallet(EthereumWallet::from(signer))
        .connect_http(anvil.endpoint_url());
    let config = DeployConfig::devnet(me, 60);

    let planned = plan(&provider, me, &config, true).await.unwrap();
    assert_eq!(planned.chain_id, 4_242);
    assert_eq!(planned.txs.len(), 6);
    assert!(planned.txs.iter().all(|t| t.estimated), "anvil takes state overrides: {planned:?}");
    assert!(planned.max_cost() >= planned.likely_cost());
    assert_eq!(provider.get_transaction_count(me).await.unwrap(), 0, "planning sends nothing");

    let mut sent = Vec::new();
    let options = DeployOptions { confirmations: 2, test_token: true, ..DeployOptions::default() };
    let report = deploy_with(provider.clone(), &config, &options, |p| {
        if let Progress::Sent { step, .. } = p {
            sent.push(step);
        }
    })
    .await
    .unwrap();
    assert_eq!(sent, DeployStep::all(true));
    assert_eq!(report.deployment, planned.predicted());
    assert_eq!(report.deploy_block(), report.txs[0].block);
    for (tx, plan) in report.txs.iter().zip(&planned.txs) {
        assert_eq!(tx.step, plan.step);
        if tx.step == DeployStep::BindExitGames {
            // Estimated before the framework exists, against its code placed by a state override
            // but not the storage its constructor writes: since #19 `standardExitGame` shares its
            // word with the block counters the constructor sets, so the real write is nonzero ->
            // nonzero, 17,100 gas (20,000 - 2,900) below the estimate. An over-estimate only.
            assert!(
                tx.gas_used <= plan.gas && plan.gas - tx.gas_used <= 17_100,
                "{}: estimated {} used {}",
                tx.step,
                plan.gas,
                tx.gas_used
            );
        } else {
            assert_eq!(
                tx.gas_used, plan.gas,
                "{}: estimated {} used {}",
                tx.step, plan.gas, tx.gas_used
            );
        }
        assert_eq!(tx.address, plan.address, "{}", tx.step);
    }
    // Each step was sent only once the previous one was two blocks deep.
    for pair in report.txs.windows(2) {
        assert!(pair[1].block >= pair[0].block + 2, "{pair:?}");
    }
    let framework = PlasmaFramework::new(report.deployment.framework, provider.clone());
    assert_eq!(framework.batchExitGame().call().await.unwrap(), report.deployment.batch_exit_game);
    let token = TestToken::new(report.test_token.unwrap(), provider.clone());
    token.mint(me, U256::from(5)).send().await.unwrap().get_receipt().await.unwrap();
    assert_eq!(token.balanceOf(me).call().await.unwrap(), U256::from(5));
}
