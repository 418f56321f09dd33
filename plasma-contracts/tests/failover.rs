//! The shared sender's multi-endpoint provider against a real anvil: with the first endpoint
//! dead, reads and a transaction still go through the second (Shape: failover in one place).

#![allow(clippy::unwrap_used)]

use alloy::{
    network::{EthereumWallet, TransactionBuilder},
    primitives::{Address, U256},
    providers::Provider,
    rpc::types::TransactionRequest,
};
use plasma_contracts::{devnet::LocalChain, sender::connect};

#[tokio::test]
async fn a_dead_endpoint_fails_over_to_a_live_one() {
    let chain = LocalChain::start(60).await.unwrap();
    let dead: alloy::transports::http::reqwest::Url = "http://127.0.0.1:1".parse().unwrap();
    let provider =
        connect(&[dead, chain.anvil.endpoint_url()], EthereumWallet::from(chain.key(1))).unwrap();
    assert_eq!(provider.get_chain_id().await.unwrap(), chain.anvil.chain_id());
    let to = Address::repeat_byte(0x42);
    let tx = TransactionRequest::default().with_to(to).with_value(U256::from(7));
    let receipt = provider.send_transaction(tx).await.unwrap().get_receipt().await.unwrap();
    assert!(receipt.status());
    assert_eq!(chain.provider.get_balance(to).await.unwrap(), U256::from(7));
    // One endpoint is the plain provider; none is an error.
    assert!(connect(&[], EthereumWallet::from(chain.key(1))).is_err());
}
