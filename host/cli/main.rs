//! The `machvm` command-line runner.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

// libFuzzer, linked for `machvm fuzz` (the crate is otherwise unused, and its archive would
// be left out).
extern crate libfuzzer_sys;

mod fuzz;
mod runner;

use fuzz::FuzzOptions;
use machvm::fuzz::heap::HeapOptions;
use runner::{exit, Options};

const EXIT_HELP: &str = "\
Exit status:
  0    the guest finished; a WASI guest's own status from proc_exit (exit, or main's
       return) is passed through as its low 8 bits, as on macOS: exit(255) and
       return -1 exit 255, exit(256) exits 0
  1    the guest trapped (also in its start function, or on a data segment out of
       bounds): the message names the trap, the wasm address and the page protection
       when known, and the wasm backtrace
  2    usage error (bad option or option value)
  3    the module could not be read, compiled or linked, or its export could not be
       called as asked (missing file, malformed wasm/wat, unknown or mistyped import,
       missing export, bad arguments)
  4    the guest ran out of fuel (--fuel)
  5    the guest ran past its time limit (--timeout)";

#[derive(Parser)]
#[command(
    name = "machvm",
    version,
    about = "Run WebAssembly guests with the Mach VM calls (vm_copy, vm_protect, ...)",
    after_help = EXIT_HELP
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs a module (.wasm or .wat) as a Mach task.
    ///
    /// With no --invoke, calls the command's `_start` with ARGS as its argv (WASI); with
    /// --invoke NAME, calls that export with ARGS parsed by its parameter types (i32, i64,
    /// f32, f64; decimal, or hex with 0x) and prints each result on its own line. The module's
    /// `"mach"` imports are machvm's; WASI preview 1 (`wasi_snapshot_preview1`) is linked when
    /// the module imports it. Options go before MODULE: everything after it is the guest's.
    #[command(after_help = EXIT_HELP)]
    Run(RunArgs),
    /// Fuzzes a module's `LLVMFuzzerTestOneInput` with libFuzzer, edge coverage and guard pages.
    ///
    /// MODULE exports `LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)` (and
    /// optionally `LLVMFuzzerInitialize(int *argc, char ***argv)`), libFuzzer's convention:
    /// a reactor built with a stock toolchain, e.g. `clang --target=wasm32-wasi
    /// -mexec-model=reactor -Wl,--export=LLVMFuzzerTestOneInput`; WASI imports are linked.
    /// Each input runs in a fresh task, copied to the end of read-only pages followed by a
    /// page with no access. Directories are corpora (new inputs are written to the first);
    /// files are inputs run once each. libFuzzer prints its progress (`#N ... cov: ...
    /// exec/s: ...`); a finding (a trap, a timeout, an exit) is reported as `machvm run`
    /// reports a trap and written to ARTIFACT_DIR/crash-SHA1 (or timeout-SHA1).
    #[command(after_help = FUZZ_EXIT_HELP)]
    Fuzz(FuzzArgs),
}

const FUZZ_EXIT_HELP: &str = "\
libFuzzer's own flags go after `--` (e.g. -- -max_len=256 -dict=FILE); those that re-run the
command line in child processes (-fork, -jobs, -workers, -merge, -minimize_crash) are not
supported.

Exit status:
  0    nothing was found (the runs or the time given are done, or every input replayed)
  1    a finding: the report is on stderr and the input in ARTIFACT_DIR
  2    usage error (bad option or option value)
  3    the module could not be read, compiled or linked, or is not a fuzz target";

#[derive(clap::Args)]
struct FuzzArgs {
    /// Stop after this many seconds (libFuzzer's -max_total_time).
    #[arg(long, value_name = "SECS")]
    max_total_time: Option<u64>,
    /// Stop after this many inputs (libFuzzer's -runs).
    #[arg(long, value_name = "N")]
    runs: Option<u64>,
    /// Where findings are written, as KIND-SHA1 of their input.
    #[arg(long, value_name = "DIR", default_value = ".")]
    artifact_dir: PathBuf,
    /// How long one input may run before it is a finding (e.g. 500ms, 2s; bare numbers are
    /// seconds). libFuzzer's default.
    #[arg(long, value_name = "DURATION", default_value = "1200s", value_parser = parse_duration)]
    timeout: Duration,
    /// libFuzzer's random seed (default: from the clock).
    #[arg(long, value_name = "N")]
    seed: Option<u32>,
    /// The task's VM page size.
    #[arg(long, value_name = "BYTES", default_value_t = 4096, value_parser = parse_page_size)]
    page_size: u64,
    /// Cap the guest's linear memory (bytes; K, M, G suffixes are powers of 1024).
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes)]
    max_memory: Option<u64>,
    /// The fuzz target.
    #[arg(value_name = "MODULE")]
    module: PathBuf,
    /// Corpus directories and inputs to replay.
    #[arg(value_name = "CORPUS_DIR | INPUT_FILE")]
    inputs: Vec<PathBuf>,
    /// Keep the guest's own malloc: no guard pages around its blocks (the input still has
    /// one).
    #[arg(long)]
    no_guard_malloc: bool,
    /// Put every block's last byte against its guard page, not only 16-byte-aligned blocks'
    /// (libgmalloc's MALLOC_STRICT_SIZE): blocks may be unaligned.
    #[arg(long, conflicts_with = "no_guard_malloc")]
    strict_size: bool,
    /// Put the guard page before each block instead of after it, to catch underflows
    /// (libgmalloc's MALLOC_PROTECT_BEFORE).
    #[arg(long, conflicts_with = "no_guard_malloc")]
    protect_before: bool,
    /// libFuzzer's own flags, after `--`.
    #[arg(last = true, value_name = "LIBFUZZER_FLAGS")]
    libfuzzer: Vec<String>,
}

#[derive(clap::Args)]
struct RunArgs {
    /// Call this export instead of `_start`; its parameters are parsed from ARGS.
    #[arg(long, value_name = "NAME")]
    invoke: Option<String>,
    /// Preopen a host directory for a WASI guest, as GUEST_DIR (default: the same path).
    #[arg(long = "dir", value_name = "HOST_DIR[::GUEST_DIR]", value_parser = parse_dir)]
    dirs: Vec<(PathBuf, String)>,
    /// Set an environment variable of a WASI guest (NAME alone passes the host's value).
    #[arg(long = "env", value_name = "NAME[=VALUE]", value_parser = parse_env)]
    envs: Vec<(String, Option<String>)>,
    /// The task's VM page size.
    #[arg(long, value_name = "BYTES", default_value_t = 4096, value_parser = parse_page_size)]
    page_size: u64,
    /// Cap the guest's linear memory (bytes; K, M, G suffixes are powers of 1024). Growing
    /// past it fails, and the task's map ends there: vm_allocate answers KERN_NO_SPACE.
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes)]
    max_memory: Option<u64>,
    /// Stop the guest after it has used N units of fuel (about one per wasm instruction).
    #[arg(long, value_name = "N")]
    fuel: Option<u64>,
    /// Stop the guest after this much wall-clock time (e.g. 500ms, 2s, 1.5m; bare numbers are
    /// seconds).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    timeout: Option<Duration>,
    /// Print one line per Mach call on stderr, like dtruss, and XNU's guard exceptions.
    #[arg(long)]
    trace: bool,
    /// Do not enforce page protections on the guest's own loads, stores and bulk-memory
    /// instructions (the Mach calls still check them). Enforcement uses the MMU (mprotect).
    #[arg(long)]
    no_enforce: bool,
    /// Make page 0 inaccessible (current and maximum protection none, permanent) before the
    /// guest runs, as macOS's __PAGEZERO, so that a NULL pointer dereference traps and no
    /// call opens it. Link C guests with -Wl,--global-base=16384 so that no data lies in
    /// page 0 (a module with data there is refused).
    #[arg(long)]
    pagezero: bool,
    /// The module to run.
    #[arg(value_name = "MODULE")]
    module: PathBuf,
    /// The guest's arguments: its argv after MODULE, or the invoked export's parameters.
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

/// `HOST[::GUEST]`.
fn parse_dir(s: &str) -> Result<(PathBuf, String), String> {
    let (host, guest) = match s.split_once("::") {
        Some((h, g)) => (h, g),
        None => (s, s),
    };
    if host.is_empty() || guest.is_empty() {
        return Err("expected HOST_DIR or HOST_DIR::GUEST_DIR".to_string());
    }
    Ok((PathBuf::from(host), guest.to_string()))
}

/// `NAME=VALUE` or `NAME`.
fn parse_env(s: &str) -> Result<(String, Option<String>), String> {
    let (name, value) = match s.split_once('=') {
        Some((n, v)) => (n, Some(v.to_string())),
        None => (s, None),
    };
    if name.is_empty() {
        return Err("expected NAME=VALUE or NAME".to_string());
    }
    Ok((name.to_string(), value))
}

/// A byte count: decimal or 0x hex, with an optional K/M/G (KiB/MiB/GiB) suffix.
fn parse_bytes(s: &str) -> Result<u64, String> {
    let bad =
        || format!("`{s}` is not a size: use bytes, or a number with K, M or G (KiB, MiB, GiB)");
    let t = s.trim();
    let n_and_unit = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16).map(|n| (n, "")),
        None => {
            let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
            let (num, unit) = t.split_at(split);
            num.parse::<u64>().map(|n| (n, unit))
        }
    };
    let (n, unit) = n_and_unit.map_err(|_| bad())?;
    let mul: u64 = match unit.trim() {
        "" | "B" => 1,
        "K" | "KiB" => 1 << 10,
        "M" | "MiB" => 1 << 20,
        "G" | "GiB" => 1 << 30,
        _ => return Err(bad()),
    };
    n.checked_mul(mul).ok_or_else(bad)
}

/// A duration: a number with a unit (ns, us, ms, s, m, h), bare numbers are seconds.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("`{s}` is not a duration: use e.g. 500ms, 2s, 1.5m or 1h");
    let t = s.trim();
    let split = t.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.trim().parse().map_err(|_| bad())?;
    let secs = match unit {
        "ns" => n / 1e9,
        "us" | "µs" => n / 1e6,
        "ms" => n / 1e3,
        "" | "s" => n,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(bad()),
    };
    Duration::try_from_secs_f64(secs).map_err(|_| bad())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let args = match cli.command {
        Command::Run(args) => args,
        Command::Fuzz(args) => {
            let opts = FuzzOptions {
                module: args.module,
                inputs: args.inputs,
                max_total_time: args.max_total_time,
                runs: args.runs,
                artifact_dir: args.artifact_dir,
                timeout: args.timeout,
                seed: args.seed,
                page_size: args.page_size,
                max_memory: args.max_memory,
                libfuzzer: args.libfuzzer,
                guard_heap: (!args.no_guard_malloc).then(|| {
                    HeapOptions::new()
                        .strict_size(args.strict_size)
                        .protect_before(args.protect_before)
                }),
            };
            return ExitCode::from(exit(Err(fuzz::fuzz(&opts))));
        }
    };
    let opts = Options {
        module: args.module,
        invoke: args.invoke,
        args: args.args,
        dirs: args.dirs,
        envs: args.envs,
        page_size: args.page_size,
        max_memory: args.max_memory,
        fuel: args.fuel,
        timeout: args.timeout,
        trace: args.trace,
        enforce: !args.no_enforce,
        pagezero: args.pagezero,
    };
    ExitCode::from(exit(runner::run(&opts)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations_parse() {
        assert_eq!(parse_bytes("65536"), Ok(65536));
        assert_eq!(parse_bytes("0x20000"), Ok(0x20000));
        assert_eq!(parse_bytes("64K"), Ok(65536));
        assert_eq!(parse_bytes("2MiB"), Ok(2 << 20));
        assert_eq!(parse_bytes("1G"), Ok(1 << 30));
        assert!(parse_bytes("lots").is_err());
        assert!(parse_bytes("12Q").is_err());
        assert!(parse_bytes("99999999999999G").is_err());
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1.5m"), Ok(Duration::from_secs(90)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("3 fortnights").is_err());
        assert_eq!(
            parse_dir("data::/in"),
            Ok((PathBuf::from("data"), "/in".to_string()))
        );
        assert_eq!(
            parse_dir("data"),
            Ok((PathBuf::from("data"), "data".to_string()))
        );
        assert!(parse_dir("::x").is_err());
        assert_eq!(
            parse_env("A=b=c"),
            Ok(("A".to_string(), Some("b=c".to_string())))
        );
        assert_eq!(parse_env("HOME"), Ok(("HOME".to_string(), None)));
        assert!(parse_env("=x").is_err());
    }
}
