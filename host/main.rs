//! The `machvm` command-line runner.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use machvm::{Kernel, KernelConfig, TaskPre};
use wasmtime::{Config, Engine, Func, Linker, Module, Store, Val, ValType};

/// Exit status when the guest trapped.
const EXIT_TRAP: u8 = 1;
/// Exit status when the module could not be loaded, linked, instantiated or called.
const EXIT_LOAD: u8 = 3;

#[derive(Parser)]
#[command(
    name = "machvm",
    version,
    about = "Run WebAssembly guests with the Mach VM calls (vm_copy, vm_protect, ...)",
    after_help = "Exit status: 0 success, 1 the guest trapped, 2 usage error, \
                  3 the module could not be loaded, linked, instantiated or called."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs a module (.wasm or .wat) as a Mach task.
    Run(RunArgs),
}

#[derive(clap::Args)]
struct RunArgs {
    /// The export to call (default `_start`); its parameters are parsed from ARGS.
    #[arg(long, value_name = "NAME")]
    invoke: Option<String>,
    /// The task's VM page size.
    #[arg(long, value_name = "BYTES", default_value_t = 4096, value_parser = parse_page_size)]
    page_size: u64,
    /// The module to run.
    #[arg(value_name = "MODULE")]
    module: PathBuf,
    /// Arguments of the invoked export (decimal, or hex with 0x), everything after MODULE.
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "ARGS"
    )]
    args: Vec<String>,
}

fn parse_page_size(s: &str) -> Result<u64, String> {
    match s {
        "4096" => Ok(4096),
        "16384" => Ok(16384),
        _ => Err("the page size must be 4096 or 16384".to_string()),
    }
}

struct State {
    kernel: Kernel,
}

enum Failure {
    Load(anyhow::Error),
    Trap(anyhow::Error),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let Command::Run(args) = cli.command;
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Load(e)) => {
            eprintln!("error: {e:#}");
            ExitCode::from(EXIT_LOAD)
        }
        Err(Failure::Trap(e)) => {
            eprintln!("error: the guest trapped: {e:?}");
            ExitCode::from(EXIT_TRAP)
        }
    }
}

fn load_module(engine: &Engine, path: &PathBuf) -> anyhow::Result<Module> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read `{}`", path.display()))?;
    let wasm = wat::parse_bytes(&bytes)
        .map_err(|e| {
            let mut e = e;
            e.set_path(path);
            anyhow::Error::from(e)
        })
        .with_context(|| format!("`{}` is not valid WebAssembly text", path.display()))?;
    Module::new(engine, &wasm)
        .map_err(anyhow::Error::from)
        .with_context(|| format!("`{}` is not a valid WebAssembly module", path.display()))
}

fn parse_arg(text: &str, ty: &ValType) -> anyhow::Result<Val> {
    fn int(text: &str) -> Option<i128> {
        let (neg, t) = match text.strip_prefix('-') {
            Some(t) => (true, t),
            None => (false, text),
        };
        let v = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
            Some(h) => i128::from_str_radix(h, 16).ok()?,
            None => t.parse::<i128>().ok()?,
        };
        Some(if neg { -v } else { v })
    }
    let bad = || anyhow::anyhow!("`{text}` is not a valid {ty}");
    Ok(match ty {
        ValType::I32 => {
            let v = int(text).ok_or_else(bad)?;
            if !(i128::from(i32::MIN)..=i128::from(u32::MAX)).contains(&v) {
                bail!("`{text}` does not fit in an i32");
            }
            Val::I32(v as i32)
        }
        ValType::I64 => {
            let v = int(text).ok_or_else(bad)?;
            if !(i128::from(i64::MIN)..=i128::from(u64::MAX)).contains(&v) {
                bail!("`{text}` does not fit in an i64");
            }
            Val::I64(v as i64)
        }
        ValType::F32 => Val::F32(text.parse::<f32>().map_err(|_| bad())?.to_bits()),
        ValType::F64 => Val::F64(text.parse::<f64>().map_err(|_| bad())?.to_bits()),
        other => bail!("parameters of type {other} cannot be passed from the command line"),
    })
}

fn print_val(v: &Val) {
    match v {
        Val::I32(x) => println!("{x}"),
        Val::I64(x) => println!("{x}"),
        Val::F32(x) => println!("{}", f32::from_bits(*x)),
        Val::F64(x) => println!("{}", f64::from_bits(*x)),
        other => println!("{other:?}"),
    }
}

fn run(args: &RunArgs) -> Result<(), Failure> {
    let mut config = Config::new();
    config.wasm_memory64(true);
    let engine = Engine::new(&config).map_err(|e| Failure::Load(e.into()))?;
    let module = load_module(&engine, &args.module).map_err(Failure::Load)?;
    let kernel = Kernel::with_config(KernelConfig {
        page_size: args.page_size,
        ..KernelConfig::default()
    })
    .map_err(|e| Failure::Load(e.into()))?;
    let mut store = Store::new(&engine, State { kernel });
    let linker = Linker::new(&engine);
    let pre = TaskPre::new(&module, |s: &mut State| &mut s.kernel)
        .map_err(|e| Failure::Load(e.into()))?;
    let (instance, _task) = pre.instantiate(&mut store, &linker).map_err(|e| {
        if e.is::<wasmtime::Trap>() || e.is::<machvm::ParamFault>() {
            Failure::Trap(e.into())
        } else {
            Failure::Load(anyhow::Error::from(e).context("cannot instantiate the module"))
        }
    })?;
    let name = args.invoke.as_deref().unwrap_or("_start");
    let func: Func = instance.get_func(&mut store, name).ok_or_else(|| {
        let exports: Vec<String> = module
            .exports()
            .filter(|e| e.ty().func().is_some())
            .map(|e| e.name().to_string())
            .collect();
        Failure::Load(anyhow::anyhow!(
            "the module has no exported function `{name}` (exported functions: {})",
            if exports.is_empty() {
                "none".to_string()
            } else {
                exports.join(", ")
            }
        ))
    })?;
    let ty = func.ty(&store);
    let params: Vec<ValType> = ty.params().collect();
    if params.len() != args.args.len() {
        return Err(Failure::Load(anyhow::anyhow!(
            "`{name}` takes {} argument(s) ({}), {} given",
            params.len(),
            params
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join(", "),
            args.args.len()
        )));
    }
    let vals = args
        .args
        .iter()
        .zip(&params)
        .enumerate()
        .map(|(i, (a, t))| {
            parse_arg(a, t).with_context(|| format!("argument {} of `{name}`", i + 1))
        })
        .collect::<anyhow::Result<Vec<Val>>>()
        .map_err(Failure::Load)?;
    let mut results = vec![Val::I32(0); ty.results().len()];
    func.call(&mut store, &vals, &mut results)
        .map_err(|e| Failure::Trap(e.into()))?;
    for r in &results {
        print_val(r);
    }
    Ok(())
}
