//! What several integration tests share: running scenarios in a child process
//! ([`child`]), an engine configured as machvm needs, and the unwrapping of a call's answer.

#![allow(dead_code)] // each test binary uses its own part of this module

pub mod child;

use machvm::abi::KernReturn;
use machvm::Outcome;
use wasmtime::{Config, Engine, PoolingAllocationConfig};

/// An engine configured by `machvm::configure`; with `pooled_memories`, one whose pooling
/// allocator holds that many memories (and instances) of at most 64 wasm pages.
pub fn engine(pooled_memories: Option<u32>) -> Engine {
    let mut config = Config::new();
    machvm::configure(&mut config);
    if let Some(n) = pooled_memories {
        let mut pool = PoolingAllocationConfig::new();
        pool.total_memories(n)
            .total_core_instances(n)
            .max_memory_size(64 << 16);
        config.allocation_strategy(pool);
    }
    Engine::new(&config).unwrap()
}

/// The `kern_return_t` a call answered; panics, naming the call, on a port name or a trap.
pub fn kr(call: &machvm::Call, outcome: Outcome) -> KernReturn {
    match outcome {
        Outcome::Kr(kr) => kr,
        o => panic!("{call:?}: {o:?}, expected a kern_return_t"),
    }
}
