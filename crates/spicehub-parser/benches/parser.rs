//! Throughput of the parser on real Python packages (Django and SQLAlchemy
//! source distributions). Not a timed test: it prints figures.
//!
//! `cargo bench --bench parser`. The sdists are downloaded once with pip into
//! `~/.cache/spicehub/bench-corpus` (override with `SPICEHUB_BENCH_CORPUS`) and
//! unpacked next to them.

use std::alloc::{GlobalAlloc, Layout, System};
use std::error::Error;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rayon::prelude::*;
use spicehub_parser::{
    parse_tree, prepare_file, syntax_error_count, to_json, DirSource, MemorySource, ParseOptions,
    PreparedFile, SourceTree, SPICE_TOML,
};

/// The allocator the hub's binary uses (`src/main.rs`), so the figures are
/// what `spicehub serve` and `spicehub parse` get. Heap bytes are counted
/// only in the fresh child processes that measure memory: counting costs two
/// atomic read-modify-writes on shared cache lines per allocation, which
/// serialises the threads of a throughput run (earlier versions of this
/// bench counted everywhere and under-reported the 2-core speed-up).
/// `SPICEHUB_BENCH_ALLOC=system` measures with glibc's malloc instead.
struct Bench;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
/// Blocks allocated and not freed yet.
static LIVE_BLOCKS: AtomicUsize = AtomicUsize::new(0);
/// 0: not decided yet; otherwise `MODE_SET` plus the flags below.
static MODE: AtomicU8 = AtomicU8::new(0);
const MODE_SET: u8 = 1;
const MODE_COUNT: u8 = 2;
const MODE_SYSTEM: u8 = 4;

unsafe extern "C" {
    // glibc's getenv allocates nothing, so it can run inside the allocator.
    fn getenv(name: *const std::ffi::c_char) -> *const std::ffi::c_char;
}

fn mode() -> u8 {
    let mode = MODE.load(Ordering::Relaxed);
    if mode != 0 {
        return mode;
    }
    let set = |name: &std::ffi::CStr| unsafe { !getenv(name.as_ptr()).is_null() };
    let mut mode = MODE_SET;
    if set(c"SPICEHUB_BENCH_CHILD") {
        mode |= MODE_COUNT;
    }
    let system = unsafe { getenv(c"SPICEHUB_BENCH_ALLOC".as_ptr()) };
    if !system.is_null() && unsafe { std::ffi::CStr::from_ptr(system) } == c"system" {
        mode |= MODE_SYSTEM;
    }
    // Decided before the first allocation and never changed: a block is
    // always freed by the allocator that gave it.
    MODE.store(mode, Ordering::Relaxed);
    mode
}

fn grew(by: usize) {
    let live = LIVE.fetch_add(by, Ordering::Relaxed) + by;
    PEAK.fetch_max(live, Ordering::Relaxed);
}

unsafe impl GlobalAlloc for Bench {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let mode = mode();
        let ptr = unsafe {
            if mode & MODE_SYSTEM != 0 {
                System.alloc(layout)
            } else {
                mimalloc::MiMalloc.alloc(layout)
            }
        };
        if mode & MODE_COUNT != 0 && !ptr.is_null() {
            LIVE_BLOCKS.fetch_add(1, Ordering::Relaxed);
            grew(layout.size());
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let mode = mode();
        unsafe {
            if mode & MODE_SYSTEM != 0 {
                System.dealloc(ptr, layout)
            } else {
                mimalloc::MiMalloc.dealloc(ptr, layout)
            }
        };
        if mode & MODE_COUNT != 0 {
            LIVE_BLOCKS.fetch_sub(1, Ordering::Relaxed);
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let mode = mode();
        let new = unsafe {
            if mode & MODE_SYSTEM != 0 {
                System.realloc(ptr, layout, new_size)
            } else {
                mimalloc::MiMalloc.realloc(ptr, layout, new_size)
            }
        };
        if mode & MODE_COUNT != 0 && !new.is_null() {
            if new_size >= layout.size() {
                grew(new_size - layout.size());
            } else {
                LIVE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
            }
        }
        new
    }
}

#[global_allocator]
static ALLOCATOR: Bench = Bench;

const PACKAGES: [&str; 2] = ["django", "sqlalchemy"];
/// Best of five: the minimum is the least noisy estimate on a shared machine.
const RUNS: usize = 5;

type BenchResult<T> = Result<T, Box<dyn Error>>;

fn corpus_dir() -> BenchResult<PathBuf> {
    if let Some(dir) = std::env::var_os("SPICEHUB_BENCH_CORPUS") {
        return Ok(PathBuf::from(dir));
    }
    let home = std::env::var_os("HOME").ok_or("HOME is not set")?;
    Ok(PathBuf::from(home).join(".cache/spicehub/bench-corpus"))
}

fn sdists(dir: &Path) -> BenchResult<Vec<PathBuf>> {
    let mut found = Vec::new();
    if dir.is_dir() {
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            if path.to_string_lossy().ends_with(".tar.gz") {
                found.push(path);
            }
        }
    }
    found.sort();
    Ok(found)
}

/// Downloads the sdists with pip unless every package is already there.
fn ensure_downloaded(dir: &Path) -> BenchResult<Vec<PathBuf>> {
    let have = sdists(dir)?;
    let missing = PACKAGES.iter().any(|p| {
        !have.iter().any(|s| {
            s.file_name()
                .map(|n| n.to_string_lossy().to_lowercase().starts_with(p))
                .unwrap_or(false)
        })
    });
    if missing {
        std::fs::create_dir_all(dir)?;
        eprintln!("downloading {PACKAGES:?} sdists into {}", dir.display());
        // Source archives of the packages only: `:all:` would also build
        // their build tools (setuptools...) from source, for minutes.
        let no_binary = PACKAGES.join(",");
        let mut args = vec![
            "download",
            "--no-deps",
            "--no-binary",
            no_binary.as_str(),
            "-d",
        ];
        let dir_str = dir.to_str().ok_or("corpus path is not UTF-8")?;
        args.push(dir_str);
        args.extend(PACKAGES);
        let status = Command::new("pip").args(&args).status().or_else(|_| {
            Command::new("python3")
                .arg("-m")
                .arg("pip")
                .args(&args)
                .status()
        })?;
        if !status.success() {
            return Err(format!("pip download failed: {status}").into());
        }
    }
    sdists(dir)
}

fn unpack(sdist: &Path, into: &Path) -> BenchResult<PathBuf> {
    let name = sdist
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_suffix(".tar.gz"))
        .ok_or("not a .tar.gz")?;
    let target = into.join(name);
    let marker = target.join(".unpacked");
    if !marker.exists() {
        std::fs::create_dir_all(&target)?;
        let file = std::fs::File::open(sdist)?;
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
        archive.unpack(&target)?;
        std::fs::write(&marker, b"")?;
    }
    Ok(target)
}

/// Ruff's parser on its own; its tree is dropped by Ruff's own drop glue.
/// The only use of Ruff outside `parser::ruff`: this measures Ruff itself.
fn ruff_alone(source: &str) -> usize {
    let options = ruff_python_parser::ParseOptions::from(ruff_python_parser::Mode::Module);
    ruff_python_parser::parse_unchecked(source, options)
        .errors()
        .len()
}

/// One package's Python files, held in memory so that only parsing is timed.
struct Package {
    name: String,
    files: MemorySource,
    texts: Vec<String>,
    /// `(path, content)` for the per-file phase alone (`prepare_file`).
    raw: Vec<(String, Vec<u8>)>,
    bytes: u64,
}

fn load(root: &Path) -> BenchResult<Package> {
    let disk = DirSource::new(root)?;
    let mut files = MemorySource::new();
    let mut texts = Vec::new();
    let mut raw = Vec::new();
    let mut bytes = 0;
    for (path, size) in disk.paths() {
        // A `spice.toml` dropped into an unpacked package gives it
        // registries (to compare outputs across changes; see `SPICEHUB_BENCH_JSON`).
        if path == SPICE_TOML {
            files.insert(path.clone(), disk.read(&path)?.into_owned());
            continue;
        }
        if !path.ends_with(".py") {
            continue;
        }
        let content = disk.read(&path)?.into_owned();
        bytes += size;
        if let Ok(text) = String::from_utf8(content.clone()) {
            texts.push(text);
        }
        raw.push((path.clone(), content.clone()));
        files.insert(path, content);
    }
    let name = root
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(Package {
        name,
        files,
        texts,
        raw,
        bytes,
    })
}

fn vm_hwm_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// CPU time (user + system, all threads) of this process, from /proc.
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the parenthesised command name; utime and stime are 14 and 15.
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // Kernel clock ticks are 100 Hz on Linux.
    (ticks(11) + ticks(12)) / 100.0
}

/// Best wall time of `RUNS` runs, with the CPU time of that run.
fn best_of<F: FnMut()>(mut run: F) -> (Duration, f64) {
    (0..RUNS)
        .map(|_| {
            let cpu = cpu_seconds();
            let start = Instant::now();
            run();
            (start.elapsed(), cpu_seconds() - cpu)
        })
        .min_by_key(|(wall, _)| *wall)
        .unwrap_or_default()
}

fn pool(threads: usize) -> BenchResult<rayon::ThreadPool> {
    Ok(rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()?)
}

fn report(what: &str, threads: usize, files: usize, bytes: u64, (elapsed, cpu): (Duration, f64)) {
    let mb = bytes as f64 / 1_000_000.0;
    let secs = elapsed.as_secs_f64();
    println!(
        "{what:<22} {threads:>2} thread(s)  {files:>6} files  {mb:>7.2} MB  {secs:>7.3} s wall  {:>7.2} MB/s  ({cpu:.2} s CPU)",
        mb / secs
    );
}

/// (b1): the per-file phase alone, on the current rayon pool, as the sync
/// engine runs it while unpacking (`prepare_file`).
fn per_file_phase(p: &Package, options: &ParseOptions) -> Vec<PreparedFile> {
    p.raw
        .par_iter()
        .map(|(path, content)| prepare_file(path, content, options))
        .collect()
}

/// Profile mode (`SPICEHUB_BENCH_PROFILE=a|b1|b`, under `perf record`):
/// runs one phase 20 times on one thread and prints nothing else, so that a
/// profile of (a) and one of (b1) can be compared symbol by symbol.
fn profile(packages: &[Package], phase: &str) -> BenchResult<()> {
    let options = ParseOptions::default();
    let pool = pool(1)?;
    let start = Instant::now();
    for _ in 0..20 {
        pool.install(|| {
            for p in packages {
                match phase {
                    "a" => {
                        let errors: usize = p.texts.iter().map(|t| ruff_alone(t)).sum();
                        std::hint::black_box(errors);
                    }
                    "b1" => {
                        std::hint::black_box(per_file_phase(p, &options));
                    }
                    _ => {
                        std::hint::black_box(parse_tree(&p.files, &options));
                    }
                }
            }
        });
    }
    println!(
        "{phase}: {:.3} s per run",
        start.elapsed().as_secs_f64() / 20.0
    );
    Ok(())
}

/// Child mode: parse one directory from disk and report the peak resident
/// memory of a process that did nothing else.
fn child(root: &Path) -> BenchResult<()> {
    let cpu = cpu_seconds();
    let threads: usize = std::env::var("SPICEHUB_BENCH_THREADS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(1);
    let base = vm_hwm_kib().unwrap_or(0);
    // Live heap when the last file is done: what the per-file phase keeps.
    let after_files = Arc::new((AtomicUsize::new(0), AtomicUsize::new(0)));
    let probe = Arc::clone(&after_files);
    let options = ParseOptions {
        progress: Some(Arc::new(move |done, total| {
            if done == total {
                probe
                    .0
                    .store(LIVE.load(Ordering::Relaxed), Ordering::Relaxed);
                probe
                    .1
                    .store(LIVE_BLOCKS.load(Ordering::Relaxed), Ordering::Relaxed);
            }
        })),
        ..ParseOptions::default()
    };
    let start = Instant::now();
    let graph = pool(threads)?.install(|| spicehub_parser::parse_dir_with(root, &options))?;
    let elapsed = start.elapsed();
    let json = to_json(&graph);
    println!(
        "{:.3} {} {} {} {:.2} {} {} {}",
        elapsed.as_secs_f64(),
        base,
        vm_hwm_kib().unwrap_or(0),
        json.len(),
        cpu_seconds() - cpu,
        PEAK.load(Ordering::Relaxed) / 1024,
        after_files.0.load(Ordering::Relaxed) / 1024,
        after_files.1.load(Ordering::Relaxed),
    );
    Ok(())
}

struct DiskRun {
    secs: f64,
    base_kib: u64,
    hwm_kib: u64,
    cpu: f64,
    peak_heap_kib: u64,
    facts_heap_kib: u64,
    facts_blocks: u64,
}

fn disk_run(root: &Path, threads: usize) -> BenchResult<DiskRun> {
    let out = Command::new(std::env::current_exe()?)
        .env("SPICEHUB_BENCH_CHILD", root)
        .env("SPICEHUB_BENCH_THREADS", threads.to_string())
        .output()?;
    if !out.status.success() {
        return Err(format!("child failed: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    let text = String::from_utf8(out.stdout)?;
    let mut parts = text.split_whitespace();
    let secs: f64 = parts.next().ok_or("no time")?.parse()?;
    let base: u64 = parts.next().ok_or("no base")?.parse()?;
    let peak: u64 = parts.next().ok_or("no peak")?.parse()?;
    let _json_len = parts.next();
    let cpu: f64 = parts.next().ok_or("no cpu")?.parse()?;
    let peak_heap_kib: u64 = parts.next().ok_or("no heap")?.parse()?;
    let facts_heap_kib: u64 = parts.next().ok_or("no facts")?.parse()?;
    let facts_blocks: u64 = parts.next().ok_or("no blocks")?.parse()?;
    Ok(DiskRun {
        secs,
        base_kib: base,
        hwm_kib: peak,
        cpu,
        peak_heap_kib,
        facts_heap_kib,
        facts_blocks,
    })
}

fn main() -> BenchResult<()> {
    if let Some(root) = std::env::var_os("SPICEHUB_BENCH_CHILD") {
        return child(Path::new(&root));
    }
    let dir = corpus_dir()?;
    let sdists = ensure_downloaded(&dir)?;
    let unpacked = dir.join("unpacked");
    let mut packages = Vec::new();
    for sdist in &sdists {
        packages.push(load(&unpack(sdist, &unpacked)?)?);
    }
    let files: usize = packages.iter().map(|p| p.texts.len()).sum();
    let bytes: u64 = packages.iter().map(|p| p.bytes).sum();
    if let Ok(phase) = std::env::var("SPICEHUB_BENCH_PROFILE") {
        return profile(&packages, &phase);
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "corpus: {} ({} .py files, {:.2} MB); {} cores; allocator: {}",
        packages
            .iter()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        files,
        bytes as f64 / 1_000_000.0,
        cores,
        if mode() & MODE_SYSTEM != 0 {
            "glibc malloc (SPICEHUB_BENCH_ALLOC=system)"
        } else {
            "mimalloc, as the spicehub binary"
        }
    );
    println!(
        "VmHWM after loading the corpus: {} KiB",
        vm_hwm_kib().unwrap_or(0)
    );

    let mut thread_counts = vec![1];
    if cores > 1 {
        thread_counts.push(cores);
    }
    // (a) is Ruff alone, as any user of it would call it: parse, then let
    // Ruff's tree drop itself. (a2) adds the hub's stack-safe teardown
    // (`ruff::dismantle`), which hostile input needs and (b) includes.
    let mut bare = Vec::new();
    for (what, ours) in [
        ("(a) bare Ruff parse", false),
        ("(a2) + safe teardown", true),
    ] {
        for &threads in &thread_counts {
            let pool = pool(threads)?;
            let elapsed = best_of(|| {
                let errors: usize = pool.install(|| {
                    packages
                        .iter()
                        .flat_map(|p| {
                            p.texts
                                .par_iter()
                                .map(|t| {
                                    if ours {
                                        syntax_error_count(t)
                                    } else {
                                        ruff_alone(t)
                                    }
                                })
                                .collect::<Vec<_>>()
                        })
                        .sum()
                });
                std::hint::black_box(errors);
            });
            report(what, threads, files, bytes, elapsed);
            if !ours {
                bare.push(elapsed.0);
            }
        }
    }
    println!(
        "VmHWM after bare parsing: {} KiB",
        vm_hwm_kib().unwrap_or(0)
    );

    let options = ParseOptions::default();
    // The per-file phase alone (what the sync engine runs while unpacking):
    // the gap between this and (b) is the per-repository resolution.
    for &threads in &thread_counts {
        let pool = pool(threads)?;
        let elapsed = best_of(|| {
            pool.install(|| {
                for p in &packages {
                    std::hint::black_box(per_file_phase(p, &options));
                }
            });
        });
        report("(b1) per-file phase", threads, files, bytes, elapsed);
    }
    let mut full = Vec::new();
    for &threads in &thread_counts {
        let pool = pool(threads)?;
        let elapsed = best_of(|| {
            pool.install(|| {
                for p in &packages {
                    std::hint::black_box(parse_tree(&p.files, &options));
                }
            });
        });
        report("(b) full extraction", threads, files, bytes, elapsed);
        full.push(elapsed.0);
    }
    if let (Some(a1), Some(b1)) = (bare.first(), full.first()) {
        println!(
            "extraction / bare parse throughput, 1 thread: {:.2} (target >= 0.80)",
            a1.as_secs_f64() / b1.as_secs_f64()
        );
    }
    if let (Some(b1), Some(bn), true) = (full.first(), full.last(), full.len() > 1) {
        println!(
            "extraction speed-up, 1 -> {cores} threads: {:.2}x (target >= 1.7x on 2 cores)",
            b1.as_secs_f64() / bn.as_secs_f64()
        );
    }
    println!(
        "VmHWM after full extraction: {} KiB",
        vm_hwm_kib().unwrap_or(0)
    );

    println!("parse_dir from disk, each in a fresh process (time includes reading files):");
    for sdist in &sdists {
        let root = unpack(sdist, &unpacked)?;
        for &threads in &thread_counts {
            let run = disk_run(&root, threads)?;
            println!(
                "  {:<18} {threads:>2} thread(s)  {:>6.3} s wall ({:.2} s CPU)  VmHWM {} KiB (start {} KiB)  heap peak {} KiB, after per-file phase {} KiB in {} blocks",
                root.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
                run.secs,
                run.cpu,
                run.hwm_kib,
                run.base_kib,
                run.peak_heap_kib,
                run.facts_heap_kib,
                run.facts_blocks,
            );
        }
    }

    // `SPICEHUB_BENCH_JSON=DIR` keeps each package's JSON, so that two
    // builds can be checked to give the same bytes.
    let keep_json = std::env::var_os("SPICEHUB_BENCH_JSON").map(PathBuf::from);
    for p in &packages {
        let graph = parse_tree(&p.files, &options);
        let json = to_json(&graph);
        println!(
            "{}: {} registries, {} entries, {} edges, {} diagnostics, {} bytes of JSON",
            p.name,
            graph.registries.len(),
            graph.entries.len(),
            graph.edges.len(),
            graph.diagnostics.len(),
            json.len()
        );
        if let Some(dir) = &keep_json {
            std::fs::create_dir_all(dir)?;
            std::fs::write(dir.join(format!("{}.json", p.name)), json)?;
        }
    }
    Ok(())
}
