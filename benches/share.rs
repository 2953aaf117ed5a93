//! Backed memories (`machvm::share::backing`: linear memories made of shared memory files,
//! the ground of spec §8's sharing) against Wasmtime's own memories, side by side in one run,
//! both with machvm's engine settings and the on-demand allocator (Wasmtime's pooling
//! allocator does not take custom memories); see PERFORMANCE.md:
//! - `instantiate/*`: a store, an instance and its drop, for a 1-page module and a 17-page
//!   one with a 4 KiB data segment (Wasmtime maps data copy-on-write into its own memories,
//!   and copies it into custom ones);
//! - `grow/*`: 16 `memory.grow`s of one wasm page in a fresh instance;
//! - `loadstore/*`: a guest loop that stores and loads every 8 bytes of 1 MiB, pages resident;
//! - `first_touch/*`: the same loop on pages never touched (each one's first fault);
//! - `remap/*`: `mach_vm_remap` (shared, ANYWHERE) of 1 page and of 1 GiB of a task's
//!   memory, each followed by the `mach_vm_deallocate` of the new mapping, against a
//!   `mach_vm_allocate`/`mach_vm_deallocate` pair of 1 page: the cost must follow the runs
//!   of the range, not its pages;
//! - `task_memory`: the process's resident memory with 200 live tasks that each touched
//!   1 MiB, and once they are dropped (printed, not timed by criterion): a backed memory's
//!   pages must go back to the kernel when it goes.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use machvm::share::backing::BackedMemoryCreator;

mod common;
use wasmtime::{Config, Engine, Instance, Module, Store, TypedFunc};

const LOOP: &str = r#"
  (func (export "grow") (param $n i32)
    (loop $l
      (drop (memory.grow (i32.const 1)))
      (br_if $l (local.tee $n (i32.sub (local.get $n) (i32.const 1))))))
  (func (export "loop") (param $len i32) (result i64)
    (local $i i32) (local $sum i64)
    (loop $l
      (i64.store (local.get $i) (i64.extend_i32_u (local.get $i)))
      (local.set $sum (i64.add (local.get $sum) (i64.load (local.get $i))))
      (br_if $l (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 8)))
                          (local.get $len))))
    (local.get $sum))"#;

const MIB: u32 = 1 << 20;

fn small() -> String {
    format!(r#"(module (memory (export "memory") 1 65536) {LOOP})"#)
}

fn with_data() -> String {
    let data = "\\2a".repeat(4096);
    format!(
        r#"(module (memory (export "memory") 17 65536) (data (i32.const 4096) "{data}") {LOOP})"#
    )
}

/// Wasmtime's memories or backed ones, with machvm's settings.
fn engine(backed: bool) -> Engine {
    let mut config = Config::new();
    machvm::configure(&mut config);
    if backed {
        config
            .with_host_memory(Arc::new(BackedMemoryCreator))
            .memory_init_cow(false);
    }
    Engine::new(&config).unwrap()
}

fn name(backed: bool) -> &'static str {
    if backed {
        "backed"
    } else {
        "wasmtime"
    }
}

struct Guest {
    store: Store<()>,
    grow: TypedFunc<i32, ()>,
    run: TypedFunc<i32, i64>,
}

fn guest(engine: &Engine, module: &Module) -> Guest {
    let mut store = Store::new(engine, ());
    let instance = Instance::new(&mut store, module, &[]).unwrap();
    Guest {
        grow: instance.get_typed_func(&mut store, "grow").unwrap(),
        run: instance.get_typed_func(&mut store, "loop").unwrap(),
        store,
    }
}

fn share(c: &mut Criterion) {
    let mut group = c.benchmark_group("instantiate");
    for backed in [false, true] {
        let engine = engine(backed);
        for (wat, what) in [(small(), "1page"), (with_data(), "17pages+data")] {
            let module = Module::new(&engine, &wat).unwrap();
            group.bench_function(BenchmarkId::new(name(backed), what), |b| {
                b.iter(|| {
                    let mut store = Store::new(&engine, ());
                    black_box(Instance::new(&mut store, &module, &[]).unwrap());
                })
            });
        }
    }
    group.finish();

    let mut group = c.benchmark_group("grow");
    group.throughput(Throughput::Elements(16));
    for backed in [false, true] {
        let engine = engine(backed);
        let module = Module::new(&engine, small()).unwrap();
        group.bench_function(BenchmarkId::new(name(backed), "16x1page"), |b| {
            b.iter_batched(
                || guest(&engine, &module),
                |mut g| {
                    g.grow.call(&mut g.store, 16).unwrap();
                    g
                },
                BatchSize::NumIterations(32),
            )
        });
    }
    group.finish();

    let mut group = c.benchmark_group("loadstore");
    group.throughput(Throughput::Bytes(u64::from(MIB)));
    for backed in [false, true] {
        let engine = engine(backed);
        let module = Module::new(&engine, with_data()).unwrap();
        let mut g = guest(&engine, &module);
        g.run.call(&mut g.store, MIB as i32).unwrap();
        group.bench_function(BenchmarkId::new(name(backed), "1MiB"), |b| {
            b.iter(|| black_box(g.run.call(&mut g.store, MIB as i32).unwrap()))
        });
    }
    group.finish();

    let mut group = c.benchmark_group("first_touch");
    group.throughput(Throughput::Bytes(u64::from(MIB)));
    for backed in [false, true] {
        let engine = engine(backed);
        let module = Module::new(&engine, with_data()).unwrap();
        group.bench_function(BenchmarkId::new(name(backed), "1MiB"), |b| {
            b.iter_batched(
                || guest(&engine, &module),
                |mut g| {
                    black_box(g.run.call(&mut g.store, MIB as i32).unwrap());
                    g
                },
                BatchSize::NumIterations(32),
            )
        });
    }
    group.finish();
}

/// The bench guest (`wat/bench.wat`) as a task of a backed engine, grown to 1 GiB + 64 KiB
/// (all of it allocated, never touched), and the calls of `remap/*`.
fn remaps(c: &mut Criterion) {
    use machvm::abi::{KERN_SUCCESS, TASK_SELF_NAME, VM_FLAGS_ANYWHERE};
    use machvm::{Call, Form, KernelConfig};
    const GIB: u64 = 1 << 30;
    let mut config = Config::new();
    machvm::share::configure(machvm::configure(&mut config));
    let engine = Engine::new(&config).unwrap();
    let mut g = common::guest_with(&engine, KernelConfig::default());
    let memory = g.instance.get_memory(&mut g.store, "memory").unwrap();
    let pages = memory.size(&g.store);
    memory.grow(&mut g.store, (GIB >> 16) + 1 - pages).unwrap();
    // The out-parameters, in the first page (part of every source range).
    let (addr_ptr, cur_ptr, max_ptr) = (0x100, 0x108, 0x10c);
    let pair = |g: &mut common::Guest, first: Call, size: u64| {
        assert_eq!(g.call(first), KERN_SUCCESS);
        let bytes = &memory.data(&g.store)[addr_ptr as usize..addr_ptr as usize + 8];
        let addr = u64::from_le_bytes(bytes.try_into().unwrap());
        let task = TASK_SELF_NAME;
        let free = Call::Deallocate {
            form: Form::MachVm,
            task,
            addr,
            size,
        };
        assert_eq!(g.call(free), KERN_SUCCESS);
    };
    let mut group = c.benchmark_group("remap");
    for (size, what) in [(0x1000, "1page"), (GIB, "1GiB")] {
        let remap = Call::Remap {
            form: Form::MachVm,
            target_task: TASK_SELF_NAME,
            addr_ptr,
            size,
            mask: 0,
            flags: VM_FLAGS_ANYWHERE.0,
            src_task: TASK_SELF_NAME,
            src_addr: 0,
            copy: 0,
            cur_ptr,
            max_ptr,
            inheritance: 1,
        };
        group.bench_function(BenchmarkId::new("remap+deallocate", what), |b| {
            b.iter(|| pair(&mut g, remap.clone(), size))
        });
    }
    let allocate = Call::Allocate {
        form: Form::MachVm,
        task: TASK_SELF_NAME,
        addr_ptr,
        size: 0x1000,
        flags: VM_FLAGS_ANYWHERE,
    };
    group.bench_function(BenchmarkId::new("allocate+deallocate", "1page"), |b| {
        b.iter(|| pair(&mut g, allocate.clone(), 0x1000))
    });
    group.finish();
}

/// The process's resident memory, anonymous and shared (`/proc/self/status`), in KiB.
fn resident() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    (field("RssAnon:"), field("RssShmem:"))
}

/// Resident memory per live task, and what is left once the tasks are dropped.
fn task_memory(_: &mut Criterion) {
    const TASKS: u64 = 200;
    for backed in [false, true] {
        let engine = engine(backed);
        let module = Module::new(&engine, with_data()).unwrap();
        let before = resident();
        let mut guests: Vec<Guest> = (0..TASKS).map(|_| guest(&engine, &module)).collect();
        for g in &mut guests {
            g.run.call(&mut g.store, MIB as i32).unwrap();
        }
        let live = resident();
        drop(guests);
        let after = resident();
        let per_task = |now: (u64, u64)| {
            (now.0 + now.1).saturating_sub(before.0 + before.1) as f64 / TASKS as f64
        };
        eprintln!(
            "task_memory/{}: {TASKS} tasks that touched 1 MiB each: {:.0} KiB resident per \
             task (anonymous {} KiB, shared {} KiB in all); dropped: {:.1} KiB per task \
             left (shared {} KiB in all)",
            name(backed),
            per_task(live),
            live.0.saturating_sub(before.0),
            live.1.saturating_sub(before.1),
            per_task(after),
            after.1.saturating_sub(before.1)
        );
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).warm_up_time(std::time::Duration::from_millis(500)).measurement_time(std::time::Duration::from_secs(2));
    targets = share, remaps, task_memory
}
criterion_main!(benches);
