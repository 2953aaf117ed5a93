//! What the benchmarks share: the bench guest (`wat/bench.wat`) instantiated as a task.

#![allow(dead_code)] // each bench target uses a part

use machvm::abi::{KernReturn, VmProt, TASK_SELF_NAME};
use machvm::{Call, Form, Kernel, KernelConfig, Outcome, TaskId, TaskPre};
use wasmtime::{Config, Engine, Instance, Linker, Module, Store, TypedFunc};

pub struct State {
    pub kernel: Kernel,
    /// Wasmtime's per-store limits (only `live_tasks` raises them).
    pub limits: wasmtime::StoreLimits,
}

impl State {
    pub fn new(kernel: Kernel) -> State {
        State {
            kernel,
            limits: wasmtime::StoreLimits::default(),
        }
    }
}

impl machvm::KernelView for State {
    fn kernel(&mut self) -> &mut Kernel {
        &mut self.kernel
    }
}

pub const WAT: &str = include_str!("../../wat/bench.wat");

pub struct Guest {
    pub store: Store<State>,
    pub instance: Instance,
    pub task: TaskId,
}

pub fn engine(pooling: bool) -> Engine {
    let mut config = Config::new();
    machvm::configure(&mut config);
    if pooling {
        let mut pool = wasmtime::PoolingAllocationConfig::new();
        pool.total_memories(64)
            .total_core_instances(64)
            .max_memory_size(1 << 20);
        config.allocation_strategy(pool);
    }
    Engine::new(&config).unwrap()
}

/// The bench guest as a task, with enforcement (compiled with `machvm::compile`) or
/// without (as plain Wasmtime compiles it).
pub fn guest(engine: &Engine, enforce: bool) -> Guest {
    guest_with(engine, KernelConfig::default().enforce(enforce))
}

/// The bench guest as a task of a kernel with `config`: compiled with `machvm::compile`
/// when `config.enforce`, else as plain Wasmtime compiles it.
pub fn guest_with(engine: &Engine, config: KernelConfig) -> Guest {
    let pre = if config.enforce {
        TaskPre::new(&machvm::compile(engine, WAT.as_bytes()).unwrap())
    } else {
        TaskPre::new(&Module::new(engine, WAT).unwrap())
    }
    .unwrap();
    let mut store = Store::new(engine, State::new(Kernel::with_config(config).unwrap()));
    let mut linker = Linker::new(engine);
    linker.func_wrap("bench", "noop", || 0i32).unwrap();
    linker
        .func_wrap(
            "bench",
            "noop4",
            |_: wasmtime::Caller<'_, State>, _: u32, _: u32, _: u32, _: u32| {
                wasmtime::Result::<i32>::Ok(0)
            },
        )
        .unwrap();
    let (instance, task) = pre.instantiate(&mut store, &linker).unwrap();
    Guest {
        store,
        instance,
        task,
    }
}

impl Guest {
    pub fn func<P: wasmtime::WasmParams, R: wasmtime::WasmResults>(
        &mut self,
        name: &str,
    ) -> TypedFunc<P, R> {
        self.instance.get_typed_func(&mut self.store, name).unwrap()
    }

    pub fn call(&mut self, c: Call) -> KernReturn {
        match machvm::call(&mut self.store, self.task, &c).unwrap() {
            Outcome::Kr(kr) => kr,
            o => panic!("{o:?}"),
        }
    }

    pub fn protect(&mut self, addr: u64, size: u64, prot: VmProt) -> KernReturn {
        self.call(Call::Protect {
            form: Form::Vm,
            task: TASK_SELF_NAME,
            addr,
            size,
            set_max: 0,
            prot,
        })
    }
}
