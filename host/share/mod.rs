//! Shared pages (spec §8): what makes two addresses show the same bytes.
//!
//! XNU shares backing objects, not addresses: a mapping names pages of an object, and the
//! object's data lives while any mapping (or a memory-entry port) refers to it. machvm does
//! the same for linear memories, on Linux, with [`backing`]: memories whose pages belong to
//! shared memory files (`memfd`), mapped into the memory's reservation with fixed shared
//! mappings, each page of a file counted by the mappings that refer to it.
//!
//! This room is hardware and Wasmtime's custom-memory interface only. The calls of spec §8
//! that share pages (`vm_remap`: `vm/share.rs`) change what backs a task's pages through
//! `vm::Env::back`, which the store's environment carries out here. Only engines set up
//! with [`configure`] have these memories: the runner's does; `machvm fuzz`'s pooling engine
//! does not (Wasmtime's pooling allocator takes no custom memories), and there `vm_remap`
//! answers `KERN_NOT_SUPPORTED`.

pub mod backing;

use std::sync::Arc;

/// Makes every memory of the engine a backed memory ([`backing::BackedMemory`]): installs
/// [`backing::BackedMemoryCreator`] and turns off copy-on-write data initialisation, which
/// Wasmtime has only for its own memories. Use it on a [`crate::configure`]d config with the
/// on-demand allocator (Wasmtime's pooling allocator does not take custom memories).
/// PERFORMANCE.md has what it costs.
///
/// ```
/// let mut config = wasmtime::Config::new();
/// machvm::share::configure(machvm::configure(&mut config));
/// let engine = wasmtime::Engine::new(&config)?;
/// let module = wasmtime::Module::new(&engine, r#"(module (memory (export "memory") 1))"#)?;
/// let mut store = wasmtime::Store::new(&engine, ());
/// let instance = wasmtime::Instance::new(&mut store, &module, &[])?;
/// let memory = instance.get_memory(&mut store, "memory").unwrap();
/// assert!(machvm::share::backing::MemoryMap::of(memory.data_ptr(&store)).is_some());
/// # Ok::<(), wasmtime::Error>(())
/// ```
pub fn configure(config: &mut wasmtime::Config) -> &mut wasmtime::Config {
    config
        .with_host_memory(Arc::new(backing::BackedMemoryCreator))
        .memory_init_cow(false)
}
